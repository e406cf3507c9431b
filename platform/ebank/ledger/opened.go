package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// Opened is what never changes about an account once it is opened:
// whose it is and when it was opened.
type Opened struct {
	Owner     string
	CreatedMS int64
}

// openedCacheSize bounds the accounts whose Opened a Ledger remembers
// (about 100 bytes each); when full, it starts again from empty.
const openedCacheSize = 1 << 14

// openedCache remembers Opened by account id.
type openedCache struct {
	mu sync.RWMutex
	m  map[int64]Opened
}

func (c *openedCache) get(id int64) (Opened, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	o, ok := c.m[id]
	return o, ok
}

func (c *openedCache) put(id int64, o Opened) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= openedCacheSize {
		c.m = make(map[int64]Opened)
	}
	c.m[id] = o
}

// Opened returns whose the account number is and when it was opened. No
// statement changes an account's owner or opening time and no account is
// deleted, so the answer holds for every replica for good and is
// remembered: transaction authorization asks both of the payer of every
// intent (ebank.Owners), and the account is read once. An unknown
// account is not remembered (it may be opened later).
func (l *Ledger) Opened(ctx context.Context, number string) (Opened, error) {
	id, err := ParseNumber(number)
	if err != nil {
		return Opened{}, err
	}
	if o, ok := l.opened.get(id); ok {
		return o, nil
	}
	var o Opened
	err = l.db.QueryRow(ctx, `SELECT owner, created_ms FROM ebank_accounts WHERE id = ?`, id).Scan(&o.Owner, &o.CreatedMS)
	if errors.Is(err, sql.ErrNoRows) {
		return Opened{}, fmt.Errorf("%w: %s", ErrUnknownAccount, number)
	}
	if err != nil {
		return Opened{}, fmt.Errorf("reading account %s: %w", number, err)
	}
	l.opened.put(id, o)
	return o, nil
}
