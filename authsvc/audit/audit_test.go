package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestChainHashReference recomputes a hash by hand with crypto/sha256.
func TestChainHashReference(t *testing.T) {
	t.Parallel()
	rec := Record{Seq: 1, AtMS: 5, Kind: "k", Fields: map[string]string{"b": "2", "a": "1"}}
	canon := rec.Canonical()
	if string(canon) != `{"seq":1,"at_ms":5,"kind":"k","fields":{"a":"1","b":"2"}}` {
		t.Fatalf("canonical form changed: %s", canon)
	}
	sum := sha256.Sum256(append(make([]byte, 32), canon...))
	got, err := ChainHash(Genesis, canon)
	if err != nil || got != hex.EncodeToString(sum[:]) {
		t.Fatalf("ChainHash = %s, %v", got, err)
	}
}

func TestAppendVerifyTamper(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := New(db, func() time.Time { return time.UnixMilli(1700000000000) })
		for i := range 5 {
			if _, err := l.Append(ctx, "login.password", map[string]string{"n": string(rune('0' + i))}); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := l.Verify(ctx); err != nil || n != 5 {
			t.Fatalf("Verify = %d, %v", n, err)
		}
		for _, tc := range []struct {
			name    string
			tamper  string
			restore string
			seq     int64
		}{
			{"edited record", `UPDATE audit_log SET record = REPLACE(record, '"n":"2"', '"n":"9"') WHERE seq = 3`, `UPDATE audit_log SET record = REPLACE(record, '"n":"9"', '"n":"2"') WHERE seq = 3`, 3},
			{"edited kind", `UPDATE audit_log SET kind = 'x' WHERE seq = 2`, `UPDATE audit_log SET kind = 'login.password' WHERE seq = 2`, 2},
			{"dropped record", `UPDATE audit_log SET seq = 100 WHERE seq = 4`, `UPDATE audit_log SET seq = 4 WHERE seq = 100`, 4},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := db.Exec(ctx, tc.tamper); err != nil {
					t.Fatal(err)
				}
				_, err := l.Verify(ctx)
				var be *BrokenError
				if !errors.As(err, &be) || be.Seq != tc.seq || !errors.Is(err, ErrBroken) {
					t.Fatalf("Verify after tamper = %v, want break at %d", err, tc.seq)
				}
				if _, err := db.Exec(ctx, tc.restore); err != nil {
					t.Fatal(err)
				}
				if _, err := l.Verify(ctx); err != nil {
					t.Fatalf("after restore: %v", err)
				}
			})
		}
	})
}

func TestConcurrentAppendTwoReplicas(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	var logs [2]*Log
	for i := range logs {
		db, err := store.Open(ctx, store.Config{Driver: store.Postgres, DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		logs[i] = New(db, nil)
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := logs[i%2].Append(ctx, "k", nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n, err := logs[0].Verify(ctx); err != nil || n != 40 {
		t.Fatalf("Verify = %d, %v", n, err)
	}
}
