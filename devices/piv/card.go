package piv

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"sync"

	gopiv "github.com/go-piv/piv-go/v2/piv"
)

// Card is an open PIV card. Its methods are safe for concurrent use; they
// run one at a time.
type Card struct {
	d      *Driver
	name   string
	serial uint32

	mu     sync.Mutex
	yk     *gopiv.YubiKey // nil while disconnected
	closed bool
}

// Serial is the card's serial number.
func (c *Card) Serial() uint32 { return c.serial }

// Name is the reader the card is in.
func (c *Card) Name() string { return c.name }

// Close gives the card up; every later call fails with ErrClosed.
func (c *Card) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.d.release(c.name)
	if c.yk != nil {
		err := c.yk.Close()
		c.yk = nil
		return err
	}
	return nil
}

// with runs f on a live connection, reconnecting first if the card does not
// answer the side-effect-free GET SERIAL probe.
func (c *Card) with(ctx context.Context, f func(yk *gopiv.YubiKey) error) error {
	return c.run(ctx, true, f)
}

// run is with; without probe, f's own first command is the probe: f must
// be a command the card either answers or never receives (one APDU, such
// as a signature), so that a lost link (the card reset, removed or
// replaced) fails it before anything happened, as the probe would have.
// Either way a lost link drops the connection and the next call reopens.
func (c *Card) run(ctx context.Context, probe bool, f func(yk *gopiv.YubiKey) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if c.yk != nil && probe {
		if _, err := c.yk.Serial(); err != nil {
			// Not reopened at once: while pcscd has not yet noticed the
			// removal, a new connection would succeed and then fail half
			// way, and piv-go leaks such a half-open exclusive handle.
			c.yk.Close()
			c.yk = nil
			return fmt.Errorf("PIV card %d: %w (%v)", c.serial, ErrCardRemoved, err)
		}
	}
	if c.yk == nil {
		yk, err := gopiv.Open(c.name)
		if err != nil {
			return fmt.Errorf("reconnecting to PIV card %d: %w (%v)", c.serial, ErrCardRemoved, err)
		}
		s, err := yk.Serial()
		if err != nil || s != c.serial {
			yk.Close()
			return fmt.Errorf("reconnecting to PIV card %d: another card is in %q: %w", c.serial, c.name, ErrCardRemoved)
		}
		c.yk = yk
	}
	err := f(c.yk)
	if isLinkError(err) {
		c.yk.Close()
		c.yk = nil
		return fmt.Errorf("PIV card %d: %w (%v)", c.serial, ErrCardRemoved, err)
	}
	return err
}

// Issuer issues the certificate of an enrolled key: the bank CA.
type Issuer interface {
	IssueCertificate(ctx context.Context, pub crypto.PublicKey, subject pkix.Name, attestation *Attestation) (*x509.Certificate, error)
}

// Attestation is what the card proved about a key it generated: piv-go's
// verified reading, and the two certificates it was read from, so that an
// issuer can check them itself (chain to the vendor root, and that the
// attested key is the key it certifies).
type Attestation struct {
	*gopiv.Attestation
	DeviceCert *x509.Certificate // the card's attestation certificate (slot f9), issued by the vendor
	SlotCert   *x509.Certificate // signed by DeviceCert, for the generated key
}

// VendorRoots are the attestation roots this card's driver trusts.
func (c *Card) VendorRoots() *x509.CertPool { return c.d.cfg.VendorRoots }

// EnrollOptions says what key to make.
type EnrollOptions struct {
	Subject     pkix.Name
	Algorithm   gopiv.Algorithm   // default ECDSA P-256
	PINPolicy   gopiv.PINPolicy   // default once
	TouchPolicy gopiv.TouchPolicy // default never
}

// Enroll generates a key in slot, checks its attestation against the
// driver's vendor roots, has issuer certify it and stores the certificate
// on the card.
func (c *Card) Enroll(ctx context.Context, slot gopiv.Slot, opts EnrollOptions, issuer Issuer) (*x509.Certificate, *gopiv.Attestation, error) {
	if c.d.cfg.VendorRoots == nil {
		return nil, nil, fmt.Errorf("enrolling slot %s: no vendor roots configured: %w", slot, ErrAttestation)
	}
	pub, devCert, slotCert, err := c.GenerateAttested(ctx, slot, opts)
	if err != nil {
		return nil, nil, err
	}
	att, err := (&gopiv.Verifier{Roots: c.d.cfg.VendorRoots}).Verify(devCert, slotCert)
	if err != nil {
		return nil, nil, fmt.Errorf("slot %s: %w: %v", slot, ErrAttestation, err)
	}
	if !samePublic(slotCert.PublicKey, pub) || att.Slot != slot || att.Serial != c.serial {
		return nil, nil, fmt.Errorf("slot %s: attestation is for another key: %w", slot, ErrAttestation)
	}
	cert, err := issuer.IssueCertificate(ctx, pub, opts.Subject, &Attestation{Attestation: att, DeviceCert: devCert, SlotCert: slotCert})
	if err != nil {
		return nil, nil, fmt.Errorf("issuing certificate for slot %s: %w", slot, err)
	}
	if !samePublic(cert.PublicKey, pub) {
		return nil, nil, fmt.Errorf("issuer certified another key for slot %s", slot)
	}
	if err := c.StoreCertificate(ctx, slot, cert); err != nil {
		return nil, nil, err
	}
	return cert, att, nil
}

// GenerateAttested generates a key in slot (replacing the slot's key) and
// returns it with the card's attestation: its attestation certificate
// (slot f9, issued by the vendor) and the certificate that attests the new
// key. Nothing is verified here: Enroll checks the attestation against the
// driver's vendor roots; the desktop helper sends it to the bank, which
// checks it against its own.
func (c *Card) GenerateAttested(ctx context.Context, slot gopiv.Slot, opts EnrollOptions) (pub crypto.PublicKey, devCert, slotCert *x509.Certificate, err error) {
	if opts.Algorithm == 0 {
		opts.Algorithm = gopiv.AlgorithmEC256
	}
	if opts.PINPolicy == 0 {
		opts.PINPolicy = gopiv.PINPolicyOnce
	}
	if opts.TouchPolicy == 0 {
		opts.TouchPolicy = gopiv.TouchPolicyNever
	}
	err = c.with(ctx, func(yk *gopiv.YubiKey) error {
		var err error
		pub, err = yk.GenerateKey(c.d.cfg.ManagementKey, slot, gopiv.Key{Algorithm: opts.Algorithm, PINPolicy: opts.PINPolicy, TouchPolicy: opts.TouchPolicy})
		if err != nil {
			return fmt.Errorf("generating key in slot %s: %w", slot, err)
		}
		devCert, err = yk.AttestationCertificate()
		if err != nil {
			return fmt.Errorf("reading attestation certificate: %w", err)
		}
		slotCert, err = yk.Attest(slot)
		if err != nil {
			return fmt.Errorf("attesting slot %s: %w", slot, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return pub, devCert, slotCert, nil
}

// StoreCertificate writes cert to slot (with the management key).
func (c *Card) StoreCertificate(ctx context.Context, slot gopiv.Slot, cert *x509.Certificate) error {
	return c.with(ctx, func(yk *gopiv.YubiKey) error {
		if err := yk.SetCertificate(c.d.cfg.ManagementKey, slot, cert); err != nil {
			return fmt.Errorf("storing certificate in slot %s: %w", slot, err)
		}
		return nil
	})
}

func samePublic(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// Certificate reads the certificate stored for slot.
func (c *Card) Certificate(ctx context.Context, slot gopiv.Slot) (*x509.Certificate, error) {
	var cert *x509.Certificate
	err := c.with(ctx, func(yk *gopiv.YubiKey) (err error) {
		cert, err = yk.Certificate(slot)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading certificate of slot %s: %w", slot, err)
	}
	return cert, nil
}

// PINRetries is the number of PIN tries left.
func (c *Card) PINRetries(ctx context.Context) (int, error) {
	var n int
	err := c.with(ctx, func(yk *gopiv.YubiKey) (err error) {
		n, err = yk.Retries()
		return err
	})
	return n, err
}

// PINPrompt asks for the PIN; retries is what the card has left (-1 when
// the card does not say, because the PIN is verified already and the key
// wants it again). It is called at most once per operation.
type PINPrompt func(ctx context.Context, retries int) (string, error)

// Signer returns the key in slot as a crypto.Signer. Each Sign that needs
// the PIN (by the key's PIN policy) calls prompt once.
func (c *Card) Signer(ctx context.Context, slot gopiv.Slot, prompt PINPrompt) (*Signer, error) {
	var info gopiv.KeyInfo
	err := c.with(ctx, func(yk *gopiv.YubiKey) (err error) {
		info, err = yk.KeyInfo(slot)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading key in slot %s: %w", slot, err)
	}
	return &Signer{c: c, ctx: ctx, slot: slot, info: info, prompt: prompt}, nil
}

// Signer is a key on the card.
type Signer struct {
	c      *Card
	ctx    context.Context
	slot   gopiv.Slot
	info   gopiv.KeyInfo
	prompt PINPrompt
}

var _ crypto.Signer = (*Signer)(nil)

// Public is the key's public half.
func (s *Signer) Public() crypto.PublicKey { return s.info.PublicKey }

// Sign signs digest on the card, asking for the PIN when the key's policy
// requires it. A wrong PIN returns a *pin.Error (matching pin.ErrIncorrect, or
// ErrPINBlocked) and is not retried.
//
// A signature is one command to the card (GENERAL AUTHENTICATE) when the
// PIN need not be asked: no GET SERIAL probe before it (a lost link fails
// the signature's own command, which the card then never received), and
// for a PIN-once key no VERIFY to ask whether the PIN is verified: the
// card refuses the signature with "security status not satisfied" (6982)
// when it is not, having signed nothing; then the PIN is verified as
// before and the signature asked for again, once.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	var sig []byte
	err := s.c.run(s.ctx, false, func(yk *gopiv.YubiKey) error {
		priv, err := yk.PrivateKey(s.slot, s.info.PublicKey, gopiv.KeyAuth{PINPolicy: gopiv.PINPolicyNever})
		if err != nil {
			return err
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			return fmt.Errorf("key in slot %s cannot sign", s.slot)
		}
		if s.info.PINPolicy == gopiv.PINPolicyOnce {
			sig, err = signer.Sign(nil, digest, opts)
			if !isStatus(err, swSecurityStatusNotSatisfied) {
				return err
			}
		}
		if err := s.login(yk); err != nil {
			return err
		}
		sig, err = signer.Sign(nil, digest, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("signing with slot %s: %w", s.slot, err)
	}
	return sig, nil
}

func (s *Signer) login(yk *gopiv.YubiKey) error {
	if s.info.PINPolicy == gopiv.PINPolicyNever {
		return nil
	}
	// VERIFY without data: tries left, or 9000 (which piv-go reports as an
	// error) when the PIN is verified already. It spends no try.
	n, err := yk.Retries()
	verified := false
	switch {
	case err == nil && n == 0:
		return blocked(nil)
	case err == nil:
	case isLinkError(err):
		return err
	default:
		verified, n = true, -1
	}
	if verified && s.info.PINPolicy != gopiv.PINPolicyAlways {
		return nil
	}
	if s.prompt == nil {
		return ErrPINRequired
	}
	pin, err := s.prompt(s.ctx, n)
	if err != nil {
		return fmt.Errorf("PIN prompt: %w", err)
	}
	return pinErr(yk.VerifyPIN(pin))
}
