package helper

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/authsvc/orders"
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

// open opens the card of the configured reader (or the only one).
func (p *PIV) open(ctx context.Context) (*piv.Card, error) {
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
	return card, err
}

// signer is the authentication slot's key, asking pin when the card wants
// the PIN.
func (p *PIV) signer(ctx context.Context, card *piv.Card, pin PINFunc) (*piv.Signer, error) {
	return card.Signer(ctx, gopiv.SlotAuthentication, func(ctx context.Context, retries int) (string, error) {
		b, err := pin(ctx, p.Describe(), retries)
		if err != nil {
			return "", err
		}
		s := string(b)
		clear(b)
		return s, nil
	})
}

func (p *PIV) Sign(ctx context.Context, data []byte, pin PINFunc) ([]byte, error) {
	card, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	defer card.Close()
	cert, err := card.Certificate(ctx, gopiv.SlotAuthentication)
	if err != nil {
		return nil, pivErr(err)
	}
	signer, err := p.signer(ctx, card, pin)
	if err != nil {
		return nil, pivErr(err)
	}
	proof, err := pkcs11token.SignProof(signer, cert, data, false)
	if err != nil {
		return nil, pivErr(err)
	}
	return proof, nil
}

// Enrol makes a new key in the card's authentication slot (9a; a key it
// held before is replaced) that asks the PIN for every signature, reads the
// card's attestation of it, signs the order's data with it (the PIN asked
// here), and sends both to the bank, which checks the attestation against
// the vendors it accepts before it certifies the key; the certificate is
// written to the slot. The attestation proves the key was made on the card
// and cannot leave it; the signature, that this card answers this order.
func (p *PIV) Enrol(ctx context.Context, _ *orders.Opened, data []byte, pin PINFunc, issue IssueFunc) error {
	card, err := p.open(ctx)
	if err != nil {
		return err
	}
	defer card.Close()
	_, dev, slot, err := card.GenerateAttested(ctx, gopiv.SlotAuthentication, piv.EnrollOptions{PINPolicy: gopiv.PINPolicyAlways})
	if err != nil {
		return pivErr(err)
	}
	signer, err := p.signer(ctx, card, pin)
	if err != nil {
		return pivErr(err)
	}
	h := sha256.Sum256(data)
	sig, err := signer.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return pivErr(err)
	}
	der, err := issue(ctx, orders.EnrolAnswer{DeviceCert: dev.Raw, SlotCert: slot.Raw, Sig: sig, Serial: fmt.Sprint(card.Serial()), Label: "PIV card"})
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("the bank's certificate does not parse: %w", err)
	}
	return pivErr(card.StoreCertificate(ctx, gopiv.SlotAuthentication, cert))
}

func pivErr(err error) error {
	if err == nil {
		return nil
	}
	if perr := pinErr(err); perr != nil {
		return perr
	}
	switch {
	case errors.Is(err, piv.ErrCardRemoved), errors.Is(err, piv.ErrNoCard):
		return fmt.Errorf("%w: %w", ErrTokenRemoved, err)
	}
	return err
}
