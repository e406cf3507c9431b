package pivauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/devices/piv"
)

// The customer's own enrolment of a PIV card through the desktop helper
// (a signing order of kind enrol, authsvc/orders_enrol.go): the helper
// generates a key in the card's authentication slot, reads the card's
// attestation of it and, after the PIN, signs the order's data with the
// new key. The bank checks all of it here: the attestation chains to a
// vendor root the bank accepts (VendorRoots: factors.piv.vendor-roots),
// attests the authentication slot, a key that needs the PIN, and the key
// that signed this order's data; only then does the bank CA certify the
// attested key (checking the evidence again) and the card is bound.
// A key without a valid attestation is refused (apierr.BadAttestation) and
// nothing is issued or bound.

// CanEnrol reports whether customers may enrol PIV cards themselves: the
// bank must name the vendor roots it accepts.
func (s *Service) CanEnrol() bool { return s.VendorRoots != nil }

func badAttestation(format string, a ...any) error {
	return apierr.Wrap(apierr.BadAttestation, fmt.Errorf("%w: "+format, append([]any{ca.ErrAttestation}, a...)...))
}

// EnrolAttested enrols the attested key of a card for passportID: devDER
// is the card's attestation certificate (slot f9), slotDER the certificate
// attesting the new key, sig the new key's signature over SHA-256 of data
// (the order's data). It returns the certificate the bank CA issued, which
// the helper writes to the card.
func (s *Service) EnrolAttested(ctx context.Context, passportID string, data, devDER, slotDER, sig []byte) (*x509.Certificate, error) {
	if s.VendorRoots == nil {
		return nil, badAttestation("this bank accepts no PIV vendor's attestation (factors.piv.vendor-roots)")
	}
	dev, err := x509.ParseCertificate(devDER)
	if err != nil {
		return nil, badAttestation("the card's attestation certificate is missing or malformed")
	}
	slot, err := x509.ParseCertificate(slotDER)
	if err != nil {
		return nil, badAttestation("the attestation of the new key is missing or malformed")
	}
	att, err := (&gopiv.Verifier{Roots: s.VendorRoots}).Verify(dev, slot)
	if err != nil {
		return nil, badAttestation("%v", err)
	}
	if att.Slot != gopiv.SlotAuthentication {
		return nil, badAttestation("the key was made in slot %s, not in the authentication slot 9a", att.Slot)
	}
	pub, ok := slot.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, badAttestation("the attested key is not an ECDSA key")
	}
	h := sha256.Sum256(data)
	if !ecdsa.VerifyASN1(pub, h[:], sig) {
		return nil, fmt.Errorf("%w: the new key did not sign this enrolment", authn.ErrWrongAnswer)
	}
	var issued *x509.Certificate
	iss := &ca.PIVIssuer{CA: s.ca, Owner: passportID, Serial: att.Serial, Slot: att.Slot, VendorRoots: s.VendorRoots,
		Issued: func(c *x509.Certificate) { issued = c }}
	cert, err := iss.IssueCertificate(ctx, pub, pkix.Name{}, &piv.Attestation{Attestation: att, DeviceCert: dev, SlotCert: slot})
	if errors.Is(err, ca.ErrAttestation) || errors.Is(err, ca.ErrBadCSR) {
		return nil, apierr.Wrap(apierr.BadAttestation, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: issuing the PIV certificate: %w", authn.ErrUnavailable, err)
	}
	b := &Binding{CertSerial: ca.SerialHex(cert.SerialNumber), PassportID: passportID, CardSerial: att.Serial,
		Slot: att.Slot.String(), Firmware: fmt.Sprintf("%d.%d.%d", att.Version.Major, att.Version.Minor, att.Version.Patch),
		PINPolicy: pinPolicy(att.PINPolicy), TouchPolicy: touchPolicy(att.TouchPolicy), Status: "active"}
	if err := s.Bind(ctx, b); err != nil {
		if issued != nil {
			s.ca.Revoke(context.WithoutCancel(ctx), ca.SerialHex(issued.SerialNumber), ca.ReasonCessation)
		}
		return nil, fmt.Errorf("%w: %w", authn.ErrUnavailable, err)
	}
	return cert, nil
}

// EnrolAttested and CanEnrol on the factor let the passport's enrolment
// reach the service.
func (f factor) EnrolAttested(ctx context.Context, passportID string, data, devDER, slotDER, sig []byte) (*x509.Certificate, error) {
	return f.s.EnrolAttested(ctx, passportID, data, devDER, slotDER, sig)
}

func (f factor) CanEnrol() bool { return f.s.CanEnrol() }
