package mall

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// Order states.
const (
	Placing    = "placing"    // stock taken, the hold being made
	Paid       = "paid"       // held at ebank, waiting for the merchant to ship
	Shipping   = "shipping"   // the capture under way
	Shipped    = "shipped"    // captured: the merchant has the money
	Cancelling = "cancelling" // the release under way
	Cancelled  = "cancelled"  // released, stock given back
	Failed     = "failed"     // ebank refused the hold; stock given back
)

// Order is a customer's order of one merchant's products.
type Order struct {
	ID, Customer, Key, Merchant, MerchantName string
	Payer, Payee                              string // account numbers
	Total, Captured, Refunded                 int64  // fen
	Status                                    string
	Intent                                    string // the authorized intent's hash
	Hold                                      string // ebank's hold id
	CreatedMS, UpdatedMS                      int64
	Lines                                     []OrderLine
	Refunds                                   []Refund
	Replayed                                  bool // Place saw this key before
}

// Refundable is what may still be refunded.
func (o Order) Refundable() int64 { return o.Captured - o.Refunded }

// OrderLine is a product of an order at the price paid.
type OrderLine struct {
	Product, Name string
	Price, Qty    int64
}

// Refund is money given back on an order.
type Refund struct {
	ID, Order, Key string
	Amount         int64
	State          string // pending, done
	Transfer       string
	CreatedMS      int64
}

// Checkout is a customer's request to pay for their cart: the cart's
// revision they saw, the account they pay from, and the form's idempotency
// key (also the intent's).
type Checkout struct {
	Customer, Key, Payer string
	Rev                  int64
}

// Quote is a checked checkout: what the intent must authorize.
type Quote struct {
	Cart     Cart
	Merchant Merchant
	Payer    ledger.Account
	Payee    string // the merchant's settlement account
}

// Accounts lists the customer's open current and savings accounts at
// ebank, current first (the checkout's default payer).
func (m *Mall) Accounts(ctx context.Context, customer string) ([]ledger.Account, error) {
	all, err := m.Ledger.Accounts(ctx, customer)
	if err != nil {
		return nil, err
	}
	var cur, other []ledger.Account
	for _, a := range all {
		switch {
		case a.Status != ledger.StatusOpen:
		case a.Kind == ledger.KindCurrent:
			cur = append(cur, a)
		case a.Kind == ledger.KindSavings:
			other = append(other, a)
		}
	}
	return append(cur, other...), nil
}

// Prepare checks a checkout: the cart not empty and still at Rev, every
// product in stock, the merchant admitted, the payer one of the customer's
// open accounts with the money available.
func (m *Mall) Prepare(ctx context.Context, co Checkout) (Quote, error) {
	var q Quote
	if co.Key == "" || len(co.Key) > 64 || co.Customer == "" {
		return q, fmt.Errorf("%w: the checkout has no key: start it again", ErrInvalid)
	}
	c, err := m.Cart(ctx, co.Customer)
	if err != nil {
		return q, err
	}
	q.Cart = c
	if len(c.Lines) == 0 {
		return q, ErrCartEmpty
	}
	if c.Rev != co.Rev {
		return q, fmt.Errorf("%w: revision %d, authorized %d", ErrCartChanged, c.Rev, co.Rev)
	}
	for _, l := range c.Lines {
		if l.Qty > l.Product.Stock {
			return q, fmt.Errorf("%w: %s has %d in stock", ErrOutOfStock, l.Product.ID, l.Product.Stock)
		}
	}
	if q.Merchant, err = m.Merchant(ctx, c.Merchant); err != nil {
		return q, err
	}
	if q.Merchant.Status != Approved || q.Merchant.Account == "" {
		return q, fmt.Errorf("%w: %s", ErrMerchantNotOpen, c.Merchant)
	}
	q.Payee = q.Merchant.Account
	a, err := m.Ledger.Account(ctx, co.Payer)
	if ledger.Code(err) == "unknown_account" || (err == nil && a.Owner != co.Customer) {
		return q, fmt.Errorf("%w: pay from one of your own accounts", ErrInvalid)
	}
	if err != nil {
		return q, err
	}
	q.Payer = a
	return q, nil
}

// Place makes the order of an authorized checkout and pays it with an
// ebank hold from the payer to the merchant, whose grant is intentHash
// (the caller executed the intent's grant just before). The cart must
// still be at the revision authorized (ErrCartChanged), each product in
// stock (ErrOutOfStock); a refusal of ebank (funds, account) marks the
// order failed, gives the stock back and returns the ledger's error. The
// same checkout key again returns its order with Replayed.
func (m *Mall) Place(ctx context.Context, co Checkout, intentHash string) (Order, error) {
	if o, ok, err := m.orderByKey(ctx, co.Customer, co.Key); err != nil || ok {
		if ok && o.Status == Placing {
			return m.hold(ctx, o)
		}
		o.Replayed = ok
		return o, err
	}
	q, err := m.Prepare(ctx, co)
	if err != nil {
		return Order{}, err
	}
	now := m.now().UnixMilli()
	o := Order{ID: newID("o-"), Customer: co.Customer, Key: co.Key, Merchant: q.Merchant.ID, MerchantName: q.Merchant.Name, Payer: q.Payer.Number, Payee: q.Payee,
		Total: q.Cart.Total, Status: Placing, Intent: intentHash, CreatedMS: now, UpdatedMS: now}
	err = m.DB.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE mall_carts SET rev = rev + 1 WHERE customer = ? AND rev = ?`, co.Customer, co.Rev)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: the cart is no longer at revision %d", ErrCartChanged, co.Rev)
		}
		for _, l := range q.Cart.Lines {
			res, err := tx.Exec(ctx, `UPDATE mall_products SET stock = stock - ? WHERE id = ? AND stock >= ?`, l.Qty, l.Product.ID, l.Qty)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fmt.Errorf("%w: %s", ErrOutOfStock, l.Product.ID)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO mall_order_lines (order_id, product, name, price, qty) VALUES (?, ?, ?, ?, ?)`,
				o.ID, l.Product.ID, l.Product.Name, l.Product.Price, l.Qty); err != nil {
				return err
			}
			o.Lines = append(o.Lines, OrderLine{Product: l.Product.ID, Name: l.Product.Name, Price: l.Product.Price, Qty: l.Qty})
		}
		_, err = tx.Exec(ctx, `INSERT INTO mall_orders (id, customer, pay_key, merchant, payer, payee, total, status, intent, hold, captured, refunded, created_ms, updated_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, 0, ?, ?)`, o.ID, o.Customer, o.Key, o.Merchant, o.Payer, o.Payee, o.Total, o.Status, o.Intent, now, now)
		return err
	})
	if store.IsUniqueViolation(err) { // the same checkout submitted twice at once
		o, _, err := m.orderByKey(ctx, co.Customer, co.Key)
		o.Replayed = true
		return o, err
	}
	if err != nil {
		return Order{}, err
	}
	return m.hold(ctx, o)
}

// hold pays a placing order.
func (m *Mall) hold(ctx context.Context, o Order) (Order, error) {
	t, err := m.Bank.Hold(ctx, ebank.HoldRequest{Origin: Origin, Key: "order:" + o.ID, Debit: o.Payer, Credit: o.Payee, Amount: o.Total,
		Grant: o.Intent, Code: "checkout", Memo: o.MerchantName + " " + o.ID, Timeout: m.holdTimeout()})
	if ledger.Code(err) != "" { // refused: nothing was held
		if ferr := m.finish(ctx, o.ID, Placing, Failed, true); ferr != nil {
			return o, ferr
		}
		o.Status = Failed
		return o, err
	}
	if err != nil {
		return o, err // the order stays placing: the same checkout again retries the hold with its key
	}
	err = m.DB.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE mall_orders SET status = ?, hold = ?, updated_ms = ? WHERE id = ? AND status = ?`,
			Paid, t.ID, m.now().UnixMilli(), o.ID, Placing); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM mall_cart_lines WHERE customer = ?`, o.Customer)
		return err
	})
	if err != nil {
		return o, err
	}
	return m.Order(ctx, o.ID)
}

// finish moves an order from one state to another; restock gives its
// products' stock back (only when this call moved it).
func (m *Mall) finish(ctx context.Context, id, from, to string, restock bool) error {
	return m.DB.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE mall_orders SET status = ?, updated_ms = ? WHERE id = ? AND status = ?`, to, m.now().UnixMilli(), id, from)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 || !restock {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE mall_products SET stock = stock + (SELECT qty FROM mall_order_lines l WHERE l.order_id = ? AND l.product = mall_products.id)
WHERE id IN (SELECT product FROM mall_order_lines WHERE order_id = ?)`, id, id)
		return err
	})
}

// claim moves the order from one state to a transient one; exactly one
// caller wins. It returns the order as it was.
func (m *Mall) claim(ctx context.Context, id, merchant, customer, from, to string) (Order, error) {
	o, err := m.Order(ctx, id)
	if err != nil {
		return o, err
	}
	if (merchant != "" && o.Merchant != merchant) || (customer != "" && o.Customer != customer) {
		return o, fmt.Errorf("%w: order %s", ErrNotFound, id)
	}
	res, err := m.DB.Exec(ctx, `UPDATE mall_orders SET status = ?, updated_ms = ? WHERE id = ? AND status = ?`, to, m.now().UnixMilli(), id, from)
	if err != nil {
		return o, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return o, fmt.Errorf("%w: order %s is %s", ErrOrderState, id, o.Status)
	}
	return o, nil
}

// Ship is the merchant shipping a paid order: the hold is captured whole.
// A hold ebank already released (expired) cancels the order instead.
func (m *Mall) Ship(ctx context.Context, merchant, id string) (Order, error) {
	o, err := m.claim(ctx, id, merchant, "", Paid, Shipping)
	if err != nil {
		return o, err
	}
	_, err = m.Bank.Capture(ctx, Origin, "ship:"+o.ID, o.Hold, o.Total, o.Intent)
	switch code := ledger.Code(err); {
	case err == nil:
		_, err = m.DB.Exec(ctx, `UPDATE mall_orders SET status = ?, captured = ?, updated_ms = ? WHERE id = ? AND status = ?`, Shipped, o.Total, m.now().UnixMilli(), o.ID, Shipping)
		if err != nil {
			return o, err
		}
		return m.Order(ctx, o.ID)
	case code == "hold_expired" || code == "hold_released":
		if ferr := m.finish(ctx, o.ID, Shipping, Cancelled, true); ferr != nil {
			return o, ferr
		}
		return o, fmt.Errorf("%w: the payment's hold expired before shipping; the order is cancelled: %w", ErrOrderState, err)
	default:
		if ferr := m.finish(ctx, o.ID, Shipping, Paid, false); ferr != nil {
			return o, ferr
		}
		return o, err
	}
}

// Cancel cancels a paid order that is not shipped (by its customer, or by
// its merchant when merchant is given): the hold is released and the stock
// given back.
func (m *Mall) Cancel(ctx context.Context, merchant, customer, id string) (Order, error) {
	o, err := m.claim(ctx, id, merchant, customer, Paid, Cancelling)
	if err != nil {
		return o, err
	}
	_, err = m.Bank.Release(ctx, Origin, "cancel:"+o.ID, o.Hold, o.Intent)
	if code := ledger.Code(err); err != nil && code != "hold_released" && code != "hold_expired" {
		if ferr := m.finish(ctx, o.ID, Cancelling, Paid, false); ferr != nil {
			return o, ferr
		}
		return o, err
	}
	if err := m.finish(ctx, o.ID, Cancelling, Cancelled, true); err != nil {
		return o, err
	}
	return m.Order(ctx, o.ID)
}

// RefundRequest is a merchant's refund of a shipped order.
type RefundRequest struct {
	Merchant, Order string
	Key             string // the refund form's key: the same refund submitted twice is one
	Amount          int64  // fen; at most what was captured and not yet refunded
}

// Refund pays money back from the merchant's settlement account to the
// account that paid the order: partial or whole, never more in all than
// was captured (ErrRefundTooLarge). A refusal of ebank (the merchant's
// account short of money) undoes the refund's count and changes nothing.
func (m *Mall) Refund(ctx context.Context, r RefundRequest) (Refund, error) {
	if r.Key == "" || len(r.Key) > 64 {
		return Refund{}, fmt.Errorf("%w: the refund has no key: open the order again", ErrInvalid)
	}
	if r.Amount <= 0 {
		return Refund{}, fmt.Errorf("%w: a refund must be above zero", ErrInvalid)
	}
	o, err := m.Order(ctx, r.Order)
	if err != nil {
		return Refund{}, err
	}
	if o.Merchant != r.Merchant {
		return Refund{}, fmt.Errorf("%w: order %s", ErrNotFound, r.Order)
	}
	for _, f := range o.Refunds {
		if f.Key == r.Key {
			if f.State == "pending" {
				return m.payRefund(ctx, o, f)
			}
			return f, nil
		}
	}
	if o.Status != Shipped {
		return Refund{}, fmt.Errorf("%w: order %s is %s; refund a shipped order, cancel a paid one", ErrOrderState, o.ID, o.Status)
	}
	f := Refund{ID: newID("r-"), Order: o.ID, Key: r.Key, Amount: r.Amount, State: "pending", CreatedMS: m.now().UnixMilli()}
	err = m.DB.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE mall_orders SET refunded = refunded + ?, updated_ms = ? WHERE id = ? AND status = ? AND refunded + ? <= captured`,
			r.Amount, f.CreatedMS, o.ID, Shipped, r.Amount)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: %d fen asked, %d fen refundable", ErrRefundTooLarge, r.Amount, o.Refundable())
		}
		_, err = tx.Exec(ctx, `INSERT INTO mall_refunds (id, order_id, refund_key, amount, state, transfer, created_ms) VALUES (?, ?, ?, ?, 'pending', '', ?)`,
			f.ID, o.ID, f.Key, f.Amount, f.CreatedMS)
		return err
	})
	if store.IsUniqueViolation(err) {
		return Refund{}, fmt.Errorf("%w: this refund is already being made", ErrOrderState)
	}
	if err != nil {
		return Refund{}, err
	}
	return m.payRefund(ctx, o, f)
}

func (m *Mall) payRefund(ctx context.Context, o Order, f Refund) (Refund, error) {
	t, err := m.Bank.Transfer(ctx, ebank.HoldRequest{Origin: Origin, Key: "refund:" + f.ID, Debit: o.Payee, Credit: o.Payer, Amount: f.Amount,
		Grant: o.Intent, Code: "refund", Memo: o.MerchantName + " " + o.ID})
	if ledger.Code(err) != "" { // refused: undo the count
		uerr := m.DB.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM mall_refunds WHERE id = ? AND state = 'pending'`, f.ID); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE mall_orders SET refunded = refunded - ? WHERE id = ?`, f.Amount, o.ID)
			return err
		})
		if uerr != nil {
			return f, uerr
		}
		return f, err
	}
	if err != nil {
		return f, err // pending: the same refund again retries with its key
	}
	if _, err := m.DB.Exec(ctx, `UPDATE mall_refunds SET state = 'done', transfer = ? WHERE id = ?`, t.ID, f.ID); err != nil {
		return f, err
	}
	f.State, f.Transfer = "done", t.ID
	return f, nil
}

const orderCols = `o.id, o.customer, o.pay_key, o.merchant, m.name, o.payer, o.payee, o.total, o.captured, o.refunded, o.status, o.intent, o.hold, o.created_ms, o.updated_ms`

func scanOrder(s interface{ Scan(...any) error }) (Order, error) {
	var o Order
	err := s.Scan(&o.ID, &o.Customer, &o.Key, &o.Merchant, &o.MerchantName, &o.Payer, &o.Payee, &o.Total, &o.Captured, &o.Refunded,
		&o.Status, &o.Intent, &o.Hold, &o.CreatedMS, &o.UpdatedMS)
	return o, err
}

func (m *Mall) orderByKey(ctx context.Context, customer, key string) (Order, bool, error) {
	var id string
	err := m.DB.QueryRow(ctx, `SELECT id FROM mall_orders WHERE customer = ? AND pay_key = ?`, customer, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, false, nil
	}
	if err != nil {
		return Order{}, false, err
	}
	o, err := m.Order(ctx, id)
	return o, err == nil, err
}

// Order returns an order with its lines and refunds.
func (m *Mall) Order(ctx context.Context, id string) (Order, error) {
	o, err := scanOrder(m.DB.QueryRow(ctx, `SELECT `+orderCols+` FROM mall_orders o JOIN mall_merchants m ON m.id = o.merchant WHERE o.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("%w: order %s", ErrNotFound, id)
	}
	if err != nil {
		return o, err
	}
	rows, err := m.DB.Query(ctx, `SELECT product, name, price, qty FROM mall_order_lines WHERE order_id = ? ORDER BY name, product`, id)
	if err != nil {
		return o, err
	}
	for rows.Next() {
		var l OrderLine
		if err := rows.Scan(&l.Product, &l.Name, &l.Price, &l.Qty); err != nil {
			rows.Close()
			return o, err
		}
		o.Lines = append(o.Lines, l)
	}
	rows.Close()
	rows, err = m.DB.Query(ctx, `SELECT id, order_id, refund_key, amount, state, transfer, created_ms FROM mall_refunds WHERE order_id = ? ORDER BY created_ms, id`, id)
	if err != nil {
		return o, err
	}
	defer rows.Close()
	for rows.Next() {
		var f Refund
		if err := rows.Scan(&f.ID, &f.Order, &f.Key, &f.Amount, &f.State, &f.Transfer, &f.CreatedMS); err != nil {
			return o, err
		}
		o.Refunds = append(o.Refunds, f)
	}
	return o, rows.Err()
}

// Orders lists a customer's orders (customer given) or a merchant's
// (merchant given), newest first, at most 100, without lines.
func (m *Mall) Orders(ctx context.Context, customer, merchant string) ([]Order, error) {
	if (customer == "") == (merchant == "") {
		return nil, fmt.Errorf("%w: a customer's or a merchant's orders", ErrInvalid)
	}
	rows, err := m.DB.Query(ctx, `SELECT `+orderCols+` FROM mall_orders o JOIN mall_merchants m ON m.id = o.merchant
WHERE (o.customer = ? AND ? <> '') OR (o.merchant = ? AND ? <> '') ORDER BY o.created_ms DESC, o.id LIMIT 100`, customer, customer, merchant, merchant)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// ResumePlacing retries the hold of the orders left placing for longer
// than age: a process stopped, or the network failed, between the order
// and its hold. The hold's key is the order's, so ebank makes it once or
// replays the one it made; a refusal fails the order and gives its stock
// back. It returns how many orders it settled. Every replica may run it.
func (m *Mall) ResumePlacing(ctx context.Context, age time.Duration) (int, error) {
	rows, err := m.DB.Query(ctx, `SELECT id FROM mall_orders WHERE status = ? AND updated_ms <= ? ORDER BY updated_ms LIMIT 100`,
		Placing, m.now().Add(-age).UnixMilli())
	if err != nil {
		return 0, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		o, err := m.Order(ctx, id)
		if err != nil {
			return n, err
		}
		if _, err := m.hold(ctx, o); err != nil && ledger.Code(err) == "" {
			return n, err
		}
		n++
	}
	return n, nil
}

// ResumeEvery runs ResumePlacing (orders placing for a minute) every
// interval until ctx ends; report hears each run.
func (m *Mall) ResumeEvery(ctx context.Context, interval time.Duration, report func(n int, err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := m.ResumePlacing(ctx, time.Minute)
			if report != nil {
				report(n, err)
			}
		}
	}
}
