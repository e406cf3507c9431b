package otp

import (
	"context"
	"crypto"
	"encoding/hex"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Suite is a parsed RFC 6287 OCRA suite such as "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1".
type Suite struct {
	Raw        string
	Hash       crypto.Hash // HMAC hash of the CryptoFunction
	Digits     int         // 4 to 10 (0, "no truncation", is not supported)
	Counter    bool        // C: an 8-byte counter is part of the input
	QType      byte        // 'N' numeric, 'A' alphanumeric, 'H' hexadecimal
	QLen       int         // the nn of Qxnn: 4 to 64 characters
	PINHash    crypto.Hash // P: hash of the PIN is part of the input; 0 when absent
	SessionLen int         // S: bytes of session information; 0 when absent
	TimeStep   time.Duration
}

// questionBytes is the fixed size of the Q field.
const questionBytes = 128

// ParseSuite parses an OCRA suite string.
func ParseSuite(s string) (*Suite, error) {
	bad := func(why string) (*Suite, error) {
		return nil, fmt.Errorf("%w: OCRA suite %q: %s", ErrUnsupported, s, why)
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return bad("want OCRA-1:HOTP-SHAx-t:DataInput")
	}
	if parts[0] != "OCRA-1" {
		return bad("only version OCRA-1 exists")
	}
	cf := strings.Split(parts[1], "-")
	if len(cf) != 3 || cf[0] != "HOTP" {
		return bad("CryptoFunction must be HOTP-SHAx-t")
	}
	su := &Suite{Raw: s}
	switch cf[1] {
	case "SHA1":
		su.Hash = crypto.SHA1
	case "SHA256":
		su.Hash = crypto.SHA256
	case "SHA512":
		su.Hash = crypto.SHA512
	default:
		return bad("hash must be SHA1, SHA256 or SHA512")
	}
	d, err := strconv.Atoi(cf[2])
	if err != nil || len(cf[2]) > 2 {
		return bad("truncation must be a number")
	}
	if d < 4 || d > 10 {
		return bad("truncation must be 4 to 10 digits")
	}
	su.Digits = d
	items := strings.Split(parts[2], "-")
	i := 0
	if items[0] == "C" {
		su.Counter = true
		i++
	}
	if i >= len(items) {
		return bad("DataInput needs a question Qxnn")
	}
	q := items[i]
	if len(q) != 4 || q[0] != 'Q' || !isDigits(q[2:]) {
		return bad("question must be QNnn, QAnn or QHnn")
	}
	switch q[1] {
	case 'N', 'A', 'H':
		su.QType = q[1]
	default:
		return bad("question type must be N, A or H")
	}
	su.QLen, _ = strconv.Atoi(q[2:])
	if su.QLen < 4 || su.QLen > 64 {
		return bad("question length must be 04 to 64")
	}
	i++
	// Then, in this order and each at most once: P, S, T.
	stage := 0
	for ; i < len(items); i++ {
		it := items[i]
		switch {
		case len(it) > 1 && it[0] == 'P' && stage < 1:
			if su.PINHash, err = ParseHash(it[1:]); err != nil {
				return bad("PIN hash must be PSHA1, PSHA256 or PSHA512")
			}
			stage = 1
		case len(it) >= 1 && it[0] == 'S' && stage < 2:
			su.SessionLen = 64
			if len(it) > 1 {
				if len(it) != 4 || !isDigits(it[1:]) {
					return bad("session information must be Snnn")
				}
				su.SessionLen, _ = strconv.Atoi(it[1:])
				if su.SessionLen < 1 || su.SessionLen > 512 {
					return bad("session information length must be 001 to 512")
				}
			}
			stage = 2
		case len(it) >= 3 && it[0] == 'T' && stage < 3:
			n, err := strconv.Atoi(it[1 : len(it)-1])
			if err != nil || !isDigits(it[1:len(it)-1]) || len(it) > 4 {
				return bad("timestamp must be Tnx with x one of S, M, H")
			}
			switch it[len(it)-1] {
			case 'S':
				if n < 1 || n > 59 {
					return bad("timestamp seconds must be 1 to 59")
				}
				su.TimeStep = time.Duration(n) * time.Second
			case 'M':
				if n < 1 || n > 59 {
					return bad("timestamp minutes must be 1 to 59")
				}
				su.TimeStep = time.Duration(n) * time.Minute
			case 'H':
				if n < 1 || n > 48 {
					return bad("timestamp hours must be 1 to 48")
				}
				su.TimeStep = time.Duration(n) * time.Hour
			default:
				return bad("timestamp unit must be S, M or H")
			}
			stage = 3
		default:
			return bad(fmt.Sprintf("unexpected DataInput item %q", it))
		}
	}
	return su, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String returns the suite text.
func (s *Suite) String() string { return s.Raw }

// TimeSteps is the OCRA timestamp (steps since the Unix epoch) for t.
func (s *Suite) TimeSteps(t time.Time) uint64 {
	if s.TimeStep == 0 {
		return 0
	}
	sec := t.Unix()
	if sec < 0 {
		return 0
	}
	return uint64(sec / int64(s.TimeStep/time.Second))
}

// OCRAInput is the DataInput of one computation. Fields the suite does not
// use must be left zero.
type OCRAInput struct {
	Counter  uint64
	Question string // digits (QN), printable ASCII (QA) or hex digits (QH)
	PIN      string // hashed with the suite's PIN hash; or give PINHash
	PINHash  []byte
	Session  []byte // at most SessionLen bytes, right-aligned in the field
	// Timestamp is the number of time steps; use Suite.TimeSteps.
	Timestamp uint64
}

// CheckQuestion reports whether q is a question of the suite's type and
// length (at most QLen characters, at least 4).
func (s *Suite) CheckQuestion(q string) error {
	if len(q) < 4 || len(q) > s.QLen {
		return fmt.Errorf("%w: question of %d characters for %s (want 4 to %d)", ErrInvalid, len(q), s.Raw, s.QLen)
	}
	_, err := s.questionField(q)
	return err
}

func (s *Suite) questionField(q string) ([]byte, error) {
	var hexq string
	switch s.QType {
	case 'N':
		if !isDigits(q) || len(q) > 64 {
			return nil, fmt.Errorf("%w: numeric question must be 1 to 64 decimal digits", ErrInvalid)
		}
		n, _ := new(big.Int).SetString(q, 10)
		hexq = strings.ToUpper(n.Text(16))
	case 'A':
		if len(q) == 0 || len(q) > questionBytes {
			return nil, fmt.Errorf("%w: alphanumeric question must be 1 to %d characters", ErrInvalid, questionBytes)
		}
		for i := 0; i < len(q); i++ {
			if q[i] < 0x20 || q[i] > 0x7e {
				return nil, fmt.Errorf("%w: alphanumeric question must be printable ASCII", ErrInvalid)
			}
		}
		out := make([]byte, questionBytes)
		copy(out, q)
		return out, nil
	case 'H':
		if len(q) == 0 || len(q) > 2*questionBytes {
			return nil, fmt.Errorf("%w: hexadecimal question must be 1 to %d hex digits", ErrInvalid, 2*questionBytes)
		}
		hexq = q
	default:
		return nil, fmt.Errorf("%w: question type %q", ErrUnsupported, s.QType)
	}
	// RFC 6287 appendix A: the hex text is padded on the right with '0' to
	// 256 hex digits (so an odd-length value is shifted by a nibble, as the
	// reference implementation and the test vectors do).
	hexq += strings.Repeat("0", 2*questionBytes-len(hexq))
	out, err := hex.DecodeString(hexq)
	if err != nil {
		return nil, fmt.Errorf("%w: question is not hexadecimal", ErrInvalid)
	}
	return out, nil
}

// Message builds the DataInput bytes HMACed for in:
// suite || 0x00 || C || Q || P || S || T.
func (s *Suite) Message(in OCRAInput) ([]byte, error) {
	q, err := s.questionField(in.Question)
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 0, len(s.Raw)+1+8+questionBytes+64+s.SessionLen+8)
	msg = append(msg, s.Raw...)
	msg = append(msg, 0)
	if s.Counter {
		msg = append(msg, CounterMessage(in.Counter)...)
	} else if in.Counter != 0 {
		return nil, fmt.Errorf("%w: counter given but suite %s has no C", ErrInvalid, s.Raw)
	}
	msg = append(msg, q...)
	if s.PINHash != 0 {
		ph := in.PINHash
		if ph == nil {
			if in.PIN == "" {
				return nil, fmt.Errorf("%w: suite %s needs a PIN", ErrInvalid, s.Raw)
			}
			hh := s.PINHash.New()
			hh.Write([]byte(in.PIN))
			ph = hh.Sum(nil)
		}
		if len(ph) != s.PINHash.Size() {
			return nil, fmt.Errorf("%w: PIN hash of %d bytes for %s", ErrInvalid, len(ph), HashName(s.PINHash))
		}
		msg = append(msg, ph...)
	} else if in.PIN != "" || in.PINHash != nil {
		return nil, fmt.Errorf("%w: PIN given but suite %s has no P", ErrInvalid, s.Raw)
	}
	if s.SessionLen > 0 {
		if len(in.Session) > s.SessionLen {
			return nil, fmt.Errorf("%w: session information of %d bytes (suite allows %d)", ErrInvalid, len(in.Session), s.SessionLen)
		}
		field := make([]byte, s.SessionLen)
		copy(field[s.SessionLen-len(in.Session):], in.Session)
		msg = append(msg, field...)
	} else if in.Session != nil {
		return nil, fmt.Errorf("%w: session information given but suite %s has no S", ErrInvalid, s.Raw)
	}
	if s.TimeStep > 0 {
		msg = append(msg, CounterMessage(in.Timestamp)...)
	} else if in.Timestamp != 0 {
		return nil, fmt.Errorf("%w: timestamp given but suite %s has no T", ErrInvalid, s.Raw)
	}
	return msg, nil
}

// Compute returns the OCRA response for in.
func (s *Suite) Compute(ctx context.Context, m MAC, in OCRAInput) (string, error) {
	r, err := s.ComputeBatch(ctx, m, []OCRAInput{in})
	if err != nil {
		return "", err
	}
	return r[0], nil
}

// ComputeBatch returns the responses for several inputs (a counter or time
// window) with one call to m.
func (s *Suite) ComputeBatch(ctx context.Context, m MAC, ins []OCRAInput) ([]string, error) {
	if len(ins) == 0 {
		return nil, fmt.Errorf("%w: no OCRA input", ErrInvalid)
	}
	msgs := make([][]byte, len(ins))
	for i, in := range ins {
		var err error
		if msgs[i], err = s.Message(in); err != nil {
			return nil, err
		}
	}
	macs, err := m.MAC(ctx, s.Hash, msgs)
	if err != nil {
		return nil, fmt.Errorf("computing OCRA: %w", err)
	}
	if len(macs) != len(msgs) {
		return nil, fmt.Errorf("computing OCRA: MAC returned %d values for %d messages", len(macs), len(msgs))
	}
	out := make([]string, len(macs))
	for i, mac := range macs {
		if out[i], err = Truncate(mac, s.Digits); err != nil {
			return nil, err
		}
	}
	return out, nil
}
