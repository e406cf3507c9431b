package alerts

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// Two replicas deliver the same outbox at once: every alert is sent exactly
// once; a failed send is retried on the next round.
func TestDeliverOnceAcrossReplicas(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		o := New(db, nil)
		const n = 40
		for i := 0; i < n; i++ {
			if _, err := o.Post(ctx, "p1", KindLogin, Login{Client: "ebank", IP: "10.0.0.1", Time: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var failOnce atomic.Bool
		failOnce.Store(true)
		send := func(_ context.Context, a Alert) error {
			if failOnce.CompareAndSwap(true, false) {
				return errors.New("gateway down")
			}
			mu.Lock()
			seen[a.ID]++
			mu.Unlock()
			return nil
		}
		var wg sync.WaitGroup
		for r := 0; r < 2; r++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rep := New(db, nil)
				for i := 0; i < 3; i++ {
					rep.Deliver(ctx, ConsumerSMS, 100, send)
				}
			}()
		}
		wg.Wait()
		if _, err := o.Deliver(ctx, ConsumerSMS, 100, send); err != nil {
			t.Fatal(err)
		}
		if len(seen) != n {
			t.Fatalf("delivered %d distinct alerts, want %d", len(seen), n)
		}
		for id, c := range seen {
			if c != 1 {
				t.Fatalf("alert %s delivered %d times", id, c)
			}
		}
		// The messenger consumer is independent: it still has all of them.
		p, _ := o.Pending(ctx, ConsumerMessenger, 100)
		if len(p) != n {
			t.Fatalf("messenger pending %d, want %d", len(p), n)
		}
	})
}

func TestLoginText(t *testing.T) {
	s := LoginText(Login{Client: "mall", IP: "203.0.113.9", Time: time.Date(2026, 11, 27, 8, 30, 0, 0, time.UTC)}, nil)
	for _, want := range []string{"mall", "2026-11-27 08:30", "203.0.113.9", "Not you?"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
}
