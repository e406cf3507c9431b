package atm

import (
	"fmt"

	"github.com/skip2/go-qrcode"
)

// QRMessage builds the SHOW_QR request for text that an ATM with the given
// HELLO capabilities can show: mode 1 (text) if it has QR_TEXT, else mode 2
// with the module bitmap rendered here (error correction level M, quiet
// zone excluded as PROTOCOL.md §6.3 wants). With neither capability the
// error matches ErrCode(CodeUnsupported).
func QRMessage(session TxnID, ttlSec uint16, text string, caps uint16) (ShowQR, error) {
	m := ShowQR{Session: session, TTLSec: ttlSec}
	switch {
	case caps&CapQRText != 0:
		m.Mode, m.Text = QRModeText, text
	case caps&CapQRBitmap != 0:
		q, err := qrcode.New(text, qrcode.Medium)
		if err != nil {
			return m, fmt.Errorf("atm: rendering QR: %w", err)
		}
		q.DisableBorder = true
		m.Mode = QRModeBitmap
		m.Size, m.Bitmap = PackBitmap(q.Bitmap())
	default:
		return m, fmt.Errorf("atm: SHOW_QR: the ATM advertises neither QR_TEXT nor QR_BITMAP (capabilities %#04x): %w", caps, ErrCode(CodeUnsupported))
	}
	if n := len(m.Marshal()); n > MaxPayload {
		return m, fmt.Errorf("atm: SHOW_QR of %d bytes exceeds the %d-byte payload: %w", n, MaxPayload, ErrTooLarge)
	}
	return m, nil
}
