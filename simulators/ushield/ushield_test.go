package ushield

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/ca"
	authushield "github.com/egate-bank/egate/authsvc/ushield"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// rig: a bank CA, the U-shield service, and a 2nd-generation device enrolled
// for alice.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func rig(t *testing.T, auto string) (authn.Factor, *Device, *lockedBuffer) {
	t.Helper()
	ctx := context.Background()
	db := storetest.SQLite(t)
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, err := ca.Init(ctx, db, k1, k2, ca.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := authushield.New(db, c, nil)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	cert, err := svc.Issuer("alice").IssueToken(ctx, csr, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Bind(ctx, &authushield.Binding{CertSerial: ca.SerialHex(cert.SerialNumber), PassportID: "alice", Generation: 2, TokenLabel: "sim", TokenSerial: "1", KeyID: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	return svc.Factor(2), &Device{Signer: key, Cert: cert, Auto: auto, Out: out}, out
}

func post(t *testing.T, url string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

const txText = "Transfer CNY 48,000.00\nto 6222 **** **** 6789 (Wang Fang)\nfrom account ending 1234"

func TestSecondGeneration(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name       string
		auto       string
		button     string // pressed through the control endpoint when auto is empty
		sign       func(ch authn.Challenge) []byte
		wantStatus int
		wantVerify error
	}{
		{name: "auto confirm", auto: AutoConfirm, wantStatus: 200},
		{name: "confirm button", button: "confirm", wantStatus: 200},
		{name: "cancel button", button: "cancel", wantStatus: 409},
		{name: "auto cancel", auto: AutoCancel, wantStatus: 409},
		{name: "host swaps the text", auto: AutoConfirm, wantStatus: 200, wantVerify: authn.ErrWrongAnswer,
			sign: func(ch authn.Challenge) []byte {
				return bytes.Replace(ch.Data, []byte("6789"), []byte("0000"), 1)
			}},
		{name: "binary data", auto: AutoConfirm, wantStatus: 422,
			sign: func(ch authn.Challenge) []byte { return []byte{0x30, 0x01, 0x00} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, dev, out := rig(t, tc.auto)
			shown := make(chan [2]string, 1)
			dev.OnShow = func(id, text string) { shown <- [2]string{id, text} }
			srv := httptest.NewServer(dev.Handler())
			defer srv.Close()
			begin := authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeTransaction, TxText: txText, TxHash: []byte{7}}
			ch, err := f.Begin(ctx, begin)
			if err != nil {
				t.Fatal(err)
			}
			data := ch.Data
			if tc.sign != nil {
				data = tc.sign(ch)
			}
			type res struct {
				code int
				body []byte
			}
			done := make(chan res, 1)
			go func() {
				code, body := post(t, srv.URL+"/sign", data)
				done <- res{code, body}
			}()
			if tc.wantStatus != 422 {
				s := <-shown
				if s[1] != string(data) {
					t.Fatalf("display shows %q, asked to sign %q", s[1], data)
				}
				if !strings.Contains(out.String(), "Wang Fang") && tc.sign == nil {
					t.Fatalf("terminal display lacks the text: %q", out.String())
				}
				if tc.button != "" {
					page, _ := http.Get(srv.URL + "/")
					body, _ := io.ReadAll(page.Body)
					page.Body.Close()
					if !strings.Contains(string(body), "Wang Fang") {
						t.Fatalf("web display lacks the text")
					}
					if code, _ := post(t, srv.URL+"/"+tc.button+"?id="+s[0], nil); code != 200 {
						t.Fatalf("pressing %s: %d", tc.button, code)
					}
				}
			}
			r := <-done
			if r.code != tc.wantStatus {
				t.Fatalf("POST /sign = %d %s, want %d", r.code, r.body, tc.wantStatus)
			}
			if r.code != 200 {
				return
			}
			result, err := f.Verify(ctx, begin.Answer(ch.ID, r.body))
			if !errors.Is(err, tc.wantVerify) {
				t.Fatalf("Verify = %v, want %v", err, tc.wantVerify)
			}
			if err == nil && (!result.ConfirmedOnDevice || result.Level != 5) {
				t.Fatalf("result %+v: want level 5 confirmed on device", result)
			}
		})
	}
}

func TestBusy(t *testing.T) {
	_, dev, _ := rig(t, AutoNone)
	shown := make(chan string, 1)
	dev.OnShow = func(id, _ string) { shown <- id }
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := dev.Sign(ctx, []byte("first")); errc <- err }()
	id := <-shown
	if _, err := dev.Sign(context.Background(), []byte("second")); !errors.Is(err, ErrBusy) {
		t.Fatalf("second request = %v, want ErrBusy", err)
	}
	if err := dev.Decide("wrong-id", true); !errors.Is(err, ErrNoDecision) {
		t.Fatalf("Decide(wrong id) = %v", err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("first request after cancel = %v", err)
	}
	if err := dev.Decide(id, true); !errors.Is(err, ErrNoDecision) {
		t.Fatalf("Decide after the request ended = %v", err)
	}
}
