package risk

import (
	"embed"
	"io/fs"
)

//go:embed rules/*.yaml
var builtin embed.FS

// Builtin returns egate's default rule files (rules/*.yaml), by name.
func Builtin() map[string][]byte {
	out := map[string][]byte{}
	fs.WalkDir(builtin, "rules", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := builtin.ReadFile(p)
			out["builtin:"+p] = b
		}
		return nil
	})
	return out
}
