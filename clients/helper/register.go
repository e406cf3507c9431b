package helper

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DesktopFile is the name of the desktop entry that registers the egate://
// URL scheme (freedesktop.org: x-scheme-handler/egate).
const DesktopFile = "egate-helper.desktop"

// DesktopEntry is the entry that starts `exe helper ARGS… <link>` in a
// terminal (the PIN is typed there) when a page opens an egate:// link.
func DesktopEntry(exe string, args []string) string {
	quoted := []string{desktopQuote(exe), "helper"}
	for _, a := range args {
		quoted = append(quoted, desktopQuote(a))
	}
	return "[Desktop Entry]\nType=Application\nName=egate security helper\n" +
		"Comment=Signs your bank's orders with your U-shield or PIV token\n" +
		"Exec=" + strings.Join(quoted, " ") + " %u\nTerminal=true\nNoDisplay=true\n" +
		"MimeType=x-scheme-handler/egate;\n"
}

// desktopQuote quotes an Exec argument (Desktop Entry Specification).
func desktopQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\><~|&;$*?#()`%") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\\\`, `"`, `\"`, "`", "\\`", `$`, `\$`, `%`, `%%`)
	return `"` + r.Replace(s) + `"`
}

// Register writes the desktop entry under dataHome/applications and returns
// its path; the caller makes it the scheme's default (xdg-mime).
func Register(dataHome, exe string, args []string) (string, error) {
	dir := filepath.Join(dataHome, "applications")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("registering the egate:// scheme: %w", err)
	}
	path := filepath.Join(dir, DesktopFile)
	if err := os.WriteFile(path, []byte(DesktopEntry(exe, args)), 0o644); err != nil {
		return "", fmt.Errorf("registering the egate:// scheme: %w", err)
	}
	return path, nil
}
