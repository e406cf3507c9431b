package helper

import (
	"context"
	"errors"
	"fmt"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/devices/piv"
	"github.com/egate-bank/egate/devices/pkcs11token"
)

// PIV is a PIV token in a PC/SC reader, reached with piv-go: it answers
// "piv" orders with the key in the authentication slot (9a) and the
// certificate the bank CA wrote there at enrolment.
type PIV struct {
	Driver *piv.Driver
	Reader string // "" for the only reader with a card
}

func (p *PIV) Describe() string {
	if p.Reader == "" {
		return "PIV card"
	}
	return fmt.Sprintf("PIV card in %q", p.Reader)
}

func (p *PIV) Answers(factor string) bool { return factor == "piv" }

func (p *PIV) Sign(ctx context.Context, data []byte, pin PINFunc) ([]byte, error) {
	reader := p.Reader
	if reader == "" {
		cs, err := p.Driver.Cards(ctx)
		if err != nil {
			return nil, err
		}
		if len(cs) != 1 {
			return nil, fmt.Errorf("%w: %d card readers; name one with --piv-reader", ErrNoTool, len(cs))
		}
		reader = cs[0]
	}
	card, err := p.Driver.Open(ctx, reader)
	if errors.Is(err, piv.ErrNoCard) {
		return nil, fmt.Errorf("%w: no PIV card in %q", ErrNoTool, reader)
	}
	if err != nil {
		return nil, err
	}
	defer card.Close()
	cert, err := card.Certificate(ctx, gopiv.SlotAuthentication)
	if err != nil {
		return nil, pivErr(err)
	}
	signer, err := card.Signer(ctx, gopiv.SlotAuthentication, func(ctx context.Context, retries int) (string, error) {
		b, err := pin(ctx, p.Describe(), retries)
		if err != nil {
			return "", err
		}
		s := string(b)
		clear(b)
		return s, nil
	})
	if err != nil {
		return nil, pivErr(err)
	}
	proof, err := pkcs11token.SignProof(signer, cert, data, false)
	if err != nil {
		return nil, pivErr(err)
	}
	return proof, nil
}

func pivErr(err error) error {
	if perr := pinErr(err); perr != nil {
		return perr
	}
	switch {
	case errors.Is(err, piv.ErrCardRemoved), errors.Is(err, piv.ErrNoCard):
		return fmt.Errorf("%w: %w", ErrTokenRemoved, err)
	}
	return err
}
