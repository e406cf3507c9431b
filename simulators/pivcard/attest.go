package pivcard

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
)

// doAttest answers Yubico's ATTEST (INS F9): a certificate for the key in
// slot P1, signed by the device attestation key in slot f9, whose subject
// names the slot and whose extensions carry firmware version, serial,
// policies and form factor. Only keys generated on the card are attested.
func (c *Card) doAttest(cmd command) ([]byte, uint16) {
	if cmd.p2 != 0 || !isKeySlot(cmd.p1) {
		return nil, swIncorrectP1P2
	}
	sk, key, ok := c.loadSlot(cmd.p1)
	if !ok || sk.Origin != originGenerated {
		return nil, swWrongData
	}
	_, attKey, ok := c.loadSlot(keyRefAttestation)
	if !ok {
		return nil, swReferenceNotFound
	}
	signer, ok := attKey.(crypto.Signer)
	if !ok {
		return nil, swReferenceNotFound
	}
	issuer, ok := c.attestationCert()
	if !ok {
		return nil, swReferenceNotFound
	}
	pub := key.(interface{ Public() crypto.PublicKey }).Public()
	serial, _ := asn1.Marshal(int64(c.st.Serial))
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(c.rand),
		Subject:      pkix.Name{CommonName: fmt.Sprintf("YubiKey PIV Attestation %02x", cmd.p1)},
		NotBefore:    issuer.NotBefore,
		NotAfter:     issuer.NotAfter,
		ExtraExtensions: []pkix.Extension{
			{Id: oidFirmware, Value: c.st.Version[:]},
			{Id: oidSerial, Value: serial},
			{Id: oidPolicy, Value: []byte{sk.PINPolicy, sk.TouchPolicy}},
			{Id: oidFormFactor, Value: []byte{c.st.FormFactor}},
		},
	}
	der, err := x509.CreateCertificate(c.rand, tmpl, issuer, pub, signer)
	if err != nil {
		return nil, swWrongData
	}
	return der, swOK
}

// attestationCert is the certificate stored in object 5FFF01.
func (c *Card) attestationCert() (*x509.Certificate, bool) {
	obj, ok := c.st.Objects[objAttestation]
	if !ok {
		return nil, false
	}
	in, err := parseTLVs(obj)
	if err != nil {
		return nil, false
	}
	der, ok := find(in, 0x70)
	if !ok {
		return nil, false
	}
	cert, err := x509.ParseCertificate(der)
	return cert, err == nil
}
