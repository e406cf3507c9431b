package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// clock is a test clock that moves only when told.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC).UnixMilli())
	return c
}
func (c *clock) now() time.Time              { return time.UnixMilli(c.ms.Load()) }
func (c *clock) advance(d time.Duration)     { c.ms.Add(d.Milliseconds()) }
func (c *clock) ledger(db *store.DB) *Ledger { return New(db, c.now) }

// books is a ledger with the bank's equity account and two customers:
// alice with 1,000.00 yuan in her current account, bob with nothing.
type books struct {
	l                   *Ledger
	db                  *store.DB
	clk                 *clock
	equity, alice, bob  Account
	aliceSavings, other Account
}

func newBooks(t *testing.T, db *store.DB) *books {
	t.Helper()
	ctx := context.Background()
	b := &books{db: db, clk: newClock()}
	b.l = b.clk.ledger(db)
	var err error
	if b.equity, err = b.l.EnsureBankAccount(ctx, "equity", KindEquity, "Opening balances"); err != nil {
		t.Fatal(err)
	}
	open := func(owner, kind string) Account {
		a, err := b.l.OpenAccount(ctx, NewAccount{Owner: owner, Kind: kind, Name: owner + " " + kind})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	b.alice, b.aliceSavings, b.bob = open("p-alice", KindCurrent), open("p-alice", KindSavings), open("p-bob", KindCurrent)
	b.other = open("p-carol", KindCurrent)
	if _, err := b.l.Transfer(ctx, Request{Origin: "bank", Key: "opening-alice", Debit: b.equity.Number, Credit: b.alice.Number, Amount: 100_000, Code: "opening"}); err != nil {
		t.Fatal(err)
	}
	return b
}

// state is everything the ledger holds, to prove a refusal changed nothing.
func (b *books) state(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	var sb strings.Builder
	rows, err := b.db.Query(ctx, `SELECT `+accountCols+` FROM ebank_accounts ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%+v\n", a)
	}
	rows.Close()
	rows, err = b.db.Query(ctx, `SELECT `+rowCols+` FROM ebank_transfers ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		w, err := scanRow(rows)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sb, "%+v\n", w)
	}
	rows.Close()
	return sb.String()
}

func (b *books) account(t *testing.T, a Account) Account {
	t.Helper()
	got, err := b.l.Account(context.Background(), a.Number)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func (b *books) check(t *testing.T) Report {
	t.Helper()
	rep, err := Check(context.Background(), b.db)
	if err != nil {
		t.Fatalf("ledger check: %v", err)
	}
	return rep
}

func (b *books) pay(from, to Account, amount int64, key string) Request {
	return Request{Origin: "ebank", Key: key, Debit: from.Number, Credit: to.Number, Amount: amount, Grant: "g-" + key}
}

func TestNumbers(t *testing.T) {
	t.Parallel()
	for range 100 {
		id, err := newNumber()
		if err != nil {
			t.Fatal(err)
		}
		s := strconv.FormatInt(id, 10)
		if got, err := ParseNumber(s); err != nil || got != id {
			t.Fatalf("ParseNumber(%s) = %d, %v", s, got, err)
		}
		// Every one-digit typo in the serial is caught by the check digit.
		typo := []byte(s)
		typo[10] = '0' + (typo[10]-'0'+1)%10
		if _, err := ParseNumber(string(typo)); !errors.Is(err, ErrUnknownAccount) || !strings.Contains(err.Error(), "check digit") {
			t.Fatalf("ParseNumber(%s) = %v, want a wrong check digit", typo, err)
		}
	}
	// A known Luhn example: 79927398713.
	if d := luhn("7992739871"); d != 3 {
		t.Fatalf("luhn(7992739871) = %d, want 3", d)
	}
	for _, s := range []string{"", "629988", "6299880000000000000x", "1234567890123456789", "62998800000000000001"} {
		if _, err := ParseNumber(s); !errors.Is(err, ErrUnknownAccount) {
			t.Fatalf("ParseNumber(%q) = %v", s, err)
		}
	}
}

func TestTransfer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBooks(t, db)
		ctx := context.Background()
		tr, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 25_050, "t1"))
		if err != nil {
			t.Fatal(err)
		}
		if tr.Kind != KindPosted || tr.Amount != 25_050 || tr.Grant != "g-t1" || tr.Replayed {
			t.Fatalf("transfer %+v", tr)
		}
		if a, bb := b.account(t, b.alice), b.account(t, b.bob); a.Balance() != 74_950 || bb.Balance() != 25_050 || a.Available() != 74_950 {
			t.Fatalf("balances alice %d bob %d", a.Balance(), bb.Balance())
		}
		if e := b.account(t, b.equity); e.Balance() != -100_000 || e.DebitsPosted != 100_000 {
			t.Fatalf("equity %+v", e)
		}
		rep := b.check(t)
		if rep.Transfers != 2 || rep.Accounts != 5 || rep.DebitsPosted != 125_050 || rep.CreditsPosted != 125_050 || rep.Holds != 0 {
			t.Fatalf("check %+v", rep)
		}
		got, err := b.l.Get(ctx, tr.ID)
		if err != nil || got.Amount != 25_050 || got.Debit != b.alice.Number || got.State != "" {
			t.Fatalf("Get = %+v, %v", got, err)
		}
	})
}

// Every bad input is refused with its own error and changes nothing.
func TestBadInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBooks(t, db)
		ctx := context.Background()
		if err := b.l.SetStatus(ctx, b.other.Number, StatusFrozen); err != nil {
			t.Fatal(err)
		}
		hold, err := b.l.Hold(ctx, Request{Origin: "atm", Key: "h", Debit: b.alice.Number, Credit: b.bob.Number, Amount: 10_000, Grant: "g", Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		posted, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 100, "done"))
		if err != nil {
			t.Fatal(err)
		}
		unknown := strconv.FormatInt(func() int64 { n, _ := newNumber(); return n }(), 10)
		for _, tc := range []struct {
			name string
			do   func() error
			want error
		}{
			{"to oneself", func() error { _, err := b.l.Transfer(ctx, b.pay(b.alice, b.alice, 100, "k")); return err }, ErrSameAccount},
			{"to an unknown account", func() error {
				_, err := b.l.Transfer(ctx, Request{Origin: "ebank", Key: "k", Debit: b.alice.Number, Credit: unknown, Amount: 100})
				return err
			}, ErrUnknownAccount},
			{"from an unknown account", func() error {
				_, err := b.l.Transfer(ctx, Request{Origin: "ebank", Key: "k", Debit: unknown, Credit: b.bob.Number, Amount: 100})
				return err
			}, ErrUnknownAccount},
			{"to a mistyped number", func() error {
				_, err := b.l.Transfer(ctx, Request{Origin: "ebank", Key: "k", Debit: b.alice.Number, Credit: b.bob.Number[:18] + string('0'+(b.bob.Number[18]-'0'+1)%10), Amount: 100})
				return err
			}, ErrUnknownAccount},
			{"to a frozen account", func() error { _, err := b.l.Transfer(ctx, b.pay(b.alice, b.other, 100, "k")); return err }, ErrAccountNotOpen},
			{"over the balance", func() error { _, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 100_000, "k")); return err }, ErrInsufficientFunds},
			{"over the balance less holds", func() error { _, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 89_901, "k")); return err }, ErrInsufficientFunds},
			{"hold over the balance", func() error {
				r := b.pay(b.alice, b.bob, 89_901, "k")
				r.Timeout = time.Minute
				_, err := b.l.Hold(ctx, r)
				return err
			}, ErrInsufficientFunds},
			{"from an empty account", func() error { _, err := b.l.Transfer(ctx, b.pay(b.aliceSavings, b.bob, 1, "k")); return err }, ErrInsufficientFunds},
			{"zero", func() error { _, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 0, "k")); return err }, ErrAmount},
			{"negative", func() error { _, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, -100, "k")); return err }, ErrAmount},
			{"over the largest amount", func() error { _, err := b.l.Transfer(ctx, b.pay(b.equity, b.bob, MaxAmount+1, "k")); return err }, ErrAmount},
			{"no key", func() error { _, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 100, "")); return err }, ErrInvalidRequest},
			{"key with a space", func() error { _, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 100, "a b")); return err }, ErrInvalidRequest},
			{"key reused for another amount", func() error { _, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 101, "done")); return err }, ErrKeyReused},
			{"key reused for another payee", func() error { _, err := b.l.Transfer(ctx, b.pay(b.alice, b.aliceSavings, 100, "done")); return err }, ErrKeyReused},
			{"key reused for a hold", func() error {
				r := b.pay(b.alice, b.bob, 100, "done")
				r.Timeout = time.Minute
				_, err := b.l.Hold(ctx, r)
				return err
			}, ErrKeyReused},
			{"a memo too long", func() error {
				r := b.pay(b.alice, b.bob, 100, "k")
				r.Memo = strings.Repeat("x", 257)
				_, err := b.l.Transfer(ctx, r)
				return err
			}, ErrInvalidRequest},
			{"hold without a timeout", func() error { _, err := b.l.Hold(ctx, b.pay(b.alice, b.bob, 100, "k")); return err }, ErrInvalidRequest},
			{"capture over the hold", func() error {
				_, err := b.l.Post(ctx, Resolve{Origin: "atm", Key: "c", Pending: hold.ID, Amount: 10_001})
				return err
			}, ErrOverHold},
			{"capture zero", func() error {
				_, err := b.l.Post(ctx, Resolve{Origin: "atm", Key: "c", Pending: hold.ID, Amount: 0})
				return err
			}, ErrAmount},
			{"capture a posted transfer", func() error {
				_, err := b.l.Post(ctx, Resolve{Origin: "atm", Key: "c", Pending: posted.ID, Amount: 100})
				return err
			}, ErrNotPending},
			{"capture an unknown hold", func() error {
				_, err := b.l.Post(ctx, Resolve{Origin: "atm", Key: "c", Pending: "12345", Amount: 100})
				return err
			}, ErrUnknownTransfer},
			{"capture a malformed id", func() error {
				_, err := b.l.Post(ctx, Resolve{Origin: "atm", Key: "c", Pending: "x1", Amount: 100})
				return err
			}, ErrUnknownTransfer},
			{"reverse a hold", func() error { _, err := b.l.Reverse(ctx, "ebank", "r", hold.ID, "g", ""); return err }, ErrNotReversible},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := b.state(t)
				err := tc.do()
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				if Code(err) == "" || err.Error() == "" {
					t.Fatalf("error %v has no code", err)
				}
				if after := b.state(t); after != before {
					t.Fatalf("the ledger changed:\n%s\n→\n%s", before, after)
				}
			})
		}
		b.check(t)
	})
}

// The same request twice is one transfer (a double-submitted form).
func TestIdempotentReplay(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBooks(t, db)
		ctx := context.Background()
		first, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 500, "form-1"))
		if err != nil {
			t.Fatal(err)
		}
		before := b.state(t)
		again, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 500, "form-1"))
		if err != nil || again.ID != first.ID || !again.Replayed {
			t.Fatalf("replay = %+v, %v; want transfer %s", again, err, first.ID)
		}
		if b.state(t) != before {
			t.Fatal("the replay changed the ledger")
		}
		// Another origin's key space is its own.
		r := b.pay(b.alice, b.bob, 500, "form-1")
		r.Origin = "mall"
		if other, err := b.l.Transfer(ctx, r); err != nil || other.ID == first.ID {
			t.Fatalf("same key, other origin = %+v, %v", other, err)
		}
		if got := b.account(t, b.bob).Balance(); got != 1000 {
			t.Fatalf("bob has %d, want 1000", got)
		}
		// Capture and release replay too.
		h, err := b.l.Hold(ctx, Request{Origin: "atm", Key: "h", Debit: b.alice.Number, Credit: b.bob.Number, Amount: 300, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		c1, err := b.l.Post(ctx, Resolve{Origin: "atm", Key: "cap", Pending: h.ID, Amount: 200})
		if err != nil {
			t.Fatal(err)
		}
		c2, err := b.l.Post(ctx, Resolve{Origin: "atm", Key: "cap", Pending: h.ID, Amount: 200})
		if err != nil || c2.ID != c1.ID || !c2.Replayed {
			t.Fatalf("capture replay = %+v, %v", c2, err)
		}
		if _, err := b.l.Post(ctx, Resolve{Origin: "atm", Key: "cap", Pending: h.ID, Amount: 300}); !errors.Is(err, ErrKeyReused) {
			t.Fatalf("capture with the key of another amount: %v", err)
		}
		// A repeat is answered as the first even where a new request would
		// now be refused (the key is looked up once the transaction fails):
		// the payer's money spent, then the account frozen; the key with
		// another amount is still a reused key, not a refusal for funds.
		if _, err := b.l.Transfer(ctx, b.pay(b.alice, b.other, b.account(t, b.alice).Available(), "drain")); err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			name   string
			before func() error
		}{
			{"funds spent", func() error { return nil }},
			{"account frozen", func() error { return b.l.SetStatus(ctx, b.alice.Number, StatusFrozen) }},
		} {
			if err := step.before(); err != nil {
				t.Fatal(err)
			}
			before := b.state(t)
			again, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 500, "form-1"))
			if err != nil || again.ID != first.ID || !again.Replayed {
				t.Fatalf("%s: replay = %+v, %v; want transfer %s", step.name, again, err, first.ID)
			}
			if _, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 600, "form-1")); !errors.Is(err, ErrKeyReused) {
				t.Fatalf("%s: the key with another amount: %v, want %v", step.name, err, ErrKeyReused)
			}
			if b.state(t) != before {
				t.Fatalf("%s: the replay changed the ledger", step.name)
			}
		}
		b.check(t)
	})
}

// The unique indexes that let a hold be resolved once and a transfer be
// reversed once keep only the rows that have a hold or a reversed
// transfer (migration 0540): a posted transfer writes no entry in them.
func TestLinkIndexesKeepOnlyLinks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		q := `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?`
		if db.Driver() == store.Postgres {
			q = `SELECT indexdef FROM pg_indexes WHERE indexname = ?`
		}
		for _, c := range []struct{ index, column string }{
			{"ebank_transfers_pending", "pending_id"},
			{"ebank_transfers_reverses", "reverses_id"},
		} {
			var def string
			if err := db.QueryRow(context.Background(), q, c.index).Scan(&def); err != nil {
				t.Fatalf("%s: %v", c.index, err)
			}
			d := strings.ToUpper(strings.NewReplacer("(", "", ")", "").Replace(def))
			if !strings.Contains(d, "UNIQUE") || !strings.Contains(d, "WHERE "+strings.ToUpper(c.column)+" IS NOT NULL") {
				t.Errorf("%s is %q, want a unique index on %s WHERE %s IS NOT NULL", c.index, def, c.column, c.column)
			}
		}
	})
}

func TestHolds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		hold := func(t *testing.T, b *books, key string, amount int64) Transfer {
			t.Helper()
			h, err := b.l.Hold(ctx, Request{Origin: "atm", Key: key, Debit: b.alice.Number, Credit: b.bob.Number, Amount: amount, Grant: "g-" + key, Timeout: 2 * time.Minute, Code: "atm-withdrawal"})
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		capture := func(b *books, h Transfer, key string, amount int64) error {
			_, err := b.l.Post(ctx, Resolve{Origin: "atm", Key: key, Pending: h.ID, Amount: amount})
			return err
		}
		release := func(b *books, h Transfer, key string) error {
			_, err := b.l.Void(ctx, Resolve{Origin: "atm", Key: key, Pending: h.ID})
			return err
		}
		for _, tc := range []struct {
			name string
			// steps before the refused or final one
			steps func(t *testing.T, b *books, h Transfer)
			last  func(b *books, h Transfer) error
			want  error
			// balances after: alice's posted balance, her available, bob's
			alice, avail, bob int64
			state             string
		}{
			{"hold only", func(*testing.T, *books, Transfer) {}, nil, nil, 100_000, 70_000, 0, HoldPending},
			{"full capture", func(*testing.T, *books, Transfer) {}, func(b *books, h Transfer) error { return capture(b, h, "c", 30_000) }, nil, 70_000, 70_000, 30_000, HoldCaptured},
			{"partial capture releases the rest", func(*testing.T, *books, Transfer) {}, func(b *books, h Transfer) error { return capture(b, h, "c", 20_000) }, nil, 80_000, 80_000, 20_000, HoldCaptured},
			{"release", func(*testing.T, *books, Transfer) {}, func(b *books, h Transfer) error { return release(b, h, "r") }, nil, 100_000, 100_000, 0, HoldReleased},
			{"capture twice", func(t *testing.T, b *books, h Transfer) {
				if err := capture(b, h, "c1", 30_000); err != nil {
					t.Fatal(err)
				}
			}, func(b *books, h Transfer) error { return capture(b, h, "c2", 30_000) }, ErrCaptured, 70_000, 70_000, 30_000, HoldCaptured},
			{"capture after release", func(t *testing.T, b *books, h Transfer) {
				if err := release(b, h, "r"); err != nil {
					t.Fatal(err)
				}
			}, func(b *books, h Transfer) error { return capture(b, h, "c", 30_000) }, ErrReleased, 100_000, 100_000, 0, HoldReleased},
			{"release after capture", func(t *testing.T, b *books, h Transfer) {
				if err := capture(b, h, "c", 10_000); err != nil {
					t.Fatal(err)
				}
			}, func(b *books, h Transfer) error { return release(b, h, "r") }, ErrCaptured, 90_000, 90_000, 10_000, HoldCaptured},
			{"release twice", func(t *testing.T, b *books, h Transfer) {
				if err := release(b, h, "r1"); err != nil {
					t.Fatal(err)
				}
			}, func(b *books, h Transfer) error { return release(b, h, "r2") }, ErrReleased, 100_000, 100_000, 0, HoldReleased},
			{"capture after expiry, before the sweep", func(t *testing.T, b *books, h Transfer) { b.clk.advance(2 * time.Minute) },
				func(b *books, h Transfer) error { return capture(b, h, "c", 30_000) }, ErrExpired, 100_000, 70_000, 0, HoldExpired},
			{"capture after expiry, after the sweep", func(t *testing.T, b *books, h Transfer) {
				b.clk.advance(3 * time.Minute)
				if n, err := b.l.ExpireHolds(ctx, 100); n != 1 || err != nil {
					t.Fatalf("ExpireHolds = %d, %v", n, err)
				}
			}, func(b *books, h Transfer) error { return capture(b, h, "c", 30_000) }, ErrReleased, 100_000, 100_000, 0, HoldReleased},
			{"capture a second before expiry", func(t *testing.T, b *books, h Transfer) { b.clk.advance(2*time.Minute - time.Second) },
				func(b *books, h Transfer) error { return capture(b, h, "c", 30_000) }, nil, 70_000, 70_000, 30_000, HoldCaptured},
			{"release after expiry", func(t *testing.T, b *books, h Transfer) { b.clk.advance(time.Hour) },
				func(b *books, h Transfer) error { return release(b, h, "r") }, nil, 100_000, 100_000, 0, HoldReleased},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := newBooks(t, storeFor(t, db))
				h := hold(t, b, "h", 30_000)
				if h.Kind != KindPending || h.TimeoutMS != b.clk.now().Add(2*time.Minute).UnixMilli() {
					t.Fatalf("hold %+v", h)
				}
				tc.steps(t, b, h)
				if tc.last != nil {
					before := b.state(t)
					err := tc.last(b, h)
					if !errors.Is(err, tc.want) {
						t.Fatalf("got %v, want %v", err, tc.want)
					}
					if err != nil && b.state(t) != before {
						t.Fatal("a refused step changed the ledger")
					}
				}
				a, bob := b.account(t, b.alice), b.account(t, b.bob)
				if a.Balance() != tc.alice || a.Available() != tc.avail || bob.Balance() != tc.bob {
					t.Fatalf("alice %d (available %d), bob %d; want %d (%d), %d", a.Balance(), a.Available(), bob.Balance(), tc.alice, tc.avail, tc.bob)
				}
				got, err := b.l.Get(ctx, h.ID)
				if err != nil || got.State != tc.state {
					t.Fatalf("Get = %+v, %v; want state %s", got, err, tc.state)
				}
				if tc.state == HoldCaptured && got.Captured != tc.bob {
					t.Fatalf("captured %d, want %d", got.Captured, tc.bob)
				}
				b.check(t)
			})
		}
	})
}

// storeFor gives each subtest of a table its own database on the engine
// of db, so the cases do not see each other's transfers.
func storeFor(t *testing.T, db *store.DB) *store.DB {
	if db.Driver() == store.Postgres {
		return storetest.Postgres(t)
	}
	return storetest.SQLite(t)
}

func TestExpireHolds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBooks(t, db)
		ctx := context.Background()
		var ids []string
		for i, d := range []time.Duration{time.Minute, 2 * time.Minute, time.Hour} {
			h, err := b.l.Hold(ctx, Request{Origin: "mall", Key: fmt.Sprint("h", i), Debit: b.alice.Number, Credit: b.bob.Number, Amount: 1000, Timeout: d})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, h.ID)
		}
		if n, err := b.l.ExpireHolds(ctx, 100); n != 0 || err != nil {
			t.Fatalf("nothing expired yet: %d, %v", n, err)
		}
		b.clk.advance(2 * time.Minute)
		// A second ledger (another replica) sweeps the same database.
		other := New(db, b.clk.now)
		if n, err := other.ExpireHolds(ctx, 1); n != 1 || err != nil {
			t.Fatalf("first sweep = %d, %v; want 1 (its limit)", n, err)
		}
		if n, err := b.l.ExpireHolds(ctx, 100); n != 1 || err != nil {
			t.Fatalf("second sweep = %d, %v; want 1", n, err)
		}
		if n, err := b.l.ExpireHolds(ctx, 100); n != 0 || err != nil {
			t.Fatalf("third sweep = %d, %v; want 0", n, err)
		}
		for i, want := range []string{HoldReleased, HoldReleased, HoldPending} {
			got, err := b.l.Get(ctx, ids[i])
			if err != nil || got.State != want {
				t.Fatalf("hold %d: %+v, %v; want %s", i, got, err, want)
			}
		}
		if a := b.account(t, b.alice); a.Available() != 99_000 || a.Balance() != 100_000 {
			t.Fatalf("alice %+v", a)
		}
		// An expiry void is a replay for the sweep of another replica that
		// found the same hold: the same void, not a second one.
		v, err := b.l.Void(ctx, Resolve{Origin: OriginLedger, Key: "expire:" + ids[0], Pending: ids[0], Code: "expiry"})
		if err != nil || !v.Replayed {
			t.Fatalf("expiry void again = %+v, %v", v, err)
		}
		b.check(t)
	})
}

// Two replicas sweeping at once release each expired hold exactly once.
func TestConcurrentExpiry(t *testing.T) {
	run := func(t *testing.T, dbs []*store.DB) {
		ctx := context.Background()
		b := newBooks(t, dbs[0])
		const n = 20
		var ids []string
		for i := range n {
			h, err := b.l.Hold(ctx, Request{Origin: "mall", Key: fmt.Sprint("h", i), Debit: b.alice.Number, Credit: b.bob.Number, Amount: 100, Timeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, h.ID)
		}
		b.clk.advance(time.Minute)
		var released atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := New(dbs[i%len(dbs)], b.clk.now)
				<-start
				for {
					k, err := l.ExpireHolds(ctx, 3)
					if err != nil {
						t.Error(err)
						return
					}
					released.Add(int64(k))
					if k == 0 {
						return
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		var voids int
		if err := b.db.QueryRow(ctx, `SELECT COUNT(*) FROM ebank_transfers WHERE kind = 'void'`).Scan(&voids); err != nil {
			t.Fatal(err)
		}
		if released.Load() != n || voids != n {
			t.Fatalf("sweeps released %d, %d voids; want %d", released.Load(), voids, n)
		}
		for _, id := range ids {
			if got, err := b.l.Get(ctx, id); err != nil || got.State != HoldReleased {
				t.Fatalf("hold %s: %+v, %v", id, got, err)
			}
		}
		if a := b.account(t, b.alice); a.Available() != 100_000 || a.DebitsPending != 0 {
			t.Fatalf("alice %+v", a)
		}
		b.check(t)
	}
	t.Run("sqlite", func(t *testing.T) { run(t, []*store.DB{storetest.SQLite(t)}) })
	t.Run("postgres two replicas", func(t *testing.T) { run(t, twoReplicas(t)) })
}

// twoReplicas opens one fresh PostgreSQL database twice.
func twoReplicas(t *testing.T) []*store.DB {
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
	return dbs
}

func TestReverse(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBooks(t, db)
		ctx := context.Background()
		tr, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 40_000, "pay"))
		if err != nil {
			t.Fatal(err)
		}
		rev, err := b.l.Reverse(ctx, "ebank", "undo", tr.ID, "g-undo", "paid twice")
		if err != nil || rev.ReversesID != tr.ID || rev.Debit != b.bob.Number || rev.Credit != b.alice.Number || rev.Amount != 40_000 {
			t.Fatalf("reverse = %+v, %v", rev, err)
		}
		if a, bb := b.account(t, b.alice), b.account(t, b.bob); a.Balance() != 100_000 || bb.Balance() != 0 {
			t.Fatalf("after the reversal alice %d bob %d", a.Balance(), bb.Balance())
		}
		before := b.state(t)
		if _, err := b.l.Reverse(ctx, "ebank", "undo-2", tr.ID, "g", ""); !errors.Is(err, ErrReversed) {
			t.Fatalf("second reversal: %v", err)
		}
		// bob spent the money: reversing his payment back would overdraw him.
		tr2, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 1000, "pay-2"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.l.Transfer(ctx, b.pay(b.bob, b.aliceSavings, 600, "spend")); err != nil {
			t.Fatal(err)
		}
		before = b.state(t)
		if _, err := b.l.Reverse(ctx, "ebank", "undo-3", tr2.ID, "g", ""); !errors.Is(err, ErrInsufficientFunds) {
			t.Fatalf("reversal over bob's balance: %v", err)
		}
		if b.state(t) != before {
			t.Fatal("a refused reversal changed the ledger")
		}
		// A capture can be reversed (a refund of an ATM withdrawal).
		h, err := b.l.Hold(ctx, Request{Origin: "atm", Key: "h", Debit: b.alice.Number, Credit: b.bob.Number, Amount: 500, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		c, err := b.l.Post(ctx, Resolve{Origin: "atm", Key: "c", Pending: h.ID, Amount: 500})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.l.Reverse(ctx, "atm", "undo-c", c.ID, "", ""); err != nil {
			t.Fatal(err)
		}
		b.check(t)
	})
}

// Holds on two replicas at once never together take more than the balance:
// 20 holds of 100 yuan each fit alone, only 10 fit in alice's 1,000.
func TestConcurrentHolds(t *testing.T) {
	run := func(t *testing.T, dbs []*store.DB) {
		ctx := context.Background()
		b := newBooks(t, dbs[0])
		const n = 20
		var ok, short atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := New(dbs[i%len(dbs)], b.clk.now)
				<-start
				_, err := l.Hold(ctx, Request{Origin: "messenger", Key: fmt.Sprint("k", i), Debit: b.alice.Number, Credit: b.bob.Number, Amount: 10_000, Timeout: time.Minute})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrInsufficientFunds):
					short.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok.Load() != 10 || short.Load() != 10 {
			t.Fatalf("%d holds made, %d refused; want 10 and 10", ok.Load(), short.Load())
		}
		if a := b.account(t, b.alice); a.Available() != 0 || a.DebitsPending != 100_000 {
			t.Fatalf("alice %+v", a)
		}
		b.check(t)
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

// Two replicas capturing one hold at once: exactly one capture happens.
func TestConcurrentCaptureOnce(t *testing.T) {
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
	ctx := context.Background()
	b := newBooks(t, dbs[0])
	for round := range 5 {
		h, err := b.l.Hold(ctx, Request{Origin: "atm", Key: fmt.Sprint("h", round), Debit: b.alice.Number, Credit: b.bob.Number, Amount: 1000, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 4)
		start := make(chan struct{})
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := New(dbs[i%2], b.clk.now)
				<-start
				if i%2 == 0 {
					_, errs[i] = l.Post(ctx, Resolve{Origin: "atm", Key: fmt.Sprintf("c%d-%d", round, i), Pending: h.ID, Amount: 1000})
				} else {
					_, errs[i] = l.Void(ctx, Resolve{Origin: "atm", Key: fmt.Sprintf("c%d-%d", round, i), Pending: h.ID})
				}
			}()
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, ErrCaptured), errors.Is(err, ErrReleased):
			default:
				t.Fatal(err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d resolutions succeeded, want 1: %v", round, won, errs)
		}
	}
	b.check(t)
}

// Check names the first account whose balance is not the sum of its
// transfers, and how far off it is.
func TestCheckFindsTampering(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, tc := range []struct {
			name   string
			tamper func(t *testing.T, b *books) string // returns the account it should name
			column string
			says   []string
		}{
			{"a balance raised", func(t *testing.T, b *books) string {
				mustExec(t, b.db, `UPDATE ebank_accounts SET credits_posted = credits_posted + 1 WHERE id = ?`, id(b.bob))
				return b.bob.Number
			}, "credits_posted", []string{"0.01 yuan more"}},
			{"a hold forgotten", func(t *testing.T, b *books) string {
				mustExec(t, b.db, `UPDATE ebank_accounts SET debits_pending = 0 WHERE id = ?`, id(b.alice))
				return b.alice.Number
			}, "debits_pending", []string{"0.00 yuan but its transfers sum to 50.00 yuan", "50.00 yuan less"}},
			{"a transfer deleted", func(t *testing.T, b *books) string {
				mustExec(t, b.db, `DELETE FROM ebank_transfers WHERE code = 'opening'`)
				return minNumber(b.alice.Number, b.equity.Number)
			}, "", []string{"1,000.00 yuan"}},
			{"a customer below zero", func(t *testing.T, b *books) string {
				mustExec(t, b.db, `UPDATE ebank_transfers SET amount = 5000000 WHERE client_key = 'paid'`)
				mustExec(t, b.db, `UPDATE ebank_accounts SET debits_posted = debits_posted + 4990000 WHERE id = ?`, id(b.alice))
				mustExec(t, b.db, `UPDATE ebank_accounts SET credits_posted = credits_posted + 4990000 WHERE id = ?`, id(b.bob))
				return b.alice.Number
			}, "available", []string{"below zero", "-49,050.00 yuan"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := newBooks(t, storeFor(t, db))
				if _, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 10_000, "paid")); err != nil {
					t.Fatal(err)
				}
				if _, err := b.l.Hold(ctx, Request{Origin: "atm", Key: "h", Debit: b.alice.Number, Credit: b.bob.Number, Amount: 5000, Timeout: time.Minute}); err != nil {
					t.Fatal(err)
				}
				b.check(t)
				want := tc.tamper(t, b)
				_, err := Check(ctx, b.db)
				var ce *CheckError
				if !errors.As(err, &ce) || ce.Account != want {
					t.Fatalf("Check = %v, want account %s named", err, want)
				}
				if tc.column != "" && ce.Column != tc.column {
					t.Fatalf("Check = %v, want column %s", err, tc.column)
				}
				for _, s := range append(tc.says, want) {
					if !strings.Contains(err.Error(), s) {
						t.Fatalf("%q does not say %q", err, s)
					}
				}
			})
		}
	})
}

func id(a Account) int64 {
	n, _ := strconv.ParseInt(a.Number, 10, 64)
	return n
}

func minNumber(a, b string) string {
	if a < b {
		return a
	}
	return b
}

func mustExec(t *testing.T, db *store.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}

// Check reads one snapshot and takes no write lock: a transfer made
// through another connection (another process, on SQLite) while the
// snapshot is open goes through at once and is not seen by it.
func TestCheckReadsOneSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) []*store.DB
	}{
		{"sqlite", func(t *testing.T) []*store.DB {
			path := t.TempDir() + "/egate.db"
			var dbs []*store.DB
			for range 2 {
				db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: path})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				dbs = append(dbs, db)
			}
			return dbs
		}},
		{"postgres", twoReplicas},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dbs := tc.open(t)
			b := newBooks(t, dbs[0])
			q, done, err := snapshot(ctx, dbs[0])
			if err != nil {
				t.Fatal(err)
			}
			defer done()
			var before, inside int64
			if err := q1(q, `SELECT COUNT(*) FROM ebank_transfers`, &before); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if _, err := New(dbs[1], b.clk.now).Transfer(wctx, b.pay(b.alice, b.bob, 100, "during")); err != nil {
				t.Fatalf("a transfer while the check reads: %v", err)
			}
			if err := q1(q, `SELECT COUNT(*) FROM ebank_transfers`, &inside); err != nil {
				t.Fatal(err)
			}
			if inside != before {
				t.Fatalf("the snapshot saw %d transfers, then %d", before, inside)
			}
		})
	}
}
