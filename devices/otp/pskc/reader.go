package pskc

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/egate-bank/egate/devices/otp"
)

// Namespace is the RFC 6030 namespace of KeyContainer.
const Namespace = "urn:ietf:params:xml:ns:keyprov:pskc"

// Limits that keep a hostile file from costing much.
const (
	maxCipherValue   = 4096    // base64 characters of one encrypted value
	maxSecretBytes   = 128     // HMAC seeds are at most a SHA-512 block
	maxPBKDF2Iter    = 1000000 // iterations a file may ask for
	defaultMinSecret = 16      // RFC 4226 §4 R6: at least 128 bits
)

// Options say how to open an encrypted file.
type Options struct {
	// Key is the pre-shared AES key (16, 24 or 32 bytes) for files whose
	// EncryptionKey is a ds:KeyName.
	Key []byte
	// Password is for files whose EncryptionKey is a PBKDF2 DerivedKey.
	Password []byte
	// MinSecretBytes refuses shorter seeds; 0 means 16 (RFC 4226's 128 bits).
	MinSecretBytes int
	// PINKey, when set, is called with the value of every pskc:pin key (the
	// PIN a PINPolicy's PINKeyId names); the value is wiped when it returns,
	// so keep a copy. Without it PIN keys are only counted.
	PINKey func(PINKey) error
	// Transport, when set, opens encrypted values inside the HSM that
	// holds the transport key: a pre-shared AES key (EncryptionKey
	// ds:KeyName; Key is then unused) or the RSA private key a file names
	// by its certificate (ds:X509Data, RFC 6030 §6.3). Keys then come with
	// Wrapped set and Secret nil.
	Transport Transport
}

// PINKey is the PIN held by a pskc:pin key package.
type PINKey struct {
	Index  int
	ID     string
	Serial string
	Value  []byte
}

// PIN usage modes of a PINPolicy (RFC 6030 §5.1) that the server checks.
const (
	PINAppend  = "Append"  // the customer types the code, then the PIN
	PINPrepend = "Prepend" // the customer types the PIN, then the code
)

// PINPolicy says that the server must check a PIN typed with the code.
// Keys whose PIN is checked on the device (Local) carry none.
type PINPolicy struct {
	Mode     string // PINAppend or PINPrepend
	KeyID    string // the pskc:pin key holding the PIN
	Min, Max int    // PIN length in digits
}

// Key is one token key read from a file.
type Key struct {
	Index        int // 1-based KeyPackage position
	ID           string
	Serial       string // DeviceInfo/SerialNo, or the Key Id when there is none
	Manufacturer string
	Issuer       string
	UserID       string
	Algorithm    string // the Algorithm URI as written
	Params       otp.Params
	Secret       []byte // the seed; the caller wipes it when done
	// Wrapped is the seed as the Transport's HSM let it out (wrapped for
	// storage), when the file was opened with Options.Transport; Secret is
	// then nil.
	Wrapped    []byte
	Counter    uint64
	TimeDrift  int64 // in time steps, as the file says
	StartDate  time.Time
	ExpiryDate time.Time
	PIN        *PINPolicy // nil unless the server checks a PIN (Append, Prepend)
}

// Wipe overwrites the secret.
func (k *Key) Wipe() {
	for i := range k.Secret {
		k.Secret[i] = 0
	}
}

// Reader reads a PSKC document one KeyPackage at a time.
type Reader struct {
	d        *xml.Decoder
	opts     Options
	started  bool
	done     bool
	index    int
	encKey   []byte // decryption key, when the file is encrypted
	keyName  string
	derived  bool
	macAlg   crypto.Hash
	macKey   []byte
	err      error // sticky
	skipped  int   // PIN keys skipped
	headerOK bool
	// With Options.Transport: the HSM holds the key (hsmKey), an RSA one
	// when asym; macEnc is the still encrypted MAC key.
	ctx       context.Context
	hsmKey    bool
	asym      bool
	macEnc    []byte
	macEncAlg string
}

// NewReader reads the document from r.
func NewReader(r io.Reader, opts Options) *Reader {
	d := xml.NewDecoder(r)
	d.Strict = true
	return &Reader{d: d, opts: opts}
}

// SkippedPINKeys is how many pskc:pin keys were skipped so far.
func (r *Reader) SkippedPINKeys() int { return r.skipped }

// Next returns the next token key, or io.EOF after the last one. Any other
// error is final.
func (r *Reader) Next() (*Key, error) {
	return r.NextContext(context.Background())
}

// NextContext is Next with the context of the Transport's HSM calls.
func (r *Reader) NextContext(ctx context.Context) (*Key, error) {
	r.ctx = ctx
	defer func() { r.ctx = nil }()
	if r.err != nil {
		return nil, r.err
	}
	k, err := r.next()
	if err != nil {
		r.err = err
	}
	return k, err
}

func (r *Reader) next() (*Key, error) {
	if r.done {
		return nil, io.EOF
	}
	if !r.started {
		if err := r.start(); err != nil {
			return nil, err
		}
	}
	for {
		line, _ := r.d.InputPos()
		tok, err := r.d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: the file ends before </KeyContainer> (truncated?) after key package %d", ErrMalformed, r.index)
			}
			return nil, fmt.Errorf("%w: after key package %d: %v", ErrMalformed, r.index, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			// The container's end: nothing may follow but whitespace, comments
			// and processing instructions.
			if err := r.finish(); err != nil {
				return nil, err
			}
			r.done = true
			return nil, io.EOF
		case xml.StartElement:
			switch t.Name.Local {
			case "EncryptionKey":
				if r.index > 0 || r.headerOK {
					return nil, fmt.Errorf("%w: EncryptionKey must come before the key packages", ErrMalformed)
				}
				var ek xEncryptionKey
				if err := r.d.DecodeElement(&ek, &t); err != nil {
					return nil, fmt.Errorf("%w: EncryptionKey: %v", ErrMalformed, err)
				}
				if err := r.setEncryptionKey(&ek); err != nil {
					return nil, err
				}
			case "MACMethod", "MACAlgorithm":
				if r.index > 0 {
					return nil, fmt.Errorf("%w: MACMethod must come before the key packages", ErrMalformed)
				}
				var mm xMACMethod
				if err := r.d.DecodeElement(&mm, &t); err != nil {
					return nil, fmt.Errorf("%w: MACMethod: %v", ErrMalformed, err)
				}
				if err := r.setMAC(&mm); err != nil {
					return nil, err
				}
			case "KeyPackage":
				r.headerOK = true
				r.index++
				var kp xKeyPackage
				if err := r.d.DecodeElement(&kp, &t); err != nil {
					return nil, &EntryError{Index: r.index, Line: line, Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
				}
				k, err := r.convert(&kp)
				if err != nil {
					ee := &EntryError{Index: r.index, Line: line, Serial: kp.DeviceInfo.SerialNo, Err: err}
					if len(kp.Keys) > 0 {
						ee.KeyID = kp.Keys[0].ID
					}
					return nil, ee
				}
				if k == nil { // a PIN key
					r.skipped++
					continue
				}
				return k, nil
			case "Signature":
				return nil, fmt.Errorf("%w: the document is signed (ds:Signature): verify it with the vendor's certificate first (VerifySignature; egate admin token import-pskc --signer-cert)", ErrUnsupported)
			default:
				if err := r.d.Skip(); err != nil {
					return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, t.Name.Local, err)
				}
			}
		}
	}
}

func (r *Reader) start() error {
	for {
		tok, err := r.d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: empty document (no KeyContainer)", ErrMalformed)
			}
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != "KeyContainer" {
				return fmt.Errorf("%w: the root element is %q, not KeyContainer", ErrMalformed, t.Name.Local)
			}
			if t.Name.Space != Namespace {
				return fmt.Errorf("%w: KeyContainer namespace %q (want %s, RFC 6030)", ErrUnsupported, t.Name.Space, Namespace)
			}
			version := ""
			for _, a := range t.Attr {
				if a.Name.Local == "Version" {
					version = a.Value
				}
			}
			if version != "1.0" {
				return fmt.Errorf("%w: KeyContainer Version %q (want 1.0)", ErrUnsupported, version)
			}
			r.started = true
			return nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("%w: text before the KeyContainer", ErrMalformed)
			}
		}
	}
}

func (r *Reader) finish() error {
	for {
		tok, err := r.d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: after </KeyContainer>: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("%w: text after </KeyContainer>", ErrMalformed)
			}
		case xml.Comment, xml.ProcInst:
		default:
			return fmt.Errorf("%w: content after </KeyContainer>", ErrMalformed)
		}
	}
}

func (r *Reader) setEncryptionKey(ek *xEncryptionKey) error {
	switch {
	case ek.DerivedKey != nil:
		dk := ek.DerivedKey.KeyDerivationMethod
		if !strings.HasSuffix(dk.Algorithm, "pkcs-5v2-0#pbkdf2") {
			return fmt.Errorf("%w: key derivation %q (want PBKDF2)", ErrUnsupported, dk.Algorithm)
		}
		if r.opts.Transport != nil {
			return fmt.Errorf("%w: this file is protected by a password (key %q), derived and used in software: import it with the password, not with a transport key in the HSM", ErrUnsupported, ek.DerivedKey.MasterKeyName)
		}
		if len(r.opts.Password) == 0 {
			return fmt.Errorf("%w: this file is protected by a password (key %q)", ErrNeedKey, ek.DerivedKey.MasterKeyName)
		}
		p := dk.PBKDF2Params
		salt, err := decodeB64(p.Salt.Specified, 1024)
		if err != nil || len(salt) == 0 {
			return fmt.Errorf("%w: PBKDF2 salt", ErrMalformed)
		}
		iter, err := strconv.Atoi(strings.TrimSpace(p.IterationCount))
		if err != nil || iter < 1 || iter > maxPBKDF2Iter {
			return fmt.Errorf("%w: PBKDF2 iteration count %q (want 1 to %d)", ErrMalformed, p.IterationCount, maxPBKDF2Iter)
		}
		klen, err := strconv.Atoi(strings.TrimSpace(p.KeyLength))
		if err != nil || (klen != 16 && klen != 24 && klen != 32) {
			return fmt.Errorf("%w: PBKDF2 key length %q (want 16, 24 or 32)", ErrUnsupported, p.KeyLength)
		}
		prf := crypto.SHA1
		switch alg := p.PRF.Algorithm; {
		case alg == "" || strings.HasSuffix(alg, "hmac-sha1"):
		case strings.HasSuffix(alg, "hmac-sha256"):
			prf = crypto.SHA256
		case strings.HasSuffix(alg, "hmac-sha512"):
			prf = crypto.SHA512
		default:
			return fmt.Errorf("%w: PBKDF2 PRF %q", ErrUnsupported, alg)
		}
		key, err := pbkdf2.Key(prf.New, string(r.opts.Password), salt, iter, klen)
		if err != nil {
			return fmt.Errorf("deriving the key from the password: %w", err)
		}
		r.encKey, r.derived, r.keyName = key, true, ek.DerivedKey.MasterKeyName
	case ek.X509Data != nil:
		if r.opts.Transport == nil {
			return fmt.Errorf("%w: this file is encrypted to an RSA key (ds:X509Data, RFC 6030 §6.3): its private key must be in the HSM; name it as the transport key", ErrNeedKey)
		}
		if c := strings.TrimSpace(ek.X509Data.Certificate); c != "" {
			der, err := decodeB64(c, 16384)
			if err != nil {
				return fmt.Errorf("EncryptionKey X509Certificate: %w", err)
			}
			if err := r.opts.Transport.Certificate(r.ctx, der); err != nil {
				return err
			}
		}
		r.hsmKey, r.asym = true, true
	case r.opts.Transport != nil:
		r.keyName = strings.TrimSpace(ek.KeyName)
		r.hsmKey = true
	default:
		r.keyName = strings.TrimSpace(ek.KeyName)
		if len(r.opts.Key) == 0 {
			return fmt.Errorf("%w: this file is encrypted with the pre-shared key %q", ErrNeedKey, r.keyName)
		}
		switch len(r.opts.Key) {
		case 16, 24, 32:
		default:
			return fmt.Errorf("%w: pre-shared key of %d bytes (want 16, 24 or 32)", ErrDecrypt, len(r.opts.Key))
		}
		r.encKey = r.opts.Key
	}
	return nil
}

func (r *Reader) setMAC(mm *xMACMethod) error {
	switch alg := mm.Algorithm; {
	case strings.HasSuffix(alg, "#hmac-sha1"):
		r.macAlg = crypto.SHA1
	case strings.HasSuffix(alg, "#hmac-sha256"):
		r.macAlg = crypto.SHA256
	case strings.HasSuffix(alg, "#hmac-sha512"):
		r.macAlg = crypto.SHA512
	default:
		return fmt.Errorf("%w: MAC algorithm %q", ErrUnsupported, alg)
	}
	if mm.MACKey == nil {
		return fmt.Errorf("%w: MACMethod without MACKey", ErrUnsupported)
	}
	if r.hsmKey {
		alg, _, err := encAlg(mm.MACKey.EncryptionMethod.Algorithm)
		if err != nil {
			return fmt.Errorf("MACMethod/MACKey: %w", err)
		}
		ct, err := decodeB64(mm.MACKey.CipherData.CipherValue, maxCipherValue)
		if err != nil {
			return fmt.Errorf("MACMethod/MACKey: %w", err)
		}
		r.macEnc, r.macEncAlg = ct, alg
		return nil
	}
	if r.encKey == nil {
		return fmt.Errorf("%w: MACKey is encrypted but the file has no EncryptionKey", ErrMalformed)
	}
	k, err := r.decrypt(mm.MACKey)
	if err != nil {
		return fmt.Errorf("MACMethod/MACKey: %w", err)
	}
	if len(k) < 16 {
		return fmt.Errorf("MACMethod/MACKey: %w", ErrDecrypt)
	}
	r.macKey = k
	return nil
}

// decrypt checks nothing but the cipher and padding; callers check the MAC
// first where there is one.
func (r *Reader) decrypt(e *xEncrypted) ([]byte, error) {
	if r.encKey == nil {
		return nil, fmt.Errorf("%w: an encrypted value but no EncryptionKey in the file", ErrMalformed)
	}
	klen := 0
	switch alg := e.EncryptionMethod.Algorithm; alg {
	case "http://www.w3.org/2001/04/xmlenc#aes128-cbc":
		klen = 16
	case "http://www.w3.org/2001/04/xmlenc#aes192-cbc":
		klen = 24
	case "http://www.w3.org/2001/04/xmlenc#aes256-cbc":
		klen = 32
	default:
		return nil, fmt.Errorf("%w: encryption algorithm %q (want xmlenc aes128-cbc, aes192-cbc or aes256-cbc)", ErrUnsupported, alg)
	}
	if len(r.encKey) != klen {
		return nil, fmt.Errorf("%w: the value needs a %d-byte key, the key given has %d", ErrDecrypt, klen, len(r.encKey))
	}
	ct, err := decodeB64(e.CipherData.CipherValue, maxCipherValue)
	if err != nil {
		return nil, err
	}
	if len(ct) < 2*aes.BlockSize || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: cipher value of %d bytes (want IV and whole AES blocks)", ErrMalformed, len(ct))
	}
	b, _ := aes.NewCipher(r.encKey)
	pt := make([]byte, len(ct)-aes.BlockSize)
	cipher.NewCBCDecrypter(b, ct[:aes.BlockSize]).CryptBlocks(pt, ct[aes.BlockSize:])
	// XML Encryption padding: the last byte is the pad length (1..16); the
	// other pad bytes are arbitrary.
	n := int(pt[len(pt)-1])
	if n < 1 || n > aes.BlockSize {
		return nil, ErrDecrypt
	}
	return pt[:len(pt)-n], nil
}

// value decodes a plain or encrypted binary value, checking its MAC.
func (r *Reader) value(v *xValue, name string) ([]byte, error) {
	switch {
	case v.PlainValue != nil && v.EncryptedValue != nil:
		return nil, fmt.Errorf("%w: %s has both PlainValue and EncryptedValue", ErrMalformed, name)
	case v.PlainValue != nil:
		b, err := decodeB64(*v.PlainValue, maxCipherValue)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return b, nil
	case v.EncryptedValue != nil && r.hsmKey:
		ev, err := r.encrypted(v, name)
		if err != nil {
			return nil, err
		}
		pt, err := r.opts.Transport.Decrypt(r.ctx, ev)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return pt, nil
	case v.EncryptedValue != nil:
		if r.macKey == nil {
			return nil, fmt.Errorf("%w: %s is encrypted but the file has no MACMethod (RFC 6030 §6.1.1 requires one)", ErrMalformed, name)
		}
		mac, err := decodeB64(v.ValueMAC, 256)
		if err != nil || len(mac) == 0 {
			return nil, fmt.Errorf("%w: %s has no valid ValueMAC", ErrMalformed, name)
		}
		ct, err := decodeB64(v.EncryptedValue.CipherData.CipherValue, maxCipherValue)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		m := hmac.New(r.macAlg.New, r.macKey)
		m.Write(ct)
		if !hmac.Equal(m.Sum(nil), mac) {
			return nil, fmt.Errorf("%s: %w", name, ErrMAC)
		}
		pt, err := r.decrypt(v.EncryptedValue)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return pt, nil
	}
	return nil, fmt.Errorf("%w: %s has no value", ErrMalformed, name)
}

// integer reads an integer value: plain decimal text, or encrypted bytes
// (big-endian, at most 8).
func (r *Reader) integer(v *xValue, name string) (int64, error) {
	if v.PlainValue != nil && v.EncryptedValue == nil {
		n, err := strconv.ParseInt(strings.TrimSpace(*v.PlainValue), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %s is not an integer", ErrMalformed, name)
		}
		return n, nil
	}
	b, err := r.value(v, name)
	if err != nil {
		return 0, err
	}
	if len(b) == 0 || len(b) > 8 {
		return 0, fmt.Errorf("%w: encrypted %s of %d bytes", ErrMalformed, name, len(b))
	}
	var buf [8]byte
	copy(buf[8-len(b):], b)
	return int64(binary.BigEndian.Uint64(buf[:])), nil
}

func decodeB64(s string, max int) ([]byte, error) {
	s = strings.Map(func(c rune) rune {
		switch c {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return c
	}, s)
	if len(s) > max {
		return nil, fmt.Errorf("%w: value of %d base64 characters is too long", ErrMalformed, len(s))
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: value is not base64", ErrMalformed)
	}
	return b, nil
}
