package authsvc

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/orders"
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
