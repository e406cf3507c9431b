package pkcs11token

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/devices/pin"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/softhsm/softhsmtest"
)

const (
	tokenLabel = "ushield-test"
	userPIN    = "123456"
	soPIN      = "87654321"
)

// One SoftHSM directory per test binary: SOFTHSM2_CONF is read once per process.
var hsm = softhsmtest.Tokens{Labels: []string{tokenLabel, "ushield-pin"}, SOPIN: soPIN, PIN: userPIN}

func TestMain(m *testing.M) { softhsmtest.Main(m, &hsm) }

func needToken(t *testing.T, label string) (*Module, *Token) {
	t.Helper()
	m, err := Open(hsm.Need(t).Module)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok, err := m.OpenToken(context.Background(), label)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tok.Close() })
	return m, tok
}

type caIssuer struct {
	c     *ca.CA
	owner string
}

func (i caIssuer) IssueToken(ctx context.Context, csr []byte, key crypto.PublicKey) (*x509.Certificate, error) {
	return i.c.Issue(ctx, ca.IssueRequest{Kind: ca.KindToken, Owner: i.owner, CSR: csr, TokenKey: key})
}

// swapIssuer presents another key as the token's key, as a tampered
// enrollment station would.
type swapIssuer struct{ caIssuer }

func (i swapIssuer) IssueToken(ctx context.Context, csr []byte, _ crypto.PublicKey) (*x509.Certificate, error) {
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return i.caIssuer.IssueToken(ctx, csr, other.Public())
}

func newCA(t *testing.T) *ca.CA {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, err := ca.Init(context.Background(), storetest.SQLite(t), k1, k2, ca.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnumerate(t *testing.T) {
	m, _ := needToken(t, tokenLabel)
	toks, err := m.Tokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, ti := range toks {
		if ti.Label == tokenLabel {
			found = ti.Initialized && ti.LoginRequired && ti.Serial != ""
		}
	}
	if !found {
		t.Fatalf("token %q not listed properly: %+v", tokenLabel, toks)
	}
	if _, err := m.OpenToken(context.Background(), "no-such-token"); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("OpenToken(no-such-token) = %v", err)
	}
}

func TestWrongPIN(t *testing.T) {
	_, tok := needToken(t, "ushield-pin")
	err := tok.Login(context.Background(), []byte("000000"))
	var pe *pin.Error
	if !errors.As(err, &pe) || !errors.Is(err, ErrPINIncorrect) || !strings.Contains(pe.Device, "ushield-pin") {
		t.Fatalf("Login with a wrong PIN = %v, want *pin.Error", err)
	}
	if strings.Contains(err.Error(), "000000") {
		t.Fatalf("error carries the PIN: %v", err)
	}
	if _, err := tok.Key(context.Background(), []byte{1}); !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("Key before login = %v", err)
	}
	if err := tok.Login(context.Background(), []byte(userPIN)); err != nil {
		t.Fatalf("Login with the right PIN: %v", err)
	}
}

func TestEnroll(t *testing.T) {
	ctx := context.Background()
	_, tok := needToken(t, tokenLabel)
	if err := tok.Login(ctx, []byte(userPIN)); err != nil {
		t.Fatal(err)
	}
	c := newCA(t)
	cases := []struct {
		name   string
		issuer Issuer
		alg    Algorithm
		want   error
	}{
		{"p256", caIssuer{c, "p-100"}, ECDSAP256, nil},
		{"rsa2048", caIssuer{c, "p-101"}, RSA2048, nil},
		{"csr key is not the token key", swapIssuer{caIssuer{c, "p-102"}}, ECDSAP256, ca.ErrKeyMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := tok.KeyIDs(ctx)
			got, err := Enroll(ctx, tok, tc.issuer, EnrollOptions{Algorithm: tc.alg, Subject: "customer"})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Enroll = %v, want %v", err, tc.want)
			}
			after, _ := tok.KeyIDs(ctx)
			if tc.want != nil {
				if len(after) != len(before) {
					t.Fatalf("a refused enrollment left a key on the token (%d → %d)", len(before), len(after))
				}
				return
			}
			key, err := tok.Key(ctx, got.KeyID)
			if err != nil {
				t.Fatal(err)
			}
			onToken, err := tok.Certificate(ctx, got.KeyID)
			if err != nil || !bytes.Equal(onToken.Raw, got.Cert.Raw) {
				t.Fatalf("certificate on token: %v", err)
			}
			if err := c.Verify(ctx, onToken); err != nil {
				t.Fatalf("CA verify: %v", err)
			}
			data := []byte("Transfer 1,234.56 yuan to ****6789\nChallenge: 00ff")
			proof, err := SignProof(key, onToken, data, false)
			if err != nil {
				t.Fatal(err)
			}
			p, err := DecodeProof(proof)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifySignature(onToken.PublicKey, data, p.Sig); err != nil {
				t.Fatalf("signature by the token key: %v", err)
			}
			if err := VerifySignature(onToken.PublicKey, append(data, '!'), p.Sig); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("signature over other bytes = %v", err)
			}
			checkNonExtractable(t, tok, got.KeyID)
			checkWithPKCS11Tool(t, got.KeyID)
			checkWithOpenSSL(t, c, got.Cert)
		})
	}
}

func checkNonExtractable(t *testing.T, tok *Token, id []byte) {
	t.Helper()
	k, err := tok.Key(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	tok.mu.Lock()
	defer tok.mu.Unlock()
	a, err := tok.m.c.GetAttributeValue(tok.sh, k.priv, attrsSensitive())
	if err != nil {
		t.Fatal(err)
	}
	if a[0].Value[0] != 1 || a[1].Value[0] != 0 {
		t.Fatalf("private key CKA_SENSITIVE=%v CKA_EXTRACTABLE=%v", a[0].Value, a[1].Value)
	}
}

// checkWithPKCS11Tool lists the token with OpenSC's pkcs11-tool, an
// independent PKCS#11 client: the certificate and the private key must both
// be there under the enrolled id.
func checkWithPKCS11Tool(t *testing.T, id []byte) {
	t.Helper()
	tool := testenv.NeedCommand(t, "pkcs11-tool", "opensc")
	cmd := exec.Command(tool, "--module", hsm.Dir.Module, "--token-label", tokenLabel, "--login", "--pin", userPIN, "--list-objects")
	cmd.Env = append(os.Environ(), hsm.Dir.Env())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	want := "ID:         " + hex.EncodeToString(id)
	var certOK, keyOK bool
	blocks := splitObjects(string(out))
	for _, b := range blocks {
		if !strings.Contains(b, want) {
			continue
		}
		certOK = certOK || strings.HasPrefix(b, "Certificate Object")
		keyOK = keyOK || strings.HasPrefix(b, "Private Key Object")
	}
	if !certOK || !keyOK {
		t.Fatalf("pkcs11-tool does not list both a certificate and a private key with %s:\n%s", want, out)
	}
}

func splitObjects(s string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if line != "" && line[0] != ' ' && line[0] != '\t' && cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
		cur.WriteString(line + "\n")
	}
	return append(out, cur.String())
}

func checkWithOpenSSL(t *testing.T, c *ca.CA, cert *x509.Certificate) {
	t.Helper()
	openssl := testenv.NeedCommand(t, "openssl", "openssl")
	dir := t.TempDir()
	w := func(n string, b []byte) string {
		p := filepath.Join(dir, n)
		os.WriteFile(p, b, 0o600)
		return p
	}
	out, err := exec.Command(openssl, "verify", "-CAfile", w("root.pem", c.RootPEM()), "-untrusted", w("issuing.pem", c.IssuingPEM()), w("cert.pem", ca.CertPEM(cert))).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
}
