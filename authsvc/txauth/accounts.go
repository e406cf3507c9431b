package txauth

import (
	"context"
	"sync"
)

// Accounts answers whether a payer account belongs to a customer. The core
// banking system (the ebank issue) implements it; until then MapAccounts,
// from the config or a test, does.
type Accounts interface {
	Owns(ctx context.Context, customer, account string) (bool, error)
}

// AccountAger is what an Accounts may also answer: the days since an
// account was opened (the risk feature account.age_days; -1 unknown).
type AccountAger interface {
	AccountAgeDays(ctx context.Context, account string) (int64, error)
}

// MapAccounts is an in-memory Accounts: account → customer.
type MapAccounts struct {
	mu sync.RWMutex
	m  map[string]string
}

// NewMapAccounts returns the accounts of the config.
func NewMapAccounts(list []AccountConfig) *MapAccounts {
	a := &MapAccounts{m: map[string]string{}}
	for _, c := range list {
		a.m[c.Account] = c.Customer
	}
	return a
}

// Add gives account to customer.
func (a *MapAccounts) Add(customer, account string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.m[account] = customer
}

// Owns implements Accounts.
func (a *MapAccounts) Owns(_ context.Context, customer, account string) (bool, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	c, ok := a.m[account]
	return ok && c == customer, nil
}
