package txauth

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// failingLog is the database's audit log, refusing records of one kind.
type failingLog struct {
	*audit.Log
	mu   sync.Mutex
	kind string
}

var errAuditDown = errors.New("audit log unavailable (test)")

func (f *failingLog) refuse(kind string) { f.mu.Lock(); f.kind = kind; f.mu.Unlock() }

func (f *failingLog) refused(kind string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return kind == f.kind
}

func (f *failingLog) Append(ctx context.Context, kind string, fields map[string]string) (int64, error) {
	if f.refused(kind) {
		return 0, errAuditDown
	}
	return f.Log.Append(ctx, kind, fields)
}

func (f *failingLog) AppendTx(ctx context.Context, tx *store.Tx, kind string, fields map[string]string) (int64, error) {
	if f.refused(kind) {
		return 0, errAuditDown
	}
	return f.Log.AppendTx(ctx, tx, kind, fields)
}

// TestDecisionAndAuditCommitTogether: an authorize, a grant and an execute
// are each stored with their audit record in one transaction, so when the
// record cannot be appended the decision is not stored either (no intent,
// no count, no grant, no consumed grant), and the same request succeeds
// once the log is back. On both engines.
func TestDecisionAndAuditCommitTogether(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fl := &failingLog{Log: audit.New(db, nil)}
		r := newRig(t, db, rigOpt{audit: fl})
		c := r.customer(t, "gridcard")
		in := c.intent(800*yuan, "k-"+randHex(4))
		hash := in.HashHex()

		fl.refuse("tx.authorize")
		_, err := r.c.Authorize(ctx, in)
		wantCode(t, err, "unavailable")
		if n := r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE hash = ?`, hash); n != 0 {
			t.Fatalf("authorize without its audit record stored the intent (%d rows)", n)
		}
		fl.refuse("")
		d, err := r.c.Authorize(ctx, in)
		if err != nil || d.Decision != txclient.Allow || d.Replayed {
			t.Fatalf("authorize after the log is back: %+v %v", d, err)
		}

		ch, err := r.c.Challenge(ctx, hash, txclient.ChallengeRequest{Factor: "gridcard"})
		if err != nil {
			t.Fatal(err)
		}
		fl.refuse("tx.grant")
		_, err = r.c.Proof(ctx, hash, txclient.ProofRequest{ChallengeID: ch.ID, Response: gridAnswer(t, c, ch)})
		wantCode(t, err, "unavailable")
		if u := r.usage(t, c.pid); u != 0 {
			t.Fatalf("a grant without its audit record counted %d", u)
		}
		if n := r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE hash = ? AND grant_hash IS NOT NULL`, hash); n != 0 {
			t.Fatalf("a grant without its audit record was stored (%d rows)", n)
		}
		if n := r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE hash = ? AND state = 'allowed'`, hash); n != 1 {
			t.Fatal("a grant without its audit record moved the intent on")
		}
		fl.refuse("")
		g, err := r.prove(t, c, in, "gridcard")
		if err != nil {
			t.Fatalf("proof after the log is back: %v", err)
		}
		if u := r.usage(t, c.pid); u != 800*yuan {
			t.Fatalf("usage %d after the grant, want %d", u, 800*yuan)
		}

		fl.refuse("tx.execute")
		_, err = r.c.Execute(ctx, g.Token, in)
		wantCode(t, err, "unavailable")
		if n := r.count(t, `SELECT COUNT(*) FROM tx_intents WHERE hash = ? AND grant_hash IS NOT NULL AND state = 'granted'`, hash); n != 1 {
			t.Fatal("an execute without its audit record consumed the grant")
		}
		fl.refuse("")
		if _, err := r.c.Execute(ctx, g.Token, in); err != nil {
			t.Fatalf("execute after the log is back: %v", err)
		}
		for _, kind := range []string{"tx.authorize", "tx.grant", "tx.execute"} {
			if n := r.count(t, `SELECT COUNT(*) FROM audit_log WHERE kind = ? AND record LIKE ?`, kind, "%"+hash+"%"); n != 1 {
				t.Errorf("%d %s records of the intent, want 1", n, kind)
			}
		}
		if _, err := fl.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
