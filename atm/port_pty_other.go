//go:build !linux

package atm

import (
	"path/filepath"
	"strings"
)

// isPTY says whether name is a pseudo-terminal where device numbers are not
// Linux's (port_pty_linux.go): a name under /dev/pts/ (the BSDs) or a
// macOS pty slave, /dev/ttysNNN.
func isPTY(fd int, name string) bool { return ptsPath(name) }

func ptsPath(name string) bool {
	if p, err := filepath.EvalSymlinks(name); err == nil {
		name = p
	}
	name = filepath.Clean(name)
	if strings.HasPrefix(name, "/dev/pts/") {
		return true
	}
	rest, ok := strings.CutPrefix(name, "/dev/ttys")
	if !ok || rest == "" {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
