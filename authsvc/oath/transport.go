package oath

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/otp/pskc"
)

// TransportHSM is what an import with the transport key in the HSM needs
// beyond HSM (devices/hsm.Service has it).
type TransportHSM interface {
	ImportSecret(ctx context.Context, transportRef, storageLabel string, v hsm.TransportValue) (hsm.ImportedSecret, error)
	DecryptTransport(ctx context.Context, transportRef string, v hsm.TransportValue) ([]byte, error)
	TransportPublicKey(ctx context.Context, ref string) (*rsa.PublicKey, error)
}

// ErrNoTransport: the HSM given cannot open files with a transport key.
var ErrNoTransport = errors.New("this HSM service cannot unwrap with a transport key")

// hsmTransport is the pskc.Transport over the HSM: seeds are unwrapped
// there with the transport key ref and wrapped by the storage key.
type hsmTransport struct {
	h       TransportHSM
	ref     string
	storage string
}

var _ pskc.Transport = hsmTransport{}

func transportValue(v pskc.EncryptedValue) (hsm.TransportValue, error) {
	alg := func(a string) (hsm.TransportAlg, error) {
		switch a {
		case pskc.EncAESCBC:
			return hsm.TransportAESCBC, nil
		case pskc.EncRSAPKCS1:
			return hsm.TransportRSAPKCS1, nil
		case pskc.EncRSAOAEP:
			return hsm.TransportRSAOAEP, nil
		}
		return 0, fmt.Errorf("%w: encryption %q", pskc.ErrUnsupported, a)
	}
	a, err := alg(v.Alg)
	if err != nil {
		return hsm.TransportValue{}, err
	}
	tv := hsm.TransportValue{Alg: a, Ciphertext: v.CipherValue}
	if v.MACKey != nil {
		ma, err := alg(v.MACKeyAlg)
		if err != nil {
			return hsm.TransportValue{}, err
		}
		if ma != a {
			return hsm.TransportValue{}, fmt.Errorf("%w: the MAC key is encrypted with %s, the value with %s", pskc.ErrUnsupported, v.MACKeyAlg, v.Alg)
		}
		tv.MACKey, tv.MACHash, tv.MAC = v.MACKey, v.MACHash, v.MAC
	}
	return tv, nil
}

// transportErr files the HSM's refusals under the pskc errors the
// importer reports.
func transportErr(err error) error {
	switch {
	case errors.Is(err, hsm.ErrTransportMAC):
		return fmt.Errorf("%w (checked in the HSM)", pskc.ErrMAC)
	case errors.Is(err, hsm.ErrTransportDecrypt):
		return fmt.Errorf("%w: %w", pskc.ErrDecrypt, err)
	}
	return err
}

func (t hsmTransport) Secret(ctx context.Context, v pskc.EncryptedValue) (pskc.Sealed, error) {
	tv, err := transportValue(v)
	if err != nil {
		return pskc.Sealed{}, err
	}
	is, err := t.h.ImportSecret(ctx, t.ref, t.storage, tv)
	if err != nil {
		return pskc.Sealed{}, transportErr(err)
	}
	return pskc.Sealed{Wrapped: is.Wrapped, Len: is.Len, LenExact: is.LenExact}, nil
}

func (t hsmTransport) Decrypt(ctx context.Context, v pskc.EncryptedValue) ([]byte, error) {
	tv, err := transportValue(v)
	if err != nil {
		return nil, err
	}
	pt, err := t.h.DecryptTransport(ctx, t.ref, tv)
	return pt, transportErr(err)
}

// Certificate checks that the file was encrypted to the transport key.
func (t hsmTransport) Certificate(ctx context.Context, der []byte) error {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("%w: EncryptionKey X509Certificate: %v", pskc.ErrMalformed, err)
	}
	want, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: the file's transport certificate holds a %T, not an RSA key", pskc.ErrUnsupported, c.PublicKey)
	}
	have, err := t.h.TransportPublicKey(ctx, t.ref)
	if err != nil {
		return err
	}
	if !have.Equal(want) {
		return fmt.Errorf("%w: the file was encrypted to the key of certificate %q (serial %s), not to transport key %s", pskc.ErrDecrypt, c.Subject.String(), c.SerialNumber, t.ref)
	}
	return nil
}
