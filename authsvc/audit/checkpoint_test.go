package audit_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/authsvc/audit/audittest"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

func appendN(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	for i := range n {
		if _, err := l.Append(context.Background(), "test.event", map[string]string{"i": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// The HSM's audit key signs checkpoints; VerifySigned checks them with its
// public key, and each kind of tampering is named.
func TestCheckpointsSignedByTheHSM(t *testing.T) {
	h := hsmtest.Open(t)
	key, err := h.Signer(context.Background(), hsm.LabelAuditCheckpoint)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := audit.New(db, nil)
		if _, err := l.Checkpoint(ctx, key); !errors.Is(err, audit.ErrNothingToSign) {
			t.Fatalf("checkpoint of an empty log: %v", err)
		}
		appendN(t, l, 5)
		cp, err := l.Checkpoint(ctx, key)
		if err != nil || cp.Seq != 5 {
			t.Fatalf("first checkpoint: %+v %v", cp, err)
		}
		if _, err := l.Checkpoint(ctx, key); !errors.Is(err, audit.ErrNothingToSign) {
			t.Fatalf("second checkpoint with nothing new: %v", err)
		}
		appendN(t, l, 3)
		if cp, err := l.Checkpoint(ctx, key); err != nil || cp.Seq != 8 {
			t.Fatalf("second checkpoint: %+v %v", cp, err)
		}
		appendN(t, l, 2) // not yet signed
		rep, err := l.VerifySigned(ctx, key.Public())
		if err != nil || rep.Records != 10 || rep.Checkpoints != 2 || rep.SignedUpTo != 8 {
			t.Fatalf("VerifySigned = %+v, %v", rep, err)
		}
		// Another key's public key does not verify them.
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		var bad *audit.BadCheckpointError
		if _, err := l.VerifySigned(ctx, other.Public()); !errors.As(err, &bad) || bad.Seq != 5 {
			t.Fatalf("with another key: %v", err)
		}
	})
}

func TestCheckpointTampering(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, db *store.DB)
		seq    int64
		signed bool // a *audit.BadCheckpointError, not a *audit.BrokenError
	}{
		// The whole chain rewritten consistently after a changed record:
		// every hash verifies, only the signature can tell.
		{"chain rewritten", func(t *testing.T, db *store.DB) {
			audittest.RewriteChain(t, db, 3, map[string]string{"i": "forged"})
		}, 4, true},
		{"signature changed", func(t *testing.T, db *store.DB) {
			exec(t, db, `UPDATE audit_checkpoints SET at_ms = at_ms + 1 WHERE seq = 4`)
		}, 4, true},
		{"checkpoint moved to another head", func(t *testing.T, db *store.DB) {
			exec(t, db, `UPDATE audit_checkpoints SET head_hash = (SELECT hash FROM audit_log WHERE seq = 3) WHERE seq = 4`)
		}, 4, true},
		{"signed records cut off", func(t *testing.T, db *store.DB) {
			exec(t, db, `DELETE FROM audit_log WHERE seq >= 4`)
		}, 4, true},
		{"a record changed", func(t *testing.T, db *store.DB) {
			exec(t, db, `UPDATE audit_log SET record = replace(record, '"i":"1"', '"i":"9"') WHERE seq = 2`)
		}, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				l := audit.New(db, nil)
				appendN(t, l, 4)
				if _, err := l.Checkpoint(ctx, key); err != nil {
					t.Fatal(err)
				}
				appendN(t, l, 2)
				if _, err := l.VerifySigned(ctx, key.Public()); err != nil {
					t.Fatalf("before tampering: %v", err)
				}
				tc.tamper(t, db)
				_, err := l.VerifySigned(ctx, key.Public())
				var bad *audit.BadCheckpointError
				var broken *audit.BrokenError
				switch {
				case tc.signed && (!errors.As(err, &bad) || bad.Seq != tc.seq):
					t.Fatalf("VerifySigned = %v, want a bad checkpoint at %d", err, tc.seq)
				case !tc.signed && (!errors.As(err, &broken) || broken.Seq != tc.seq):
					t.Fatalf("VerifySigned = %v, want the chain broken at %d", err, tc.seq)
				}
				// A tampered log is never signed over.
				if !tc.signed || tc.name == "signed records cut off" {
					return
				}
				if tc.name == "chain rewritten" {
					if _, err := l.Checkpoint(ctx, key); !errors.As(err, &broken) {
						t.Fatalf("Checkpoint over a rewritten chain: %v", err)
					}
				}
			})
		})
	}
}

func exec(t *testing.T, db *store.DB, q string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}
