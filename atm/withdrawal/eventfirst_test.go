package withdrawal

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// eventFirst is an ATM whose customer is quicker than the link: the
// "taken" event of a dispense reaches the service before the dispense's
// own answer does.
type eventFirst struct {
	*fakeATM
	svc **Service
}

func (e eventFirst) Send(ctx context.Context, cmd gateway.Command) (json.RawMessage, error) {
	raw, err := e.fakeATM.Send(ctx, cmd)
	if err == nil && cmd.Op == dclink.OpDispense {
		var a dclink.DispenseArgs
		json.Unmarshal(cmd.Args, &a)
		if err := (*e.svc).Event(ctx, e.fakeATM.customer(a.Txn, true)); err != nil {
			return nil, err
		}
	}
	return raw, err
}

// TestDispenseAnswerAfterTheEvent: the event settled the withdrawal first;
// the approval still answers the state reached, not a conflict (the phone
// was told "unavailable" while the cash was out and captured).
func TestDispenseAnswerAfterTheEvent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		var svc *Service
		svc, err := New(Options{DB: db, ATM: eventFirst{r.atm, &svc}, Ledger: r.led, Authorizer: fakeAuth{limit: 500000}, Now: r.clk.now})
		if err != nil {
			t.Fatal(err)
		}
		r.svc = svc
		got, err := r.approve(r.open(t), 30000)
		if err != nil {
			t.Fatalf("approve: %v", err)
		}
		if got.State != Captured || got.Captured != 30000 {
			t.Fatalf("approve answered %s, captured %d; want CAPTURED 30000", got.State, got.Captured)
		}
	})
}
