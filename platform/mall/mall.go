package mall

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// Bank is what the mall needs of ebank: its holds API. *ebank.Client (the
// HTTP API as the back-end client of scope ebank:holds) and *ebank.Holds
// (in the same process) are both one.
type Bank interface {
	Hold(ctx context.Context, r ebank.HoldRequest) (ledger.Transfer, error)
	Transfer(ctx context.Context, r ebank.HoldRequest) (ledger.Transfer, error)
	Capture(ctx context.Context, origin, key, hold string, amount int64, grant string) (ledger.Transfer, error)
	Release(ctx context.Context, origin, key, hold, grant string) (ledger.Transfer, error)
}

var (
	_ Bank = (*ebank.Client)(nil)
	_ Bank = (*ebank.Holds)(nil)
)

// Origin is the mall's origin at ebank (its back-end client id when it
// calls the holds API in-process; over HTTP the server takes the id from
// the credentials).
const Origin = "mall"

// DefaultHoldTimeout is how long a checkout's hold waits for the merchant
// to ship before ebank releases it.
const DefaultHoldTimeout = 7 * 24 * time.Hour

// Mall is the mall's business on its database and ebank.
type Mall struct {
	DB    *store.DB
	Bank  Bank
	Rules Rules
	// Ledger reads the customers' accounts and opens the merchants'
	// settlement accounts (ebank's ledger in the same database).
	Ledger *ledger.Ledger
	// HoldTimeout is a checkout hold's timeout (0: DefaultHoldTimeout).
	HoldTimeout time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

func (m *Mall) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Mall) holdTimeout() time.Duration {
	if m.HoldTimeout > 0 {
		return m.HoldTimeout
	}
	return DefaultHoldTimeout
}

// newID is a random id with a prefix: m- merchant, p- product, o- order,
// r- refund.
func newID(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
