package softhsm

import (
	"context"
	"testing"

	"github.com/egate-bank/egate/internal/testenv"
)

func TestInitTokenCreatesThenReuses(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	ctx := context.Background()
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tok, created, err := d.InitToken(ctx, "egate-test", "5678", "1234")
	if err != nil || !created {
		t.Fatalf("first InitToken: created=%v err=%v", created, err)
	}
	again, created, err := d.InitToken(ctx, "egate-test", "5678", "1234")
	if err != nil || created || again.Slot != tok.Slot {
		t.Fatalf("second InitToken: %+v created=%v err=%v, want reuse of %+v", again, created, err, tok)
	}
	if _, _, err := d.InitToken(ctx, "other", "5678", "1234"); err != nil {
		t.Fatal(err)
	}
	toks, err := d.Tokens(ctx)
	if err != nil || len(toks) != 2 {
		t.Fatalf("Tokens = %+v, %v; want 2 tokens", toks, err)
	}
	if err := d.DeleteToken(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if toks, _ := d.Tokens(ctx); len(toks) != 1 {
		t.Fatalf("after delete: %+v", toks)
	}
}

func TestInitTokenRejectsBadLabel(t *testing.T) {
	testenv.NeedCommand(t, "softhsm2-util", "softhsm2")
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"", "this-label-is-far-too-long-for-pkcs11-tokens"} {
		if _, _, err := d.InitToken(context.Background(), label, "5678", "1234"); err == nil {
			t.Errorf("InitToken(%q) succeeded", label)
		}
	}
}
