package atm

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/creack/pty"

	"github.com/egate-bank/egate/internal/testenv"
)

// TestIsPTY: both ends of a real pseudo-terminal pair are seen as one (a
// Link must pace its writes there), other character devices and a plain
// file are not (a real UART paces itself); a name under /dev/pts/ is the
// fallback where fstat cannot tell.
func TestIsPTY(t *testing.T) {
	t.Parallel()
	m, tty, err := pty.Open()
	if err != nil {
		testenv.Missing(t, "pseudo-terminals (/dev/ptmx, devpts)", "mount devpts; "+err.Error())
	}
	t.Cleanup(func() { tty.Close(); m.Close() })
	file := filepath.Join(t.TempDir(), "ttyS0")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T, name string) *os.File {
		f, err := os.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	for _, tc := range []struct {
		name string
		file func(t *testing.T) *os.File
		want bool
	}{
		{"pty slave " + tty.Name(), func(*testing.T) *os.File { return tty }, true},
		{"pty master", func(*testing.T) *os.File { return m }, true},
		{"/dev/null", func(t *testing.T) *os.File { return open(t, "/dev/null") }, false},
		{"/dev/zero", func(t *testing.T) *os.File { return open(t, "/dev/zero") }, false},
		{"regular file", func(t *testing.T) *os.File { return open(t, file) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.file(t)
			if got := isPTY(int(f.Fd()), f.Name()); got != tc.want {
				t.Fatalf("isPTY(%s) = %v, want %v", f.Name(), got, tc.want)
			}
		})
	}
	t.Run("fallback by name", func(t *testing.T) {
		for name, want := range map[string]bool{
			tty.Name(): true, "/dev/pts/7": true, "/dev/ttyS0": false, "/dev/ttyUSB0": false, file: false,
		} {
			if got := ptsPath(name); got != want {
				t.Errorf("ptsPath(%s) = %v, want %v", name, got, want)
			}
		}
	})
}
