package helper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/miekg/pkcs11"

	"github.com/egate-bank/egate/devices/pinsource"
	"github.com/egate-bank/egate/devices/pkcs11token"
)

// UShield is a 1st-generation U-shield reached through the token vendor's
// PKCS#11 module: it answers "ushield" orders. Each Sign opens the module
// and the token, logs in once with the PIN asked, signs and closes.
type UShield struct {
	Module string // the vendor's PKCS#11 library
	Label  string // the token's label ("" for the only token present)
}

func (u *UShield) Describe() string {
	if u.Label == "" {
		return "U-shield"
	}
	return fmt.Sprintf("U-shield %q", u.Label)
}

func (u *UShield) Answers(factor string) bool { return factor == "ushield" }

func (u *UShield) Sign(ctx context.Context, data []byte, pin PINFunc) ([]byte, error) {
	m, err := pkcs11token.Open(u.Module)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	label := u.Label
	if label == "" {
		ts, err := m.Tokens(ctx)
		if err != nil {
			return nil, removed(err)
		}
		if len(ts) != 1 {
			return nil, fmt.Errorf("%w: %d tokens present; name one with --token", ErrNoTool, len(ts))
		}
		label = ts[0].Label
	}
	tok, err := m.OpenToken(ctx, label)
	if errors.Is(err, pkcs11token.ErrTokenNotFound) {
		return nil, fmt.Errorf("%w: U-shield %q is not inserted", ErrNoTool, label)
	}
	if err != nil {
		return nil, removed(err)
	}
	defer tok.Close()
	p, err := pin(ctx, u.Describe(), -1)
	if err != nil {
		return nil, err
	}
	err = tok.Login(ctx, p)
	pinsource.Wipe(p)
	if perr := pinErr(err); perr != nil {
		return nil, perr
	}
	if err != nil {
		return nil, removed(err)
	}
	ids, err := tok.KeyIDs(ctx)
	if err != nil {
		return nil, removed(err)
	}
	for _, id := range ids {
		cert, err := tok.Certificate(ctx, id)
		if err != nil {
			continue // a key without the bank's certificate
		}
		key, err := tok.Key(ctx, id)
		if err != nil {
			return nil, removed(err)
		}
		proof, err := pkcs11token.SignProof(key, cert, data, false)
		if err != nil {
			return nil, removed(err)
		}
		return proof, nil
	}
	return nil, fmt.Errorf("%w: U-shield %q holds no enrolled key (enrol it first)", ErrNoTool, label)
}

// removed turns a PKCS#11 error that means the token went away into
// ErrTokenRemoved.
func removed(err error) error {
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		switch uint(pe) {
		case pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
			pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_TOKEN_NOT_RECOGNIZED:
			return fmt.Errorf("%w: %w", ErrTokenRemoved, err)
		}
	}
	return err
}

// UShield2 is a 2nd-generation U-shield: it shows the text on its own
// display and signs only after the customer presses its confirm button,
// asking its PIN itself. The helper reaches it over its local link (the
// simulator's POST /sign; egate sim ushield). It answers "ushield" and
// "ushield2" orders.
type UShield2 struct {
	URL  string // the device's link, e.g. http://127.0.0.1:8026
	HTTP *http.Client
}

func (u *UShield2) Describe() string           { return "U-shield with display" }
func (u *UShield2) Answers(factor string) bool { return factor == "ushield" || factor == "ushield2" }

func (u *UShield2) Sign(ctx context.Context, data []byte, _ PINFunc) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(u.URL, "/")+"/sign", bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	hc := u.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTokenRemoved, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return b, nil
	case resp.StatusCode == http.StatusConflict && strings.Contains(string(b), "cancel"):
		return nil, ErrDeclined
	}
	return nil, fmt.Errorf("the U-shield answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
}
