// Package oathtoken simulates a customer's dynamic-password token from a PSKC
// file: an HOTP token shows the next code when its button is pressed, a TOTP
// token the code of the current time step, an OCRA token the response to a
// question typed on its keypad (showing the payee tail and amount when the
// question carries a transaction, see devices/otp.TransactionQuestion).
//
// The simulator holds the seed in memory: it is the token. A Token is not
// safe for concurrent use (a physical token has one button).
package oathtoken

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
)

// Token is one simulated token.
type Token struct {
	Key     *pskc.Key
	counter uint64
	suite   *otp.Suite
}

// ErrNotFound reports that the file has no key with the serial asked for.
var ErrNotFound = errors.New("no such token in the PSKC file")

// Load reads the token with the given serial (the first key when serial is
// "") from a PSKC file.
func Load(r io.Reader, o pskc.Options, serial string) (*Token, error) {
	rd := pskc.NewReader(r, o)
	for {
		k, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: serial %q", ErrNotFound, serial)
		}
		if err != nil {
			return nil, err
		}
		if serial == "" || k.Serial == serial {
			t := &Token{Key: k, counter: k.Counter}
			if k.Params.Kind == otp.KindOCRA {
				if t.suite, err = otp.ParseSuite(k.Params.Suite); err != nil {
					return nil, err
				}
			}
			return t, nil
		}
		k.Wipe()
	}
}

func (t *Token) mac() otp.MAC { return otp.SoftwareMAC{Key: t.Key.Secret} }

// Press is the token's button: the next HOTP code (the counter moves on), or
// the TOTP code for now with the seconds it stays valid.
func (t *Token) Press(ctx context.Context, now time.Time) (code string, validFor time.Duration, err error) {
	p := t.Key.Params
	switch p.Kind {
	case otp.KindHOTP:
		code, err = otp.HOTP(ctx, t.mac(), p.Hash, t.counter, p.Digits)
		if err == nil {
			t.counter++
		}
		return code, 0, err
	case otp.KindTOTP:
		tp := p.TOTP()
		code, err = tp.Code(ctx, t.mac(), now)
		return code, tp.StepStart(tp.Step(now) + 1).Sub(now), err
	}
	return "", 0, fmt.Errorf("token %s answers questions (OCRA); use Respond", t.Key.Serial)
}

// Respond computes the OCRA response to a question typed on the keypad.
func (t *Token) Respond(ctx context.Context, question string, now time.Time) (string, error) {
	if t.suite == nil {
		return "", fmt.Errorf("token %s is not an OCRA token", t.Key.Serial)
	}
	in := otp.OCRAInput{Question: question, Timestamp: t.suite.TimeSteps(now)}
	if t.suite.Counter {
		in.Counter = t.counter
	}
	r, err := t.suite.Compute(ctx, t.mac(), in)
	if err == nil && t.suite.Counter {
		t.counter++
	}
	return r, err
}

// Describe is the label printed on the back of the token.
func (t *Token) Describe() string {
	p := t.Key.Params
	s := fmt.Sprintf("token %s (%s, key %s): %s", t.Key.Serial, t.Key.Manufacturer, t.Key.ID, p.Kind)
	switch p.Kind {
	case otp.KindOCRA:
		s += " " + p.Suite
	case otp.KindTOTP:
		s += fmt.Sprintf(" %s, %d digits, every %s", otp.HashName(p.Hash), p.Digits, p.Period)
	default:
		s += fmt.Sprintf(" %s, %d digits, counter %d", otp.HashName(p.Hash), p.Digits, t.counter)
	}
	return s
}
