package pinsource

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "s3cret-PIN-9876"

func writeFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRead(t *testing.T) {
	t.Setenv("EGATE_TEST_PIN", secret)
	t.Setenv("EGATE_TEST_EMPTY", "")
	good := writeFile(t, secret+"\nsecond line ignored\n", 0o600)
	crlf := writeFile(t, secret+"\r\n", 0o640)
	noNL := writeFile(t, secret, 0o400)
	world := writeFile(t, secret+"\n", 0o604)
	empty := writeFile(t, "\n", 0o600)
	long := writeFile(t, strings.Repeat("1", MaxLen+1), 0o600)
	cases := []struct {
		name, src string
		want      string // "" means an error is wanted
		errSays   string
	}{
		{"file first line", "file:" + good, secret, ""},
		{"file url form", "file://" + good, secret, ""},
		{"file crlf", "file:" + crlf, secret, ""},
		{"file without newline", "file:" + noNL, secret, ""},
		{"env", "env:EGATE_TEST_PIN", secret, ""},
		{"world readable file", "file:" + world, "", "chmod 600"},
		{"missing file", "file:" + good + ".missing", "", "cannot open"},
		{"empty file", "file:" + empty, "", "empty"},
		{"too long", "file:" + long, "", "longer than"},
		{"unset env", "env:EGATE_TEST_UNSET_PIN_VAR", "", "is not set"},
		{"empty env", "env:EGATE_TEST_EMPTY", "", "empty"},
		{"inline pin refused", "pin:" + secret, "", "unknown kind"},
		{"bare pin refused", secret, "", "unknown kind"},
		{"empty source", "", "", "no pin-source"},
		{"file host", "file://host/x", "", "host"},
		{"env no name", "env:", "", "env:NAME"},
		{"directory", "file:" + t.TempDir(), "", "regular file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pin, err := Read(tc.src)
			if tc.want != "" {
				if err != nil || string(pin) != tc.want {
					t.Fatalf("Read(%q) = %q, %v; want the PIN", tc.src, pin, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Read(%q) = %q, want an error", tc.src, pin)
			}
			if !errors.Is(err, ErrPINSource) {
				t.Errorf("error %v is not ErrPINSource", err)
			}
			if !strings.Contains(err.Error(), tc.errSays) {
				t.Errorf("error %q does not say %q", err, tc.errSays)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the PIN", err)
			}
		})
	}
}

func TestWipe(t *testing.T) {
	p := []byte(secret)
	Wipe(p)
	for _, b := range p {
		if b != 0 {
			t.Fatalf("Wipe left %q", p)
		}
	}
}
