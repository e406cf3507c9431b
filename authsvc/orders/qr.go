package orders

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"
)

// The animated QR. Its content is "EGQ1.<ref>.<t>.<mac>": t is the whole
// seconds since the order was created when the code was drawn, mac the
// first 16 bytes, hex, of HMAC-SHA-256 under the order's qr_secret over
// "EGQ1.<ref>.<t>". The secret never leaves the server: the page asks the
// server for each second's image.

const qrPrefix = "EGQ1."

type qrCode struct {
	ref string
	t   int64
	mac []byte
}

func qrMAC(secret []byte, ref string, t int64) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(qrPrefix + ref + "." + strconv.FormatInt(t, 10)))
	return m.Sum(nil)[:16]
}

func parseQR(s string) (qrCode, error) {
	s = strings.TrimSpace(s)
	if len(s) > 200 || !strings.HasPrefix(s, qrPrefix) {
		return qrCode{}, ErrBadQR
	}
	parts := strings.Split(s[len(qrPrefix):], ".")
	if len(parts) != 3 || parts[0] == "" || len(parts[0]) > 64 {
		return qrCode{}, ErrBadQR
	}
	t, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || t < 0 || strconv.FormatInt(t, 10) != parts[1] {
		return qrCode{}, ErrBadQR
	}
	mac, err := hex.DecodeString(parts[2])
	if err != nil || len(mac) != 16 {
		return qrCode{}, ErrBadQR
	}
	return qrCode{ref: parts[0], t: t, mac: mac}, nil
}

// elapsed is the whole seconds since the order was created.
func (s *Service) elapsed(o *Order) int64 {
	d := s.now().Sub(o.CreatedAt)
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}

// checkQR accepts a code of this order drawn at most QRWindow ago (and at
// most a second ahead, for clocks of replicas).
func (s *Service) checkQR(o *Order, q qrCode) error {
	if !hmac.Equal(q.mac, qrMAC(o.qrSecret, o.Ref, q.t)) {
		return ErrBadQR
	}
	now := s.elapsed(o)
	if q.t > now+1 || now-q.t > int64(s.QRWindow/time.Second) {
		return ErrStaleQR
	}
	return nil
}

// QRContent is the animated QR's content for o now. Give it only to the
// browser that created the order (Collect checks that).
func (s *Service) QRContent(o *Order) string {
	t := s.elapsed(o)
	return qrPrefix + o.Ref + "." + strconv.FormatInt(t, 10) + "." + hex.EncodeToString(qrMAC(o.qrSecret, o.Ref, t))
}

// QRPNG draws content as a PNG QR code: size pixels wide, or, when
// negative, -size pixels per module (the sharper choice for a scanner).
func QRPNG(content string, size int) ([]byte, error) {
	return qrcode.Encode(content, qrcode.Medium, size)
}

// AutostartLink is the link that starts the desktop helper on the
// customer's computer for an order: egate://order?ref=…&token=…&server=….
func AutostartLink(server, ref, token string) string {
	return "egate://order?ref=" + ref + "&token=" + token + "&server=" + queryEscape(server)
}
