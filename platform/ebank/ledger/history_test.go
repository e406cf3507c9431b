package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

func TestHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBooks(t, db)
		ctx := context.Background()
		start := b.clk.now().UnixMilli() // the opening deposit's time
		b.clk.advance(time.Hour)
		if _, err := b.l.Transfer(ctx, b.pay(b.alice, b.bob, 10_00, "h1")); err != nil {
			t.Fatal(err)
		}
		b.clk.advance(time.Hour)
		mid := b.clk.now().UnixMilli()
		if _, err := b.l.Transfer(ctx, b.pay(b.bob, b.alice, 2_50, "h2")); err != nil {
			t.Fatal(err)
		}
		hold := b.pay(b.alice, b.other, 300_00, "h3")
		hold.Timeout = time.Minute
		if _, err := b.l.Hold(ctx, hold); err != nil { // pending: not in the history
			t.Fatal(err)
		}
		b.clk.advance(time.Hour)
		if _, err := b.l.Transfer(ctx, b.pay(b.bob, b.other, 1_00, "h4")); err != nil { // not alice's
			t.Fatal(err)
		}
		cases := []struct {
			name string
			f    HistoryFilter
			want []int64 // amounts, newest first
		}{
			{"everything", HistoryFilter{}, []int64{2_50, 10_00, 1000_00}},
			{"from mid", HistoryFilter{FromMS: mid}, []int64{2_50}},
			{"before mid", HistoryFilter{ToMS: mid}, []int64{10_00, 1000_00}},
			{"the first hour", HistoryFilter{FromMS: start, ToMS: start + 1}, []int64{1000_00}},
			{"at least 5 yuan", HistoryFilter{Min: 5_00}, []int64{10_00, 1000_00}},
			{"at most 10 yuan", HistoryFilter{Max: 10_00}, []int64{2_50, 10_00}},
			{"between", HistoryFilter{Min: 3_00, Max: 999_99}, []int64{10_00}},
			{"limit", HistoryFilter{Limit: 1}, []int64{2_50}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got, err := b.l.History(ctx, b.alice.Number, c.f)
				if err != nil {
					t.Fatal(err)
				}
				var amounts []int64
				for _, tr := range got {
					amounts = append(amounts, tr.Amount)
				}
				if len(amounts) != len(c.want) {
					t.Fatalf("amounts %v, want %v", amounts, c.want)
				}
				for i := range amounts {
					if amounts[i] != c.want[i] {
						t.Fatalf("amounts %v, want %v", amounts, c.want)
					}
				}
			})
		}
		if _, err := b.l.History(ctx, "6299880000000000001", HistoryFilter{}); Code(err) != "unknown_account" {
			t.Errorf("bad number: %v", err)
		}
	})
}
