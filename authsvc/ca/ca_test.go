package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func csrFor(t testing.TB, k crypto.Signer) []byte {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "token"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newCA(t testing.TB, db *store.DB) *CA {
	c, err := Init(context.Background(), db, newKey(t), newKey(t), Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIssue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := newCA(t, db)
		tokenKey := newKey(t)
		other := newKey(t)
		rsaSmall, _ := rsa.GenerateKey(rand.Reader, 1024)
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		tampered := csrFor(t, tokenKey)
		tampered[len(tampered)-5] ^= 0xff
		cases := []struct {
			name string
			req  IssueRequest
			want error
		}{
			{"token", IssueRequest{Kind: KindToken, Owner: "p-1", CSR: csrFor(t, tokenKey), TokenKey: tokenKey.Public()}, nil},
			{"agent", IssueRequest{Kind: KindAgent, Owner: "branch-0101", CSR: csrFor(t, other)}, nil},
			{"csr key is not the token key", IssueRequest{Kind: KindToken, Owner: "p-1", CSR: csrFor(t, other), TokenKey: tokenKey.Public()}, ErrKeyMismatch},
			{"token key missing", IssueRequest{Kind: KindToken, Owner: "p-1", CSR: csrFor(t, tokenKey)}, ErrKeyMismatch},
			{"csr signature broken", IssueRequest{Kind: KindToken, Owner: "p-1", CSR: tampered, TokenKey: tokenKey.Public()}, ErrBadCSR},
			{"garbage", IssueRequest{Kind: KindToken, Owner: "p-1", CSR: []byte("not a csr"), TokenKey: tokenKey.Public()}, ErrBadCSR},
			{"rsa 1024", IssueRequest{Kind: KindAgent, Owner: "a", CSR: csrFor(t, rsaSmall)}, ErrBadCSR},
			{"p-384", IssueRequest{Kind: KindAgent, Owner: "a", CSR: csrFor(t, p384)}, ErrBadCSR},
			{"unknown kind", IssueRequest{Kind: "server", Owner: "a", CSR: csrFor(t, other)}, ErrBadCSR},
			{"empty owner", IssueRequest{Kind: KindAgent, CSR: csrFor(t, other)}, ErrBadCSR},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before, _ := c.List(ctx, "")
				cert, err := c.Issue(ctx, tc.req)
				if !errors.Is(err, tc.want) {
					t.Fatalf("Issue: err = %v, want %v", err, tc.want)
				}
				after, _ := c.List(ctx, "")
				if tc.want != nil {
					if len(after) != len(before) {
						t.Fatalf("a refused request recorded a certificate")
					}
					return
				}
				if len(after) != len(before)+1 {
					t.Fatalf("issued certificate not recorded")
				}
				if cert.SerialNumber.BitLen() < 120 || cert.SerialNumber.BitLen() > 128 {
					t.Errorf("serial has %d bits", cert.SerialNumber.BitLen())
				}
				if cert.Subject.CommonName != tc.req.Owner {
					t.Errorf("CN = %q", cert.Subject.CommonName)
				}
				if err := c.Verify(ctx, cert); err != nil {
					t.Errorf("Verify: %v", err)
				}
			})
		}
	})
}

func TestRevokeAndCRL(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := newCA(t, db)
		k := newKey(t)
		cert, err := c.Issue(ctx, IssueRequest{Kind: KindToken, Owner: "p-2", CSR: csrFor(t, k), TokenKey: k.Public()})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Verify(ctx, cert); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(c.Handler())
		defer srv.Close()
		crl0 := fetchCRL(t, srv.URL, c)
		if len(crl0.RevokedCertificateEntries) != 0 {
			t.Fatalf("fresh CRL lists %d entries", len(crl0.RevokedCertificateEntries))
		}
		if err := c.Revoke(ctx, SerialHex(cert.SerialNumber), ReasonKeyCompromise); err != nil {
			t.Fatal(err)
		}
		if err := c.Verify(ctx, cert); !errors.Is(err, ErrCertRevoked) {
			t.Fatalf("Verify after revoke = %v, want ErrCertRevoked", err)
		}
		crl := fetchCRL(t, srv.URL, c)
		if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(cert.SerialNumber) != 0 ||
			crl.RevokedCertificateEntries[0].ReasonCode != ReasonKeyCompromise {
			t.Fatalf("CRL entries = %+v", crl.RevokedCertificateEntries)
		}
		if crl.Number.Cmp(crl0.Number) < 0 {
			t.Errorf("CRL number went back")
		}
		if err := c.Revoke(ctx, "00ff", 0); !errors.Is(err, ErrUnknownCert) {
			t.Errorf("revoking an unknown serial = %v", err)
		}
		// root.pem
		resp, err := http.Get(srv.URL + "/ca/root.pem")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != string(c.RootPEM()) {
			t.Errorf("root.pem differs")
		}
	})
}

func fetchCRL(t *testing.T, base string, c *CA) *x509.RevocationList {
	t.Helper()
	resp, err := http.Get(base + "/ca/crl")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/pkix-crl" {
		t.Fatalf("content type %q", ct)
	}
	der, _ := io.ReadAll(resp.Body)
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(c.Issuing()); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	return crl
}

func TestForeignAndExpired(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	c := newCA(t, db)
	foreign := newCA(t, storetest.SQLite(t))
	k := newKey(t)
	fc, err := foreign.Issue(ctx, IssueRequest{Kind: KindToken, Owner: "p-3", CSR: csrFor(t, k), TokenKey: k.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(ctx, fc); !errors.Is(err, ErrNotIssuedHere) {
		t.Errorf("foreign cert: %v, want ErrNotIssuedHere", err)
	}
	if _, err := Init(ctx, db, newKey(t), newKey(t), Options{}, nil); !errors.Is(err, ErrAlreadyInitialized) {
		t.Errorf("second Init: %v", err)
	}
}

// TestOpenSSLVerifies checks an issued certificate and the CRL with openssl,
// an independent implementation.
func TestOpenSSLVerifies(t *testing.T) {
	openssl := testenv.NeedCommand(t, "openssl", "openssl")
	ctx := context.Background()
	c := newCA(t, storetest.SQLite(t))
	k := newKey(t)
	cert, err := c.Issue(ctx, IssueRequest{Kind: KindToken, Owner: "p-4", CSR: csrFor(t, k), TokenKey: k.Public()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root, iss, leaf := write("root.pem", c.RootPEM()), write("issuing.pem", c.IssuingPEM()), write("cert.pem", CertPEM(cert))
	out, err := exec.Command(openssl, "verify", "-purpose", "sslclient", "-CAfile", root, "-untrusted", iss, leaf).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	if err := c.Revoke(ctx, SerialHex(cert.SerialNumber), ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crl, err := c.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	crlPath := write("crl.der", crl)
	out, err = exec.Command(openssl, "crl", "-inform", "DER", "-in", crlPath, "-noout", "-text", "-CAfile", iss).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	// With the CRL, openssl must refuse the revoked certificate.
	crlPEM, _ := exec.Command(openssl, "crl", "-inform", "DER", "-in", crlPath).Output()
	both := write("chain.pem", append(append([]byte{}, c.IssuingPEM()...), c.RootPEM()...))
	out, err = exec.Command(openssl, "verify", "-crl_check", "-CAfile", both, "-CRLfile", write("crl.pem", crlPEM), leaf).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "revoked") {
		t.Fatalf("openssl verify with the CRL: err=%v, want a refusal for revocation:\n%s", err, out)
	}
}
