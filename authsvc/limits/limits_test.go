package limits

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

func TestDefaultValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	mod := func(f func(Table) Table) Table {
		d := Default()
		return f(d)
	}
	for _, tc := range []struct {
		name string
		t    Table
	}{
		{"empty", Table{}},
		{"six levels", append(Default(), Limit{Level: 6, PerTxn: 1 << 40, PerDay: 1 << 40, PerYear: 1 << 40})},
		{"level missing", mod(func(t Table) Table { return append(t[:2:2], t[3:]...) })},
		{"out of order", mod(func(t Table) Table { t[1], t[2] = t[2], t[1]; return t })},
		{"negative", mod(func(t Table) Table { t[1].PerTxn = -1; return t })},
		{"per-transaction above per-day", mod(func(t Table) Table { t[1].PerTxn = t[1].PerDay + 1; return t })},
		{"per-day above per-year", mod(func(t Table) Table { t[1].PerDay = t[1].PerYear + 1; t[1].PerTxn = 0; return t })},
		{"higher level allows less", mod(func(t Table) Table { t[3].PerTxn = t[2].PerTxn - 1; return t })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.t.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
		})
	}
}

func TestNeed(t *testing.T) {
	t.Parallel()
	tab := Default()
	for _, tc := range []struct {
		name   string
		amount int64
		u      Usage
		level  int
		period Period // when no level fits
	}{
		{"one fen needs level 2", 1, Usage{}, 2, ""},
		{"1,000 yuan is level 2", 100_000, Usage{}, 2, ""},
		{"1,000.01 yuan is level 3", 100_001, Usage{}, 3, ""},
		{"level 2's day used up", 100, Usage{Day: 500_000, Year: 500_000}, 3, ""},
		{"50,000 yuan is level 3", 5_000_000, Usage{}, 3, ""},
		{"level 3's day nearly used", 5_000_000, Usage{Day: 46_000_000, Year: 46_000_000}, 4, ""},
		{"over level 5 per transaction", 500_000_001, Usage{}, 0, PerTransaction},
		{"level 5's day used", 100, Usage{Day: 500_000_000, Year: 500_000_000}, 0, PerDay},
		{"the year used", 100, Usage{Day: 0, Year: 10_000_000_000}, 0, PerYear},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := tab.Need(tc.amount, tc.u)
			if tc.period != "" {
				var ex *ExceededError
				if !errors.As(err, &ex) || ex.Period != tc.period || ex.Level != 5 {
					t.Fatalf("Need = %d, %v; want the level-5 %s limit", l, err, tc.period)
				}
				return
			}
			if err != nil || l != tc.level {
				t.Fatalf("Need = %d, %v; want %d", l, err, tc.level)
			}
		})
	}
}

func TestExceededMessage(t *testing.T) {
	e := &ExceededError{Period: PerDay, Level: 2, Max: 500_000, Used: 450_000, Amount: 60_000}
	if got, want := e.Error(), "600.00 yuan is over what is left today at level 2: 500.00 of 5,000.00 yuan"; got != want {
		t.Fatalf("%q\nwant %q", got, want)
	}
}

func TestLower(t *testing.T) {
	t.Parallel()
	low := Default().Lower([]OwnLimit{{Level: 3, PerTxn: 10_000, PerDay: 20_000, PerYear: 30_000}})
	if err := low.Validate(); err != nil {
		t.Fatal(err)
	}
	if low[2].PerTxn != 10_000 || low[2].PerDay != 20_000 {
		t.Fatalf("level 3 not lowered: %+v", low[2])
	}
	// Level 2 may not allow more than the lowered level 3.
	if low[1].PerTxn != 10_000 || low[1].PerDay != 20_000 || low[1].PerYear != 30_000 {
		t.Fatalf("level 2 allows more than level 3: %+v", low[1])
	}
	if low[3] != Default()[3] {
		t.Fatalf("level 4 changed: %+v", low[3])
	}
}

type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time      { return time.UnixMilli(c.t.Load()) }
func (c *clock) set(t time.Time)     { c.t.Store(t.UnixMilli()) }
func (c *clock) add(d time.Duration) { c.t.Add(d.Milliseconds()) }
func newClock(t time.Time) *clock    { c := &clock{}; c.set(t); return c }
func counter(t *testing.T, db *store.DB, c *clock) *Counter {
	t.Helper()
	cn, err := NewCounter(db, Default(), time.FixedZone("CST", 8*3600), c.now)
	if err != nil {
		t.Fatal(err)
	}
	return cn
}

func TestCountAndRelease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// 2026-12-03 10:00 in Beijing.
		clk := newClock(time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC))
		c := counter(t, db, clk)
		usage := func() Usage {
			t.Helper()
			u, err := c.Usage(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		if ok, err := c.Count(ctx, "alice", "k1", 80_000, 2); err != nil || !ok {
			t.Fatalf("first count: %v %v", ok, err)
		}
		// The same key again counts nothing.
		if ok, err := c.Count(ctx, "alice", "k1", 80_000, 2); err != nil || ok {
			t.Fatalf("second count of k1: %v %v", ok, err)
		}
		if u := usage(); u.Day != 80_000 || u.Year != 80_000 {
			t.Fatalf("usage %+v after one count", u)
		}
		var ex *ExceededError
		if _, err := c.Count(ctx, "alice", "k2", 250_000, 2); !errors.As(err, &ex) || ex.Period != PerTransaction {
			t.Fatalf("2,500 yuan at level 2: %v, want the per-transaction limit", err)
		}
		if _, err := c.Count(ctx, "alice", "k2", 100_000, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Count(ctx, "alice", "k3", 300_000, 3); err != nil {
			t.Fatal(err)
		}
		// 4,800 yuan moved today: 1,000 more is over level 2's 5,000 a day.
		if _, err := c.Count(ctx, "alice", "k4", 100_000, 2); !errors.As(err, &ex) || ex.Period != PerDay || ex.Used != 480_000 {
			t.Fatalf("over level 2's day: %v", err)
		}
		if u := usage(); u.Day != 480_000 {
			t.Fatalf("a refused count changed usage: %+v", u)
		}
		// The key reused for another amount is refused.
		if _, err := c.Count(ctx, "alice", "k1", 1, 2); !errors.Is(err, ErrKeyReused) {
			t.Fatalf("k1 for another amount: %v", err)
		}
		// Release gives back once.
		if ok, err := c.Release(ctx, "k3"); err != nil || !ok {
			t.Fatalf("release: %v %v", ok, err)
		}
		if ok, err := c.Release(ctx, "k3"); err != nil || ok {
			t.Fatalf("second release: %v %v", ok, err)
		}
		if ok, err := c.Release(ctx, "never"); err != nil || ok {
			t.Fatalf("release of an unknown key: %v %v", ok, err)
		}
		if u := usage(); u.Day != 180_000 || u.Year != 180_000 {
			t.Fatalf("usage %+v after release", u)
		}
		// Now k4 fits.
		if _, err := c.Count(ctx, "alice", "k4", 100_000, 2); err != nil {
			t.Fatal(err)
		}
		// Next day in Beijing (16:00 UTC is midnight there): the day is new,
		// the year is not.
		clk.add(14 * time.Hour)
		if u := usage(); u.Day != 0 || u.Year != 280_000 {
			t.Fatalf("usage %+v on the next day", u)
		}
		// A release after midnight gives back to the day it was counted in.
		if ok, _ := c.Release(ctx, "k2"); !ok {
			t.Fatal("release of k2")
		}
		if u := usage(); u.Day != 0 || u.Year != 180_000 {
			t.Fatalf("usage %+v after a release of yesterday's count", u)
		}
	})
}

func TestOwnLimits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := counter(t, db, newClock(time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)))
		if err := c.SetOwn(ctx, "bob", Limit{Level: 3, PerTxn: 60_000 * 100, PerDay: 60_000 * 100, PerYear: 60_000 * 100}); !errors.Is(err, ErrRaise) {
			t.Fatalf("raising level 3: %v", err)
		}
		if err := c.SetOwn(ctx, "bob", Limit{Level: 3, PerTxn: 20_000, PerDay: 50_000, PerYear: 1_000_000}); err != nil {
			t.Fatal(err)
		}
		_, err := c.Count(ctx, "bob", "b1", 30_000, 3)
		var ex *ExceededError
		if !errors.As(err, &ex) || ex.Max != 20_000 {
			t.Fatalf("bob's own level-3 limit: %v", err)
		}
		// Alice is not affected.
		if _, err := c.Count(ctx, "alice", "a1", 30_000, 3); err != nil {
			t.Fatal(err)
		}
		// Back to the bank's limits.
		if err := c.SetOwn(ctx, "bob", Default()[2]); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Count(ctx, "bob", "b1", 30_000, 3); err != nil {
			t.Fatal(err)
		}
	})
}

// Concurrent counts never pass a limit together: 40 goroutines each count
// 1,000 yuan against level 2's day of 5,000 yuan; exactly five succeed. On
// PostgreSQL they run on two "replicas" (two pools on one database).
func TestConcurrentCountsHoldTheLimit(t *testing.T) {
	run := func(t *testing.T, dbs []*store.DB) {
		ctx := context.Background()
		clk := newClock(time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC))
		var ok, over atomic.Int64
		var wg sync.WaitGroup
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := counter(t, dbs[i%len(dbs)], clk)
				counted, err := c.Count(ctx, "carol", fmt.Sprintf("c%d", i), 100_000, 2)
				switch {
				case errors.Is(err, ErrExceeded):
					over.Add(1)
				case err != nil:
					t.Error(err)
				case counted:
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 5 || over.Load() != 35 {
			t.Fatalf("%d counted, %d over the limit; want 5 and 35", ok.Load(), over.Load())
		}
		u, err := counter(t, dbs[0], clk).Usage(ctx, "carol")
		if err != nil || u.Day != 500_000 {
			t.Fatalf("usage %+v %v", u, err)
		}
	}
	t.Run("sqlite", func(t *testing.T) { run(t, []*store.DB{storetest.SQLite(t)}) })
	t.Run("postgres two replicas", func(t *testing.T) {
		dsn := storetest.PostgresDSN(t)
		var dbs []*store.DB
		for range 2 {
			db, err := store.Open(context.Background(), store.Config{Driver: store.Postgres, DSN: dsn})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			dbs = append(dbs, db)
		}
		run(t, dbs)
	})
}

// TestState: State reads in one statement what Effective and Usage read
// in two: for a customer with own limits on two levels and usage this day
// and year (and last year's, not counted), and for one with neither.
func TestState(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := newClock(time.Date(2026, 12, 31, 15, 0, 0, 0, time.UTC)) // 23:00 in Shanghai
		c := counter(t, db, clk)
		if err := c.SetOwn(ctx, "bob", Limit{Level: 3, PerTxn: 20_000, PerDay: 50_000, PerYear: 1_000_000}); err != nil {
			t.Fatal(err)
		}
		if err := c.SetOwn(ctx, "bob", Limit{Level: 2, PerTxn: 500, PerDay: 1_000, PerYear: 2_000}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Count(ctx, "bob", "b1", 10_000, 3); err != nil {
			t.Fatal(err)
		}
		clk.add(2 * time.Hour) // 2027-01-01 in Shanghai: a new day and year
		if _, err := c.Count(ctx, "bob", "b2", 15_000, 3); err != nil {
			t.Fatal(err)
		}
		for _, who := range []string{"bob", "alice"} {
			table, u, err := c.State(ctx, who)
			if err != nil {
				t.Fatal(err)
			}
			wantTable, err := c.Effective(ctx, who)
			if err != nil {
				t.Fatal(err)
			}
			wantU, err := c.Usage(ctx, who)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(table, wantTable) || u != wantU {
				t.Fatalf("%s: State = %v %+v, want %v %+v", who, table, u, wantTable, wantU)
			}
			if who == "bob" && (u != Usage{Day: 15_000, Year: 15_000} || table[1].PerTxn != 500 || table[2].PerTxn != 20_000) {
				t.Fatalf("bob: %v %+v", table, u)
			}
		}
	})
}
