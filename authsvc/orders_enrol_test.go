package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestEnrolOrder: the customer's own enrolment through a signing order, at
// the HTTP level with a key in software (the token path is cmd/egate's
// TestHelperEnrol): a session below level 2 gets no enrolment page; a CSR
// not made for this order is refused and binds nothing; another browser
// follows nothing; a CSR naming the order's challenge gets the bank CA's
// certificate, the token is bound and answers the U-shield step.
func TestEnrolOrder(t *testing.T) {
	fe := newFactorEnv(t, storetest.SQLite(t))
	ctx := context.Background()
	login := fe.signedIn
	answer := func(t *testing.T, cn string) []byte {
		k := p256(t)
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, k)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(EnrolAnswer{CSR: csr, Label: "soft-token", Serial: "S0001", KeyID: []byte{7}})
		return b
	}
	bound := func() int {
		var n int
		fe.env.srv.db.QueryRow(ctx, `SELECT COUNT(*) FROM ushield_tokens WHERE passport_id = ?`, fe.pid).Scan(&n)
		return n
	}

	t.Run("a level-1 session gets no enrolment page", func(t *testing.T) {
		b := login(t, "1")
		if r := b.get("/account/enrol?tool=ushield"); r.status != 403 || errorCode(r.body) != "login_required" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	b := login(t, "2")
	if r := b.get("/account/enrol?tool=sms"); r.status != 400 || errorCode(r.body) != "unknown_tool" {
		t.Fatalf("enrol an SMS: %d %s", r.status, r.body)
	}
	t.Run("a CSR not made for this order", func(t *testing.T) {
		po := orderOf(t, b.get("/account/enrol?tool=ushield").body)
		op := fe.openOrder(t, po)
		if _, err := fe.device().SignData(ctx, op.Ref, op.DeviceToken, answer(t, "someone else's order")); err == nil || !strings.Contains(err.Error(), "wrong_answer") {
			t.Fatalf("foreign CSR: %v", err)
		}
		if n := bound(); n != 0 {
			t.Fatalf("%d tokens bound after a refused enrolment", n)
		}
		r := b.post("/account/enrol/finish", url.Values{"ref": {po.link.Ref}})
		if r.status != 401 || errorCode(r.body) != "wrong_answer" {
			t.Fatalf("finish: %d %s", r.status, r.body)
		}
	})
	t.Run("enrolled", func(t *testing.T) {
		po := orderOf(t, b.get("/account/enrol?tool=ushield").body)
		op := fe.openOrder(t, po)
		der, err := fe.device().SignData(ctx, op.Ref, op.DeviceToken, answer(t, op.Challenge))
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil || fe.set.CA.Verify(ctx, cert) != nil {
			t.Fatalf("the certificate: %v", err)
		}
		if r := fe.browser().get("/account/enrol/collect?ref=" + po.link.Ref); r.status != 404 {
			t.Fatalf("another browser's collect: %d %s", r.status, r.body)
		}
		if status, st, raw := collectEnrol(b, po.link.Ref); status != 200 || st.State != string(orders.Complete) {
			t.Fatalf("collect: %s", raw)
		}
		r := b.post("/account/enrol/finish", url.Values{"ref": {po.link.Ref}})
		if r.status != 200 || !strings.Contains(r.body, `id="enrolled"`) || bound() != 1 {
			t.Fatalf("finish: %d %s", r.status, r.body)
		}
	})
}

func collectEnrol(b *browser, ref string) (int, orderStatus, string) {
	r := b.get("/account/enrol/collect?ref=" + ref)
	var st orderStatus
	json.Unmarshal([]byte(r.body), &st)
	return r.status, st, r.body
}

// signedIn is a browser of alice's with a passport session at level 1
// (password) or 2 (password and the SMS code from the development sink).
func (fe *factorEnv) signedIn(t *testing.T, level string) *browser {
	t.Helper()
	b, a, r := fe.loginAt(t, level)
	a.codeFrom(t, r)
	return b
}

// TestEnrolReturn: the enrolled page's way back is a local path on a
// registered client's origin, never a URL the link chose (no open redirect).
func TestEnrolReturn(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t))
	for _, tc := range []struct{ name, client, path, want string }{
		{"ebank's page", "ebank", "/enrol?done=piv", "https://ebank.example/enrol?done=piv"},
		{"an absolute URL", "ebank", "https://evil.example/x", ""},
		{"a scheme-relative URL", "ebank", "//evil.example/x", ""},
		{"a backslash", "ebank", "/\\evil.example/x", ""},
		{"an unknown client", "nobody", "/enrol", ""},
		{"no client", "", "/enrol", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, _ := e.srv.platformReturn(tc.client, tc.path); got != tc.want {
				t.Fatalf("platformReturn(%q, %q) = %q, want %q", tc.client, tc.path, got, tc.want)
			}
		})
	}
}
