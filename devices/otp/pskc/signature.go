package pskc

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// ErrSignature: a signed document whose signature does not verify with the
// vendor's certificate, or an unsigned one where a signature was required.
var ErrSignature = errors.New("the PSKC document's signature does not verify")

// MaxSignedSize bounds a signed document: the signature is verified over
// the whole document, in memory (about 500 bytes a token).
const MaxSignedSize = 256 << 20

const dsigNS = "http://www.w3.org/2000/09/xmldsig#"

// VerifySignature checks the enveloped XML signature (RFC 6030 §7) of the
// document read from r against the vendor's certificates (any of them may
// have signed; one named in the signature's KeyInfo must be among them),
// valid at now, and returns the document as signed: the signed element
// with the signature removed and the transforms applied. Read that, never
// the original bytes, so that what is imported is what was signed.
//
// XML-DSig is verified by github.com/russellhaering/goxmldsig over
// github.com/beevik/etree: maintained, used by the Go SAML libraries,
// pure Go, and it refuses SHA-1 signatures with Go's crypto/x509.
func VerifySignature(r io.Reader, certs []*x509.Certificate, now time.Time) ([]byte, error) {
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no vendor certificate to verify it with", ErrSignature)
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxSignedSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSignedSize {
		return nil, fmt.Errorf("%w: a signed document larger than %d MiB is not verified", ErrUnsupported, MaxSignedSize>>20)
	}
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	root := doc.Root()
	if root == nil || root.Tag != "KeyContainer" || root.NamespaceURI() != Namespace {
		return nil, fmt.Errorf("%w: the root element is not an RFC 6030 KeyContainer", ErrMalformed)
	}
	n := 0
	for _, c := range root.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == dsigNS {
			n++
		}
	}
	switch {
	case n == 0:
		return nil, fmt.Errorf("%w: the file is not signed (no ds:Signature in the KeyContainer), but a vendor certificate was given", ErrSignature)
	case n > 1 || len(root.FindElements(".//Signature")) != 1:
		// One signature, a child of the KeyContainer: no other for a
		// verifier to be pointed at.
		return nil, fmt.Errorf("%w: more than one ds:Signature in the document (want one, in the KeyContainer)", ErrMalformed)
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: certs})
	vc.IdAttribute = "Id"
	vc.Clock = dsig.NewFakeClockAt(now)
	signed, err := vc.Validate(root)
	if err != nil {
		return nil, fmt.Errorf("%w with the vendor certificate given: %v", ErrSignature, err)
	}
	if signed.Tag != "KeyContainer" {
		return nil, fmt.Errorf("%w: the signature covers %s, not the KeyContainer", ErrSignature, signed.Tag)
	}
	out := etree.NewDocument()
	out.SetRoot(signed)
	b, err := out.WriteToBytes()
	if err != nil {
		return nil, err
	}
	return b, nil
}
