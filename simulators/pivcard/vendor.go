package pivcard

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"time"
)

// Vendor is the simulator's stand-in for Yubico's attestation root: a CA
// that signs each card's device attestation certificate (slot f9), which in
// turn signs the per-slot attestation certificates. A verifier that trusts
// Vendor.Cert can check that a key was generated on one of these cards.
type Vendor struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewVendor makes a new vendor root CA (ECDSA P-256), valid from now for 20 years.
func NewVendor(r io.Reader, now time.Time) (*Vendor, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), r)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(r),
		Subject:               pkix.Name{CommonName: "egate PIV simulator vendor root", Organization: []string{"egate simulators"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(r, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Vendor{Cert: cert, Key: key}, nil
}

// LoadOrCreateVendor reads a vendor root (PEM certificate and PKCS#8 key)
// from path, creating and saving a new one if the file does not exist.
func LoadOrCreateVendor(path string, now time.Time) (*Vendor, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		v, err := NewVendor(rand.Reader, now)
		if err != nil {
			return nil, fmt.Errorf("creating vendor root: %w", err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(v.Key)
		if err != nil {
			return nil, err
		}
		out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: v.Cert.Raw})
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
		if err := os.WriteFile(path, out, 0o600); err != nil {
			return nil, fmt.Errorf("saving vendor root: %w", err)
		}
		return v, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading vendor root: %w", err)
	}
	v := &Vendor{}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			v.Cert, err = x509.ParseCertificate(blk.Bytes)
		case "PRIVATE KEY":
			var k any
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
			if s, ok := k.(crypto.Signer); ok {
				v.Key = s
			}
		}
		if err != nil {
			return nil, fmt.Errorf("parsing vendor root %s: %w", path, err)
		}
	}
	if v.Cert == nil || v.Key == nil {
		return nil, fmt.Errorf("vendor root %s: want a CERTIFICATE and a PRIVATE KEY block", path)
	}
	return v, nil
}

// RootPEM is the vendor root certificate in PEM, for verifiers.
func (v *Vendor) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: v.Cert.Raw})
}

func randSerial(r io.Reader) *big.Int {
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		b[0] = 1
	}
	b[0] &= 0x7f
	b[0] |= 0x01
	return new(big.Int).SetBytes(b)
}

// Yubico's attestation extensions (developers.yubico.com/PIV/Introduction/PIV_attestation.html).
var (
	oidFirmware   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 3}
	oidSerial     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 7}
	oidPolicy     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}
	oidFormFactor = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 9}
)

// newDeviceAttestation makes a card's attestation key and its certificate,
// signed by the vendor root.
func newDeviceAttestation(r io.Reader, v *Vendor, serial uint32) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), r)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(r),
		Subject:               pkix.Name{CommonName: fmt.Sprintf("egate PIV simulator attestation %d", serial)},
		NotBefore:             v.Cert.NotBefore,
		NotAfter:              v.Cert.NotAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(r, tmpl, v.Cert, key.Public(), v.Key)
	if err != nil {
		return nil, nil, err
	}
	return key, der, nil
}
