// Package mall is the bank's e-commerce platform: merchants apply and are
// admitted by rules (documents given, category allowed, risk flags) and
// reviewed by the bank's staff (egate admin mall merchant …); an admitted
// merchant gets a settlement account at ebank. Merchants list products with
// stock; customers fill a cart and check out, paying from their ebank
// account through an intent authorized by the passport's transaction
// authorization (authsvc/txauth, through its client txclient) at the level
// the amount needs, the proof asked on the mall's own page.
//
// The money moves only through ebank's holds API (platform/ebank, scope
// ebank:holds, idempotency keys): a checkout is a hold from the customer's
// account to the merchant's, captured when the merchant ships and released
// when the order is cancelled; a refund, whole or partial, is a transfer
// back to the account that paid, never more than was captured and not yet
// refunded (a guarded counter on the order). The mall's own state (tables
// mall_*, migration 0550) is in the platforms' database; the customers'
// accounts are read from ebank's ledger in the same database.
//
// Concurrency: every change that guards money or stock is one guarded
// UPDATE (stock never below zero, a cart revision consumed once, an order's
// state moved by exactly one caller, refunds never above what was paid),
// so replicas of the mall never let more through than one process would.
// The pages are stateless; the session is the platform site's cookie.
package mall
