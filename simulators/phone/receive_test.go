package phone

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/skip2/go-qrcode"

	"github.com/egate-bank/egate/platform/messenger/payqr"
)

// TestReceiveQR reads the messenger's receive QR as its page draws it
// (go-qrcode, 6 px a module) from a PNG; another QR or a file that is no
// image is refused.
func TestReceiveQR(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		b, err := qrcode.Encode(text, qrcode.Medium, -6)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	junk := filepath.Join(dir, "junk.png")
	os.WriteFile(junk, []byte("not a png"), 0o600)
	for _, tc := range []struct {
		name, path, url string
		ok              bool
	}{
		{"receive code", write("r.png", payqr.Text("http://127.0.0.1:8083/pay/Zx9-_a")), "http://127.0.0.1:8083/pay/Zx9-_a", true},
		{"a login order's QR", write("o.png", "EGQ1.0011.3.ffee"), "", false},
		{"no image", junk, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u, err := ReceiveQR(tc.path)
			if (err == nil) != tc.ok || u != tc.url {
				t.Fatalf("%q %v", u, err)
			}
		})
	}
}
