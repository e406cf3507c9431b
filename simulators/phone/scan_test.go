package phone

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"image/png"
	"testing"

	"github.com/egate-bank/egate/authsvc/orders"
)

// TestScanAnimatedQR decodes many animated-QR codes as the page draws them
// (orders.QRPNG at 5 px per module) — every one must read back exactly: a
// code the app cannot read is a login the customer cannot finish.
func TestScanAnimatedQR(t *testing.T) {
	t.Parallel()
	for i := range 300 {
		ref := make([]byte, 16)
		mac := make([]byte, 16)
		rand.Read(ref)
		rand.Read(mac)
		content := fmt.Sprintf("EGQ1.%x.%d.%s", ref, i, hex.EncodeToString(mac))
		b, err := orders.QRPNG(content, -5)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Scan(img)
		if err != nil || got != content {
			t.Fatalf("code %d (%s): %q %v", i, content, got, err)
		}
	}
}
