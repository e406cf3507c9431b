package pskc

import (
	"bufio"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/egate-bank/egate/devices/otp"
)

// WriterOptions choose how a Writer protects secrets. With neither Key nor
// Password the secrets are written in the clear.
type WriterOptions struct {
	Key        []byte // pre-shared AES key (16 or 32 bytes)
	KeyName    string
	Password   []byte // PBKDF2 (HMAC-SHA1, 16-byte AES-128 key)
	Iterations int    // PBKDF2 iterations; 0 means 10000
	MACHash    crypto.Hash
}

// Writer writes a PSKC document one key at a time (for vendors' test files,
// the simulator and tests).
type Writer struct {
	w       *bufio.Writer
	encKey  []byte
	macKey  []byte
	macHash crypto.Hash
	err     error
}

// NewWriter writes the container header to w.
func NewWriter(w io.Writer, o WriterOptions) (*Writer, error) {
	wr := &Writer{w: bufio.NewWriterSize(w, 64<<10), macHash: o.MACHash}
	if wr.macHash == 0 {
		wr.macHash = crypto.SHA256
	}
	wr.printf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<KeyContainer Version=\"1.0\" xmlns=\"%s\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\" xmlns:xenc11=\"http://www.w3.org/2009/xmlenc11#\" xmlns:pkcs5=\"http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#\">\n", Namespace)
	switch {
	case len(o.Password) > 0:
		salt := make([]byte, 16)
		rand.Read(salt)
		it := o.Iterations
		if it == 0 {
			it = 10000
		}
		k, err := pbkdf2.Key(crypto.SHA1.New, string(o.Password), salt, it, 16)
		if err != nil {
			return nil, err
		}
		wr.encKey = k
		wr.printf("<EncryptionKey><xenc11:DerivedKey><xenc11:KeyDerivationMethod Algorithm=\"http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2\"><pkcs5:PBKDF2-params><Salt><Specified>%s</Specified></Salt><IterationCount>%d</IterationCount><KeyLength>16</KeyLength><PRF/></pkcs5:PBKDF2-params></xenc11:KeyDerivationMethod><xenc11:MasterKeyName>password</xenc11:MasterKeyName></xenc11:DerivedKey></EncryptionKey>\n",
			base64.StdEncoding.EncodeToString(salt), it)
	case len(o.Key) > 0:
		if l := len(o.Key); l != 16 && l != 24 && l != 32 {
			return nil, fmt.Errorf("pre-shared key of %d bytes (want 16, 24 or 32)", l)
		}
		wr.encKey = o.Key
		wr.printf("<EncryptionKey><ds:KeyName>%s</ds:KeyName></EncryptionKey>\n", xmlEscape(o.KeyName))
	}
	if wr.encKey != nil {
		wr.macKey = make([]byte, 32)
		rand.Read(wr.macKey)
		alg := map[crypto.Hash]string{crypto.SHA1: "http://www.w3.org/2000/09/xmldsig#hmac-sha1", crypto.SHA256: "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256", crypto.SHA512: "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512"}[wr.macHash]
		if alg == "" {
			return nil, fmt.Errorf("MAC hash %v", wr.macHash)
		}
		ct := wr.encrypt(wr.macKey)
		wr.printf("<MACMethod Algorithm=\"%s\"><MACKey><xenc:EncryptionMethod Algorithm=\"%s\"/><xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData></MACKey></MACMethod>\n",
			alg, wr.encAlg(), base64.StdEncoding.EncodeToString(ct))
	}
	return wr, wr.err
}

func (w *Writer) printf(f string, a ...any) {
	if w.err == nil {
		_, w.err = fmt.Fprintf(w.w, f, a...)
	}
}

func (w *Writer) encAlg() string {
	return map[int]string{16: "http://www.w3.org/2001/04/xmlenc#aes128-cbc", 24: "http://www.w3.org/2001/04/xmlenc#aes192-cbc", 32: "http://www.w3.org/2001/04/xmlenc#aes256-cbc"}[len(w.encKey)]
}

func (w *Writer) encrypt(pt []byte) []byte {
	n := aes.BlockSize - len(pt)%aes.BlockSize
	buf := make([]byte, aes.BlockSize+len(pt)+n)
	rand.Read(buf[:aes.BlockSize])
	copy(buf[aes.BlockSize:], pt)
	for i := aes.BlockSize + len(pt); i < len(buf); i++ {
		buf[i] = byte(n)
	}
	b, _ := aes.NewCipher(w.encKey)
	cipher.NewCBCEncrypter(b, buf[:aes.BlockSize]).CryptBlocks(buf[aes.BlockSize:], buf[aes.BlockSize:])
	return buf
}

// Add writes one key package.
func (w *Writer) Add(k *Key) error {
	alg := map[otp.Kind]string{otp.KindHOTP: AlgHOTP, otp.KindTOTP: AlgTOTP, otp.KindOCRA: AlgOCRA}[k.Params.Kind]
	if alg == "" {
		return fmt.Errorf("kind %q", k.Params.Kind)
	}
	w.printf("<KeyPackage><DeviceInfo><Manufacturer>%s</Manufacturer><SerialNo>%s</SerialNo></DeviceInfo><Key Id=\"%s\" Algorithm=\"%s\"><Issuer>%s</Issuer><AlgorithmParameters>",
		xmlEscape(k.Manufacturer), xmlEscape(k.Serial), xmlEscape(k.ID), alg, xmlEscape(k.Issuer))
	switch k.Params.Kind {
	case otp.KindOCRA:
		w.printf("<Suite>%s</Suite>", xmlEscape(k.Params.Suite))
	default:
		if k.Params.Hash != 0 && k.Params.Hash != crypto.SHA1 {
			w.printf("<Suite>HMAC-%s</Suite>", otp.HashName(k.Params.Hash))
		}
		w.printf("<ResponseFormat Length=\"%d\" Encoding=\"DECIMAL\"/>", k.Params.Digits)
	}
	w.printf("</AlgorithmParameters><Data><Secret>")
	w.secret(k.Secret)
	w.printf("</Secret>")
	switch k.Params.Kind {
	case otp.KindHOTP:
		w.printf("<Counter><PlainValue>%d</PlainValue></Counter>", k.Counter)
	case otp.KindTOTP:
		w.printf("<Time><PlainValue>%d</PlainValue></Time><TimeInterval><PlainValue>%s</PlainValue></TimeInterval>",
			k.Params.T0, strconv.Itoa(int(k.Params.Period.Seconds())))
		if k.TimeDrift != 0 {
			w.printf("<TimeDrift><PlainValue>%d</PlainValue></TimeDrift>", k.TimeDrift)
		}
	case otp.KindOCRA:
		if k.Counter != 0 {
			w.printf("<Counter><PlainValue>%d</PlainValue></Counter>", k.Counter)
		}
	}
	w.printf("</Data>")
	if !k.StartDate.IsZero() || !k.ExpiryDate.IsZero() || k.PIN != nil {
		w.printf("<Policy>")
		if !k.StartDate.IsZero() {
			w.printf("<StartDate>%s</StartDate>", k.StartDate.UTC().Format(time.RFC3339))
		}
		if !k.ExpiryDate.IsZero() {
			w.printf("<ExpiryDate>%s</ExpiryDate>", k.ExpiryDate.UTC().Format(time.RFC3339))
		}
		if p := k.PIN; p != nil {
			w.printf("<PINPolicy MinLength=\"%d\" MaxLength=\"%d\" PINKeyId=\"%s\" PINEncoding=\"DECIMAL\" PINUsageMode=\"%s\"/>", p.Min, p.Max, xmlEscape(p.KeyID), xmlEscape(p.Mode))
		}
		w.printf("</Policy>")
	}
	w.printf("</Key></KeyPackage>\n")
	return w.err
}

// AddPIN writes a pskc:pin key package holding pin (the key a PINPolicy's
// PINKeyId names).
func (w *Writer) AddPIN(id, serial string, pin []byte) error {
	w.printf("<KeyPackage><DeviceInfo><SerialNo>%s</SerialNo></DeviceInfo><Key Id=\"%s\" Algorithm=\"%s\"><AlgorithmParameters><ResponseFormat Length=\"%d\" Encoding=\"DECIMAL\"/></AlgorithmParameters><Data><Secret>",
		xmlEscape(serial), xmlEscape(id), AlgPIN, len(pin))
	w.secret(pin)
	w.printf("</Secret></Data></Key></KeyPackage>\n")
	return w.err
}

func (w *Writer) secret(v []byte) {
	if w.encKey != nil {
		ct := w.encrypt(v)
		m := hmac.New(w.macHash.New, w.macKey)
		m.Write(ct)
		w.printf("<EncryptedValue><xenc:EncryptionMethod Algorithm=\"%s\"/><xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData></EncryptedValue><ValueMAC>%s</ValueMAC>",
			w.encAlg(), base64.StdEncoding.EncodeToString(ct), base64.StdEncoding.EncodeToString(m.Sum(nil)))
	} else {
		w.printf("<PlainValue>%s</PlainValue>", base64.StdEncoding.EncodeToString(v))
	}
}

// Close writes the end of the container and flushes.
func (w *Writer) Close() error {
	w.printf("</KeyContainer>\n")
	if w.err != nil {
		return w.err
	}
	return w.w.Flush()
}

func xmlEscape(s string) string {
	var b []byte
	buf := &sliceWriter{b: b}
	xml.EscapeText(buf, []byte(s))
	return string(buf.b)
}

type sliceWriter struct{ b []byte }

func (s *sliceWriter) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }
