package pskc

import (
	"crypto"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/egate-bank/egate/devices/otp"
)

// Algorithm URIs.
const (
	AlgHOTP = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
	AlgTOTP = "urn:ietf:params:xml:ns:keyprov:pskc:totp"
	AlgOCRA = "urn:ietf:params:xml:ns:keyprov:pskc:ocra"
	AlgPIN  = "urn:ietf:params:xml:ns:keyprov:pskc:pin"
)

// kindOf maps an Algorithm URI to a kind and, for the pskc#OCRA-1:… profile
// spelling, the suite.
func kindOf(uri string) (otp.Kind, string, bool) {
	u := strings.TrimSpace(uri)
	for _, p := range []string{"urn:ietf:params:xml:ns:keyprov:pskc:", "urn:ietf:params:xml:ns:keyprov:pskc#", "http://www.ietf.org/keyprov/pskc#"} {
		if !strings.HasPrefix(u, p) {
			continue
		}
		rest := u[len(p):]
		switch {
		case strings.EqualFold(rest, "hotp"):
			return otp.KindHOTP, "", true
		case strings.EqualFold(rest, "totp"):
			return otp.KindTOTP, "", true
		case strings.EqualFold(rest, "ocra"):
			return otp.KindOCRA, "", true
		case strings.EqualFold(rest, "pin"):
			return "pin", "", true
		case strings.HasPrefix(rest, "OCRA-1:"):
			return otp.KindOCRA, rest, true
		}
	}
	return "", "", false
}

// convert turns a KeyPackage into a Key; nil, nil for a PIN key.
func (r *Reader) convert(kp *xKeyPackage) (*Key, error) {
	switch len(kp.Keys) {
	case 0:
		return nil, fmt.Errorf("%w: KeyPackage without a Key", ErrMalformed)
	case 1:
	default:
		return nil, fmt.Errorf("%w: KeyPackage with %d Keys (RFC 6030 allows one)", ErrMalformed, len(kp.Keys))
	}
	x := &kp.Keys[0]
	if strings.TrimSpace(x.ID) == "" {
		return nil, fmt.Errorf("%w: Key without an Id", ErrMalformed)
	}
	kind, suite, ok := kindOf(x.Algorithm)
	if !ok {
		return nil, fmt.Errorf("%w: algorithm %q (want HOTP, TOTP or OCRA)", ErrUnsupported, x.Algorithm)
	}
	if kind == "pin" {
		return nil, nil
	}
	k := &Key{
		Index:        r.index,
		ID:           strings.TrimSpace(x.ID),
		Serial:       strings.TrimSpace(kp.DeviceInfo.SerialNo),
		Manufacturer: strings.TrimSpace(kp.DeviceInfo.Manufacturer),
		Issuer:       strings.TrimSpace(x.Issuer),
		UserID:       strings.TrimSpace(x.UserID),
		Algorithm:    strings.TrimSpace(x.Algorithm),
	}
	if k.Serial == "" {
		k.Serial = k.ID
	}
	if len(k.ID) > 128 || len(k.Serial) > 128 {
		return nil, fmt.Errorf("%w: Key Id or serial longer than 128 characters", ErrMalformed)
	}
	if x.Data.Secret == nil {
		if strings.TrimSpace(x.KeyReference) != "" {
			return nil, fmt.Errorf("%w: the key is derived from a master key (KeyReference); import needs the secret itself", ErrUnsupported)
		}
		return nil, fmt.Errorf("%w: Key has no Secret", ErrMalformed)
	}
	var err error
	if k.Secret, err = r.value(x.Data.Secret, "Secret"); err != nil {
		return nil, err
	}
	min := r.opts.MinSecretBytes
	if min == 0 {
		min = defaultMinSecret
	}
	if len(k.Secret) < min || len(k.Secret) > maxSecretBytes {
		n := len(k.Secret)
		k.Wipe()
		return nil, fmt.Errorf("%w: secret of %d bytes (want %d to %d)", ErrWeakSecret, n, min, maxSecretBytes)
	}
	fail := func(err error) (*Key, error) { k.Wipe(); return nil, err }

	p := otp.Params{Kind: kind, Hash: crypto.SHA1, Digits: 6}
	ap := x.AlgorithmParameters
	if rf := ap.ResponseFormat; rf != nil {
		if rf.Encoding != "" && !strings.EqualFold(rf.Encoding, "DECIMAL") {
			return fail(fmt.Errorf("%w: response encoding %q (want DECIMAL)", ErrUnsupported, rf.Encoding))
		}
		if rf.Length != "" {
			if p.Digits, err = strconv.Atoi(strings.TrimSpace(rf.Length)); err != nil {
				return fail(fmt.Errorf("%w: ResponseFormat Length %q", ErrMalformed, rf.Length))
			}
		}
	}
	if s := strings.TrimSpace(ap.Suite); s != "" {
		if kind == otp.KindOCRA {
			suite = s
		} else if p.Hash, err = otp.ParseHash(s); err != nil {
			return fail(fmt.Errorf("%w: suite %q", ErrUnsupported, s))
		}
	}
	switch kind {
	case otp.KindOCRA:
		if suite == "" {
			return fail(fmt.Errorf("%w: OCRA key without a suite", ErrMalformed))
		}
		su, err := otp.ParseSuite(suite)
		if err != nil {
			return fail(err)
		}
		p = otp.Params{Kind: kind, Suite: suite, Hash: su.Hash, Digits: su.Digits}
	case otp.KindTOTP:
		p.Period = 30 * time.Second
		if v := x.Data.TimeInterval; v != nil {
			n, err := r.integer(v, "TimeInterval")
			if err != nil {
				return fail(err)
			}
			if n < 1 || n > 3600 {
				return fail(fmt.Errorf("%w: TimeInterval %d (want 1 to 3600 seconds)", ErrUnsupported, n))
			}
			p.Period = time.Duration(n) * time.Second
		}
		if v := x.Data.Time; v != nil {
			if p.T0, err = r.integer(v, "Time"); err != nil {
				return fail(err)
			}
		}
		if v := x.Data.TimeDrift; v != nil {
			if k.TimeDrift, err = r.integer(v, "TimeDrift"); err != nil {
				return fail(err)
			}
		}
	}
	if v := x.Data.Counter; v != nil {
		n, err := r.integer(v, "Counter")
		if err != nil {
			return fail(err)
		}
		if n < 0 {
			return fail(fmt.Errorf("%w: negative Counter", ErrMalformed))
		}
		k.Counter = uint64(n)
	}
	if err := p.Validate(); err != nil {
		return fail(err)
	}
	k.Params = p
	for _, d := range []struct {
		s   string
		dst *time.Time
		n   string
	}{{x.Policy.StartDate, &k.StartDate, "StartDate"}, {x.Policy.ExpiryDate, &k.ExpiryDate, "ExpiryDate"}} {
		if s := strings.TrimSpace(d.s); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return fail(fmt.Errorf("%w: Policy %s %q", ErrMalformed, d.n, s))
			}
			*d.dst = t
		}
	}
	return k, nil
}
