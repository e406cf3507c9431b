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
		case rest == "OCRA-1":
			// The profile's algorithm name without the suite: the suite is
			// in AlgorithmParameters/Suite.
			return otp.KindOCRA, "", true
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
		return nil, r.pinKey(kp, x)
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
		if ref := strings.TrimSpace(x.KeyReference); ref != "" {
			return nil, fmt.Errorf("%w: the key is derived from the vendor's master key %q (KeyReference, RFC 6030 figure 4) by a method the file does not say; egate holds no master keys: ask the vendor for a file that carries each seed (encrypted)", ErrUnsupported, ref)
		}
		return nil, fmt.Errorf("%w: Key has no Secret", ErrMalformed)
	}
	var err error
	min := r.opts.MinSecretBytes
	if min == 0 {
		min = defaultMinSecret
	}
	if r.hsmKey && x.Data.Secret.EncryptedValue != nil {
		sl, err := r.sealedSecret(x.Data.Secret)
		if err != nil {
			return nil, err
		}
		// Where the HSM does not tell the length, Len is an upper bound
		// (to 8 bytes): only a seed surely too short is refused.
		if sl.Len < min || sl.Len > maxSecretBytes+8 || sl.LenExact && sl.Len > maxSecretBytes {
			return nil, fmt.Errorf("%w: secret of %d bytes (want %d to %d)", ErrWeakSecret, sl.Len, min, maxSecretBytes)
		}
		k.Wrapped = sl.Wrapped
	} else {
		if k.Secret, err = r.value(x.Data.Secret, "Secret"); err != nil {
			return nil, err
		}
		if len(k.Secret) < min || len(k.Secret) > maxSecretBytes {
			n := len(k.Secret)
			k.Wipe()
			return nil, fmt.Errorf("%w: secret of %d bytes (want %d to %d)", ErrWeakSecret, n, min, maxSecretBytes)
		}
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
			if k.TimeDrift < -maxTimeDrift || k.TimeDrift > maxTimeDrift {
				return fail(fmt.Errorf("%w: TimeDrift %d time steps (want -%d to %d)", ErrMalformed, k.TimeDrift, maxTimeDrift, maxTimeDrift))
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
	if !k.StartDate.IsZero() && !k.ExpiryDate.IsZero() && !k.StartDate.Before(k.ExpiryDate) {
		return fail(fmt.Errorf("%w: Policy StartDate %s is not before ExpiryDate %s", ErrMalformed, k.StartDate.Format(time.RFC3339), k.ExpiryDate.Format(time.RFC3339)))
	}
	if k.PIN, err = pinPolicy(x, kind); err != nil {
		return fail(err)
	}
	return k, nil
}

// maxTimeDrift bounds a TOTP key's TimeDrift (in time steps): a week of
// 30-second steps; a larger drift is a broken clock or a broken file.
const maxTimeDrift = 7 * 24 * 120

// pinPolicy reads Policy/PINPolicy. Local (the device checks the PIN) needs
// nothing from the server; Append and Prepend make the server check the
// PIN typed with the code; Algorithmic (the PIN enters the computation) is
// refused, as is a policy that does not say where the PIN is checked.
func pinPolicy(x *xKey, kind otp.Kind) (*PINPolicy, error) {
	pp := x.Policy.PINPolicy
	if pp == nil {
		return nil, nil
	}
	mode := strings.TrimSpace(pp.PINUsageMode)
	switch {
	case strings.EqualFold(mode, "Local"):
		return nil, nil
	case mode == "":
		return nil, fmt.Errorf("%w: PINPolicy without PINUsageMode: the file does not say whether the token or the server checks the PIN", ErrMalformed)
	case strings.EqualFold(mode, "Algorithmic"):
		return nil, fmt.Errorf("%w: PINUsageMode Algorithmic (the PIN enters the OTP computation): egate cannot verify such codes", ErrUnsupported)
	case strings.EqualFold(mode, PINAppend):
		mode = PINAppend
	case strings.EqualFold(mode, PINPrepend):
		mode = PINPrepend
	default:
		return nil, fmt.Errorf("%w: PINUsageMode %q (want Local, Prepend, Append or Algorithmic)", ErrMalformed, mode)
	}
	if kind == otp.KindOCRA {
		return nil, fmt.Errorf("%w: PINUsageMode %s on an OCRA key: egate checks a server-side PIN only with HOTP and TOTP codes", ErrUnsupported, mode)
	}
	p := &PINPolicy{Mode: mode, KeyID: strings.TrimSpace(pp.PINKeyID), Min: 4, Max: 8}
	if p.KeyID == "" {
		return nil, fmt.Errorf("%w: PINUsageMode %s without PINKeyId: the file does not hold the PIN the server must check", ErrMalformed, mode)
	}
	if e := strings.TrimSpace(pp.PINEncoding); e != "" && !strings.EqualFold(e, "DECIMAL") {
		return nil, fmt.Errorf("%w: PINEncoding %q (want DECIMAL)", ErrUnsupported, e)
	}
	for _, l := range []struct {
		s   string
		dst *int
		n   string
	}{{pp.MinLength, &p.Min, "MinLength"}, {pp.MaxLength, &p.Max, "MaxLength"}} {
		if s := strings.TrimSpace(l.s); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > MaxPINLength {
				return nil, fmt.Errorf("%w: PINPolicy %s %q (want 1 to %d)", ErrMalformed, l.n, s, MaxPINLength)
			}
			*l.dst = n
		}
	}
	if strings.TrimSpace(pp.MaxLength) == "" && p.Max < p.Min {
		p.Max = p.Min
	}
	if p.Min > p.Max {
		return nil, fmt.Errorf("%w: PINPolicy MinLength %d is more than MaxLength %d", ErrMalformed, p.Min, p.Max)
	}
	return p, nil
}

// MaxPINLength bounds a server-checked PIN.
const MaxPINLength = 16

// pinKey hands a pskc:pin key's value to Options.PINKey.
func (r *Reader) pinKey(kp *xKeyPackage, x *xKey) error {
	if r.opts.PINKey == nil || x.Data.Secret == nil {
		return nil
	}
	v, err := r.value(x.Data.Secret, "Secret")
	if err != nil {
		return err
	}
	defer clear(v)
	serial := strings.TrimSpace(kp.DeviceInfo.SerialNo)
	if serial == "" {
		serial = strings.TrimSpace(x.ID)
	}
	return r.opts.PINKey(PINKey{Index: r.index, ID: strings.TrimSpace(x.ID), Serial: serial, Value: v})
}
