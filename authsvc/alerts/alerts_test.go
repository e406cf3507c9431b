package alerts

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

func TestPostPendingAck(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		o := New(db, func() time.Time { now = now.Add(time.Second); return now })
		id1, err := o.Post(ctx, "P1", KindLogin, Login{Client: "ebank", IP: "10.1.1.1", Device: "Firefox", Level: 1})
		if err != nil {
			t.Fatal(err)
		}
		id2, _ := o.Post(ctx, "P2", KindLogin, Login{Client: "mall", IP: "10.1.1.2"})
		for _, tc := range []struct {
			consumer string
			ack      []string
			want     []string
		}{
			{ConsumerSMS, nil, []string{id1, id2}},
			{ConsumerMessenger, []string{id1, id1}, []string{id2}},
			{ConsumerSMS, []string{id2}, []string{id1}},
		} {
			for _, id := range tc.ack {
				if err := o.Ack(ctx, tc.consumer, id); err != nil {
					t.Fatal(err)
				}
			}
			got, err := o.Pending(ctx, tc.consumer, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%s: got %d alerts, want %v", tc.consumer, len(got), tc.want)
			}
			for i := range got {
				if got[i].ID != tc.want[i] {
					t.Fatalf("%s: got %s want %s", tc.consumer, got[i].ID, tc.want[i])
				}
			}
		}
		inbox, _ := o.ForCustomer(ctx, "P1", 5)
		var l Login
		if len(inbox) != 1 || json.Unmarshal(inbox[0].Body, &l) != nil || l.Client != "ebank" || l.IP != "10.1.1.1" {
			t.Fatalf("inbox: %+v", inbox)
		}
	})
}
