package simatm_test

import (
	"bytes"
	"errors"
	"image/png"
	"os"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	goqr "github.com/skip2/go-qrcode"

	"github.com/egate-bank/egate/atm"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

// decodeQR reads a PNG with an independent decoder (gozxing).
func decodeQR(t *testing.T, b []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decoding the screen's QR: %v", err)
	}
	return res.GetText()
}

// TestQRCapabilityNegotiation: the simulator advertises the QR modes --qr
// names; DisplayQR picks the mode from the HELLO reply (text if the ATM
// renders QR codes, else a bitmap rendered host-side, which must decode to
// the same text); a SHOW_QR in a mode not advertised is refused with
// UNSUPPORTED and leaves the screen empty.
func TestQRCapabilityNegotiation(t *testing.T) {
	t.Parallel()
	const url = "https://ebank.example/qrw/9b1e0c7a44d2f318"
	q, err := goqr.New(url, goqr.Medium)
	if err != nil {
		t.Fatal(err)
	}
	q.DisableBorder = true
	size, packed := atm.PackBitmap(q.Bitmap())
	noQR := atm.CapPINISO4 | atm.CapRetract | atm.CapReject | atm.CapPurge | atm.CapProgress
	for _, tc := range []struct {
		name     string
		qr       string // --qr; "" = noQR capabilities
		show     *atm.ShowQR
		wantMode uint8 // DisplayQR's mode, 0 = an explicit show instead
		wantCode atm.Code
	}{
		{name: "bitmap-only ATM gets a bitmap", qr: "bitmap", wantMode: atm.QRModeBitmap},
		{name: "text-only ATM gets text", qr: "text", wantMode: atm.QRModeText},
		{name: "ATM with both gets text", qr: "both", wantMode: atm.QRModeText},
		{name: "text to a bitmap-only ATM is refused", qr: "bitmap",
			show: &atm.ShowQR{Mode: atm.QRModeText, Text: url}, wantCode: atm.CodeUnsupported},
		{name: "bitmap to a text-only ATM is refused", qr: "text",
			show: &atm.ShowQR{Mode: atm.QRModeBitmap, Size: size, Bitmap: packed}, wantCode: atm.CodeUnsupported},
		{name: "ATM without QR: DisplayQR sends nothing", wantCode: atm.CodeUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			caps := noQR
			if tc.qr != "" {
				c, err := simatm.QRCapabilities(tc.qr)
				if err != nil {
					t.Fatal(err)
				}
				caps = c
			}
			pngPath := simatm.ScreenPNGPath(t.TempDir())
			screen := &simatm.Screen{PNGPath: pngPath}
			r := newRig(t, func(c *simatm.Config) {
				c.Capabilities = caps
				c.Screen = screen
			})
			ctx := ctxT(t, 10*time.Second)
			h, err := r.drv.Hello(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if h.Capabilities != caps {
				t.Fatalf("HELLO advertises %#04x, configured %#04x", h.Capabilities, caps)
			}
			session := atm.NewTxnID()
			var mode uint8
			if tc.show != nil {
				m := *tc.show
				m.Session, m.TTLSec = session, 60
				err = r.drv.ShowQR(ctx, m)
			} else {
				mode, err = r.drv.DisplayQR(ctx, session, 60, url)
			}
			text, img := screen.Current()
			if tc.wantCode != atm.OK {
				if !errors.Is(err, atm.ErrCode(tc.wantCode)) {
					t.Fatalf("err = %v, want %s", err, tc.wantCode)
				}
				if text != "" || img != nil {
					t.Fatalf("refused QR is on screen: %q, %d bytes of PNG", text, len(img))
				}
				if _, err := os.Stat(pngPath); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("refused QR written to %s: %v", pngPath, err)
				}
				// The session is fine afterwards: the line still works.
				if _, err := r.drv.Status(ctx); err != nil {
					t.Fatalf("status after the refusal: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mode != tc.wantMode {
				t.Fatalf("mode %d, want %d", mode, tc.wantMode)
			}
			// The screen keeps the text only when it rendered the QR itself.
			if wantText := map[uint8]string{atm.QRModeText: url, atm.QRModeBitmap: ""}[mode]; text != wantText {
				t.Fatalf("screen text %q, want %q", text, wantText)
			}
			b, err := os.ReadFile(pngPath)
			if err != nil {
				t.Fatal(err)
			}
			if got := decodeQR(t, b); got != url {
				t.Fatalf("QR says %q, want %q", got, url)
			}
		})
	}
}

// TestQRMessageModes checks the host-side choice and the bitmap layout of
// PROTOCOL.md §6.3 (quiet zone excluded, ceil(size²/8) bytes).
func TestQRMessageModes(t *testing.T) {
	t.Parallel()
	const url = "https://ebank.example/qrw/00ff"
	for _, tc := range []struct {
		name string
		caps uint16
		mode uint8
	}{
		{"text", atm.CapQRText, atm.QRModeText},
		{"bitmap", atm.CapQRBitmap, atm.QRModeBitmap},
		{"both", atm.CapQRText | atm.CapQRBitmap, atm.QRModeText},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := atm.QRMessage(atm.NewTxnID(), 30, url, tc.caps)
			if err != nil || m.Mode != tc.mode {
				t.Fatalf("%+v %v", m, err)
			}
			back, err := atm.ParseShowQR(m.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if tc.mode == atm.QRModeText {
				if back.Text != url {
					t.Fatalf("text %q", back.Text)
				}
				return
			}
			// 30 bytes in byte mode at level M: version 2 holds 26, version 3
			// (29 modules per side) holds 42 (ISO/IEC 18004 table 7); no quiet zone.
			if back.Size != 29 || len(back.Bitmap) != (29*29+7)/8 {
				t.Fatalf("size %d, %d bytes", back.Size, len(back.Bitmap))
			}
			bm := atm.UnpackBitmap(back.Size, back.Bitmap)
			// Finder pattern: the top-left corner module is dark, its
			// 7-module outer ring too (no quiet zone before it).
			for i := range 7 {
				if !bm[0][i] || !bm[i][0] {
					t.Fatalf("finder pattern not at the edge: row 0 %v", bm[0][:8])
				}
			}
		})
	}
	if _, err := atm.QRMessage(atm.NewTxnID(), 30, url, atm.CapRetract); !errors.Is(err, atm.ErrCode(atm.CodeUnsupported)) {
		t.Fatalf("no QR capability: %v", err)
	}
}
