package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/authsvc/ushield"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestTransactionOrder: a transfer confirmed with a U-shield through a
// signing order made for the intent: the device shows and signs the
// transfer's text with the challenge bound to the intent hash; a signature
// over tampered text is refused and fails the order; only the confirming
// browser finishes it, once, with the level reached.
func TestTransactionOrder(t *testing.T) {
	fe := newFactorEnv(t, storetest.SQLite(t))
	us := fe.enrollUShield(t, 2)
	ctx := context.Background()
	intent := sha256.Sum256([]byte(`{"payee":"Zhang San ****6789","amount":1234567,"currency":"CNY"}`))
	const text = "ebank: transfer 12,345.67 yuan to Zhang San ****6789"
	browser := orders.BrowserHash("confirm-page-secret")
	begin := func(t *testing.T, factor string) (*orders.Order, *orders.Opened) {
		t.Helper()
		o, auto, err := fe.srv.BeginTransactionOrder(ctx, TxOrderRequest{PassportID: fe.pid, Factor: factor, Text: text, IntentHash: intent[:], Browser: browser})
		if err != nil {
			t.Fatal(err)
		}
		op, err := fe.device().Open(ctx, orders.OpenRequest{Ref: o.Ref, AutostartToken: auto})
		if err != nil {
			t.Fatal(err)
		}
		if op.Kind != orders.KindTransaction || op.Text != text {
			t.Fatalf("the device got %+v", op)
		}
		return o, op
	}

	t.Run("signed over the text shown", func(t *testing.T) {
		o, op := begin(t, "ushield2")
		d, _ := op.SignedData()
		if !strings.HasPrefix(string(d), text+"\nChallenge: ") {
			t.Fatalf("data %q", d)
		}
		if err := fe.signOrder(t, op, us, d, true); err != nil {
			t.Fatal(err)
		}
		if _, err := fe.srv.Orders().Finish(ctx, o.Ref, orders.BrowserHash("another browser")); !errors.Is(err, orders.ErrUnknown) {
			t.Fatalf("finish by another browser: %v", err)
		}
		got, err := fe.srv.Orders().Finish(ctx, o.Ref, browser)
		if err != nil || got.Result.Level != 5 || !got.Result.ConfirmedOnDevice || string(got.IntentHash) != string(intent[:]) {
			t.Fatalf("finish: %+v %v", got, err)
		}
		if _, err := fe.srv.Orders().Finish(ctx, o.Ref, browser); !errors.Is(err, orders.ErrCollected) {
			t.Fatalf("second finish: %v", err)
		}
	})
	t.Run("a signature over tampered text", func(t *testing.T) {
		o, op := begin(t, "ushield2")
		d, _ := op.SignedData()
		forged := strings.Replace(string(d), "12,345.67", "92,345.67", 1)
		if err := fe.signOrder(t, op, us, []byte(forged), true); err == nil || !strings.Contains(err.Error(), "wrong_answer") {
			t.Fatalf("tampered text: %v", err)
		}
		if got, _ := fe.srv.Orders().Collect(ctx, o.Ref, browser); got.State != orders.Failed {
			t.Fatalf("state %s", got.State)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, req := range []TxOrderRequest{
			{PassportID: fe.pid, Factor: "sms", Text: text, IntentHash: intent[:], Browser: browser},
			{PassportID: fe.pid, Factor: "ushield2", Text: text, Browser: browser},
			{PassportID: fe.pid, Factor: "ushield2", Text: "", IntentHash: intent[:], Browser: browser},
		} {
			if _, _, err := fe.srv.BeginTransactionOrder(ctx, req); err == nil {
				t.Errorf("%+v: no error", req)
			}
		}
	})
}

// TestTransactionOrderGrant: the transaction API's signing orders
// (txauth's POST /v1/tx/{hash}/order, order/collect, and a proof naming
// the order), with this server as txauth.Orders: a large transfer signed
// on a U-shield buys one grant at level 4; only the confirming browser
// follows the order or proves with it; a tool below the intent's level
// gets no order; a signature over tampered text, by another customer's
// certificate, by a reported-lost token or by a certificate of another CA
// fails the order and buys nothing.
func TestTransactionOrderGrant(t *testing.T) {
	db := storetest.SQLite(t)
	fe := newFactorEnv(t, db)
	us := fe.enrollUShield(t, 1)
	us2 := fe.enrollUShield(t, 2)
	ctx := context.Background()
	const payer = "6222000000000001"
	tx, err := txauth.New(txauth.Config{Accounts: []txauth.AccountConfig{{Customer: fe.pid, Account: payer}}},
		txauth.Deps{DB: db, Tools: txauth.FromFactors(fe.set), Audit: fe.srv.Audit(), Alerts: fe.srv.Alerts(), Orders: fe.srv, Now: fe.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	browser := orders.BrowserHash("ebank-confirm-page")
	n := 0
	authorize := func(t *testing.T) string {
		t.Helper()
		n++
		// 6,000 yuan from a device not seen before: the risk rules step up
		// to level 4.
		d, err := tx.Authorize(ctx, intent.Intent{Customer: fe.pid, Channel: intent.Web, Kind: intent.Transfer, Payer: payer, Payee: "6222000000000002",
			Amount: 6_000_00, Currency: "CNY", IdempotencyKey: fmt.Sprintf("k-%d", n)})
		if err != nil || d.Decision != txclient.Allow || d.Level != 4 {
			t.Fatalf("authorize: %+v %v", d, err)
		}
		return d.Intent
	}
	order := func(t *testing.T, hash, factor string) (txclient.Order, *orders.Opened) {
		t.Helper()
		o, err := tx.Order(ctx, hash, txclient.OrderRequest{Factor: factor, Browser: browser})
		if err != nil {
			t.Fatal(err)
		}
		link, err := orders.ParseLink(o.Autostart)
		if err != nil || o.ByQR || o.Level < 4 {
			t.Fatalf("order %+v: %v", o, err)
		}
		op, err := fe.device().Open(ctx, orders.OpenRequest{Ref: link.Ref, AutostartToken: link.Token})
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := op.SignedData(); string(d) != o.Text || !strings.HasPrefix(o.Text, "Transfer 6,000.00 yuan to ") {
			t.Fatalf("the device got %q, the page shows %q", d, o.Text)
		}
		return o, op
	}
	code := func(err error) string {
		var e *txauth.Error
		if errors.As(err, &e) {
			return e.Code
		}
		return fmt.Sprint(err)
	}

	t.Run("signed on the U-shield: one grant, for the confirming browser", func(t *testing.T) {
		hash := authorize(t)
		o, op := order(t, hash, "ushield")
		if st, err := tx.CollectOrder(ctx, hash, txclient.OrderCollect{Ref: o.Ref, Browser: browser}); err != nil || st.State != "user_sign" {
			t.Fatalf("collect before the signature: %+v %v", st, err)
		}
		d, _ := op.SignedData()
		if err := fe.signOrder(t, op, us, d, false); err != nil {
			t.Fatal(err)
		}
		other := orders.BrowserHash("another browser")
		if _, err := tx.CollectOrder(ctx, hash, txclient.OrderCollect{Ref: o.Ref, Browser: other}); code(err) != "unknown_order" {
			t.Fatalf("collect by another browser: %v", err)
		}
		if _, err := tx.Proof(ctx, hash, txclient.ProofRequest{Order: o.Ref, Browser: other}); code(err) != "unknown_order" {
			t.Fatalf("proof by another browser: %v", err)
		}
		if _, err := tx.Proof(ctx, authorize(t), txclient.ProofRequest{Order: o.Ref, Browser: browser}); code(err) != "unknown_order" {
			t.Fatalf("the order proving another intent: %v", err)
		}
		if st, err := tx.CollectOrder(ctx, hash, txclient.OrderCollect{Ref: o.Ref, Browser: browser}); err != nil || st.State != "complete" {
			t.Fatalf("collect: %+v %v", st, err)
		}
		g, err := tx.Proof(ctx, hash, txclient.ProofRequest{Order: o.Ref, Browser: browser})
		if err != nil || g.Level != 4 || g.Factor != "ushield" || g.Token == "" {
			t.Fatalf("grant %+v %v", g, err)
		}
		if _, err := tx.Proof(ctx, hash, txclient.ProofRequest{Order: o.Ref, Browser: browser}); code(err) != "already_granted" {
			t.Fatalf("second proof: %v", err)
		}
	})
	t.Run("a tool below the level gets no order", func(t *testing.T) {
		if _, err := tx.Order(ctx, authorize(t), txclient.OrderRequest{Factor: "phone", Browser: browser}); code(err) != "level_too_low" {
			t.Fatalf("phone (level 3) for a level-4 payment: %v", err)
		}
		if _, err := tx.Order(ctx, authorize(t), txclient.OrderRequest{Factor: "ushield", Browser: "not a hash"}); code(err) != "invalid_request" {
			t.Fatalf("no browser binding: %v", err)
		}
	})
	// Each refused signature counts as a failed attempt in the risk
	// features (three a day hold the next payment for review): the
	// intents are authorized first.
	hashes := []string{authorize(t), authorize(t), authorize(t), authorize(t)}
	for i, tc := range []struct {
		name   string
		factor string
		sign   func(op *orders.Opened) error
		code   string
	}{
		{"a signature over tampered text", "ushield", func(op *orders.Opened) error {
			d, _ := op.SignedData()
			return fe.signOrder(t, op, us, []byte(strings.Replace(string(d), "6,000.00", "9,000.00", 1)), false)
		}, "wrong_answer"},
		{"another customer's certificate", "ushield", func(op *orders.Opened) error {
			d, _ := op.SignedData()
			return fe.signOrder(t, op, otherCustomersToken(t, fe), d, false)
		}, "wrong_answer"},
		{"a certificate of another CA", "ushield", func(op *orders.Opened) error {
			d, _ := op.SignedData()
			return fe.signOrder(t, op, foreignToken(t), d, false)
		}, "wrong_answer"},
		{"a reported-lost token", "ushield2", func(op *orders.Opened) error {
			if err := fe.set.UShield.ReportLost(ctx, fe.pid, caSerial(us2)); err != nil {
				t.Fatal(err)
			}
			d, _ := op.SignedData()
			return fe.signOrder(t, op, us2, d, true)
		}, "revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hash := hashes[i]
			o, op := order(t, hash, tc.factor)
			if err := tc.sign(op); err == nil || !strings.Contains(err.Error(), tc.code) {
				t.Fatalf("the device was told %v, want %s", err, tc.code)
			}
			st, err := tx.CollectOrder(ctx, hash, txclient.OrderCollect{Ref: o.Ref, Browser: browser})
			if err != nil || st.State != "failed" || st.Code != tc.code || st.Message == "" {
				t.Fatalf("the page is told %+v %v", st, err)
			}
			if _, err := tx.Proof(ctx, hash, txclient.ProofRequest{Order: o.Ref, Browser: browser}); code(err) != "order_failed" {
				t.Fatalf("proof with the failed order: %v", err)
			}
			if d, err := tx.Get(ctx, hash); err != nil || d.State != txclient.StateAllowed {
				t.Fatalf("the intent after a refused signature: %+v %v", d, err)
			}
		})
	}
}

// otherCustomersToken is a key certified by the bank CA and bound to
// another customer.
func otherCustomersToken(t testing.TB, fe *factorEnv) softToken {
	t.Helper()
	ctx := context.Background()
	other, err := fe.srv.Passport().Register(ctx, passport.NewCustomer{LoginName: fmt.Sprintf("other%d", time.Now().UnixNano()%1e9), Mobile: "13900000000",
		ReservedMessage: "blue moon", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	k := p256(t)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: other.PassportID}}, k)
	cert, err := fe.set.UShield.Issuer(other.PassportID).IssueToken(ctx, csr, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := fe.set.UShield.Bind(ctx, &ushield.Binding{CertSerial: ca.SerialHex(cert.SerialNumber), PassportID: other.PassportID, Generation: 1,
		TokenLabel: "other", TokenSerial: "OTHER" + ca.SerialHex(cert.SerialNumber)[:6], KeyID: []byte{9}}); err != nil {
		t.Fatal(err)
	}
	return softToken{k, cert}
}
