package atm

import (
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestCodesMatchProtocol reads the code table of PROTOCOL.md §7 and checks
// that every code has the same number, name and meaning in the code, and
// that the code knows no code the vendor's document does not list.
func TestCodesMatchProtocol(t *testing.T) {
	doc, err := os.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := string(doc)
	i := strings.Index(sec, "## 7. Result and error codes")
	if i < 0 {
		t.Fatal("PROTOCOL.md has no §7 code table")
	}
	sec = sec[i:]
	if j := strings.Index(sec[1:], "\n## "); j > 0 {
		sec = sec[:j+1]
	}
	rows := regexp.MustCompile("(?m)^\\| (\\d+) \\| `([A-Z_]+)` \\| (.*?) \\|$").FindAllStringSubmatch(sec, -1)
	if len(rows) != len(codeNames) || len(codeMeanings) != len(codeNames) {
		t.Fatalf("PROTOCOL.md lists %d codes; the code has %d names and %d meanings", len(rows), len(codeNames), len(codeMeanings))
	}
	for _, r := range rows {
		n, _ := strconv.Atoi(r[1])
		c := Code(n)
		if c.String() != r[2] || c.Meaning() != r[3] {
			t.Errorf("code %d: document %s %q, code %s %q", n, r[2], r[3], c, c.Meaning())
		}
	}
	if Code(200).Meaning() != "" || Code(200).String() != "CODE_200" {
		t.Errorf("an unknown code: %s %q", Code(200), Code(200).Meaning())
	}
}

// TestDeviceErrorMessage: an operator reads what the code means, or the
// ATM's own message when it sent one; errors.Is still matches the code.
func TestDeviceErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *DeviceError
		want string
	}{
		{"meaning from the table", &DeviceError{Op: TypeRetract, Code: CodeNotPresented}, "atm: RETRACT: NOT_PRESENTED: nothing at the exit for this txn (e.g. already taken)"},
		{"the ATM's message", &DeviceError{Op: TypeHello, Code: CodeBadMessage, Msg: "short payload"}, "atm: HELLO: BAD_MESSAGE: short payload"},
		{"unknown code", &DeviceError{Op: TypeStatus, Code: 99}, "atm: STATUS: CODE_99"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Fatalf("Error() = %q, want %q", got, tc.want)
			}
			if !errors.Is(tc.err, ErrCode(tc.err.Code)) {
				t.Fatal("errors.Is does not match the code")
			}
		})
	}
}
