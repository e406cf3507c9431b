// Package ebank is the online bank's business: customers' accounts over the
// double-entry ledger (package ledger) and the money-movement API that the
// bank's other platforms call.
//
// Accounts: EnsureBankAccounts opens the bank's own accounts (equity,
// clearing, suspense, fees, atm-cash); OpenCustomerAccounts gives a
// customer a current and a savings account with opening balances posted
// from equity, so the books balance from the first transfer on.
//
// Holds is the service for the mall (checkout, refunds), the messenger
// (friend transfer, AA, receive by QR) and the ATM withdrawal: Hold,
// Capture (any amount up to the held one; the rest is released), Release,
// Get, and Transfer for movements posted at once. Every call carries the
// caller's idempotency key; every new movement carries the grant that
// authorized it, which the ebank service checks through a GrantChecker
// before the ledger moves anything (the ledger itself records grants and
// never checks them). Capture and release complete a hold and must name
// the hold's grant. API serves Holds over HTTP to the bank's registered
// back-end clients (authsvc/backend, scope ebank:holds); the client's id is
// the origin of its movements, so a client has its own keys and sees only
// its own holds.
package ebank
