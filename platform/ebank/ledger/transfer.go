package ledger

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
)

// Transfer kinds (the kind column).
const (
	KindPosted  = "posted"  // a single-phase transfer, posted at once
	KindPending = "pending" // a hold: reserves the amount until posted, voided or timed out
	KindPost    = "post"    // captures a hold (all of it or less; the rest is released)
	KindVoid    = "void"    // releases a hold
)

// States of a hold, as Get reports them on the pending transfer.
const (
	HoldPending  = "pending"  // reserved, may be captured or released
	HoldExpired  = "expired"  // past its timeout: can no longer be captured; the sweep releases it
	HoldCaptured = "captured" // a post transfer captured it
	HoldReleased = "released" // a void transfer released it (by the caller or by expiry)
)

// MaxAmount is the largest amount of one transfer: 100 billion yuan in fen.
const MaxAmount = money.MaxYuan * 100

// OriginLedger is the origin of the voids the expiry sweep makes.
const OriginLedger = "ledger"

// Transfer is one immutable row of the ledger.
type Transfer struct {
	ID         string `json:"id"`
	Origin     string `json:"origin"`
	Key        string `json:"key"`
	Kind       string `json:"kind"`
	Debit      string `json:"debit_account"`
	Credit     string `json:"credit_account"`
	Amount     int64  `json:"amount"`
	PendingID  string `json:"pending_id,omitempty"`
	ReversesID string `json:"reverses_id,omitempty"`
	TimeoutMS  int64  `json:"timeout_ms,omitempty"`
	Grant      string `json:"grant,omitempty"`
	Code       string `json:"code"`
	Memo       string `json:"memo,omitempty"`
	CreatedMS  int64  `json:"created_ms"`

	// Set by Get on a hold: its state and, once resolved, the post or
	// void transfer and what it captured.
	State      string `json:"state,omitempty"`
	ResolvedBy string `json:"resolved_by,omitempty"`
	Captured   int64  `json:"captured,omitempty"`

	// Replayed says that the request repeated an earlier one with the
	// same idempotency key and this is that earlier transfer.
	Replayed bool `json:"replayed,omitempty"`
}

// Request asks for a transfer or a hold: Amount fen from Debit to Credit
// (account numbers).
type Request struct {
	Origin string // who asks: ebank, mall, messenger, atm, bank
	Key    string // the caller's idempotency key, unique per origin
	Debit  string
	Credit string
	Amount int64
	Grant  string // the authorization grant it executes, recorded as given
	Code   string // what for: transfer, checkout, friend-transfer, atm-withdrawal, …
	Memo   string
	// Timeout of a hold: after it the hold can no longer be captured and
	// the expiry sweep releases it. Hold only.
	Timeout time.Duration
}

// Resolve asks to capture (post) or release (void) a hold.
type Resolve struct {
	Origin  string
	Key     string
	Pending string // the hold's transfer id
	Amount  int64  // capture only: ≤ the held amount; the rest is released
	Grant   string
	Code    string
	Memo    string
}

// Ledger is the double-entry ledger over one database. It is safe for
// concurrent use, and several replicas may share one PostgreSQL database.
type Ledger struct {
	db     *store.DB
	now    func() time.Time
	opened openedCache // Opened
}

// New returns the ledger over db; now is the clock (nil: time.Now).
func New(db *store.DB, now func() time.Time) *Ledger {
	if now == nil {
		now = time.Now
	}
	return &Ledger{db: db, now: now}
}

// row is a transfer as stored, with ids as numbers.
type row struct {
	id, debit, credit, amount, pending, reverses, timeoutMS, createdMS int64
	origin, key, kind, grant, code, memo                               string
	held                                                               int64 // post/void: the hold's amount (not stored)
}

func (r row) transfer() Transfer {
	t := Transfer{
		ID: strconv.FormatInt(r.id, 10), Origin: r.origin, Key: r.key, Kind: r.kind,
		Debit: strconv.FormatInt(r.debit, 10), Credit: strconv.FormatInt(r.credit, 10), Amount: r.amount,
		TimeoutMS: r.timeoutMS, Grant: r.grant, Code: r.code, Memo: r.memo, CreatedMS: r.createdMS,
	}
	if r.pending != 0 {
		t.PendingID = strconv.FormatInt(r.pending, 10)
	}
	if r.reverses != 0 {
		t.ReversesID = strconv.FormatInt(r.reverses, 10)
	}
	return t
}

// Transfer moves Amount from Debit to Credit at once (a posted transfer).
func (l *Ledger) Transfer(ctx context.Context, r Request) (Transfer, error) {
	if r.Timeout != 0 {
		return Transfer{}, fmt.Errorf("%w: a posted transfer has no timeout (use Hold)", ErrInvalidRequest)
	}
	return l.create(ctx, KindPosted, r)
}

// Hold reserves Amount on Debit for Credit until it is captured (Post),
// released (Void) or its Timeout passes.
func (l *Ledger) Hold(ctx context.Context, r Request) (Transfer, error) {
	if r.Timeout < time.Second || r.Timeout > 30*24*time.Hour {
		return Transfer{}, fmt.Errorf("%w: a hold needs a timeout from 1 second to 30 days", ErrInvalidRequest)
	}
	return l.create(ctx, KindPending, r)
}

func (l *Ledger) create(ctx context.Context, kind string, r Request) (Transfer, error) {
	if err := checkKey(r.Origin, r.Key); err != nil {
		return Transfer{}, err
	}
	if err := checkAmount(r.Amount); err != nil {
		return Transfer{}, err
	}
	if err := checkText(r.Code, r.Memo); err != nil {
		return Transfer{}, err
	}
	debit, err := ParseNumber(r.Debit)
	if err != nil {
		return Transfer{}, err
	}
	credit, err := ParseNumber(r.Credit)
	if err != nil {
		return Transfer{}, err
	}
	if debit == credit {
		return Transfer{}, fmt.Errorf("%w: %s", ErrSameAccount, r.Debit)
	}
	code := r.Code
	if code == "" {
		code = "transfer"
	}
	now := l.now()
	w := row{
		origin: r.Origin, key: r.Key, kind: kind, debit: debit, credit: credit, amount: r.Amount,
		grant: r.Grant, code: code, memo: r.Memo, createdMS: now.UnixMilli(),
	}
	if kind == KindPending {
		w.timeoutMS = now.Add(r.Timeout).UnixMilli()
	}
	return l.execute(ctx, w, nil)
}

// Post captures amount of the hold r.Pending: amount ≤ the held amount; the
// rest is released. A hold captured or released before, or past its
// timeout, is refused.
func (l *Ledger) Post(ctx context.Context, r Resolve) (Transfer, error) {
	if err := checkAmount(r.Amount); err != nil {
		return Transfer{}, err
	}
	return l.resolve(ctx, KindPost, r)
}

// Void releases the hold r.Pending. A hold captured or released before is
// refused; one past its timeout may still be released.
func (l *Ledger) Void(ctx context.Context, r Resolve) (Transfer, error) {
	if r.Amount != 0 {
		return Transfer{}, fmt.Errorf("%w: a release takes no amount: it releases the whole hold", ErrInvalidRequest)
	}
	return l.resolve(ctx, KindVoid, r)
}

func (l *Ledger) resolve(ctx context.Context, kind string, r Resolve) (Transfer, error) {
	if err := checkKey(r.Origin, r.Key); err != nil {
		return Transfer{}, err
	}
	if err := checkText(r.Code, r.Memo); err != nil {
		return Transfer{}, err
	}
	pid, err := strconv.ParseInt(r.Pending, 10, 64)
	if err != nil || pid <= 0 {
		return Transfer{}, fmt.Errorf("%w: %q is not a transfer id", ErrUnknownTransfer, r.Pending)
	}
	code := r.Code
	if code == "" {
		code = map[string]string{KindPost: "capture", KindVoid: "release"}[kind]
	}
	w := row{
		origin: r.Origin, key: r.Key, kind: kind, pending: pid, amount: r.Amount,
		grant: r.Grant, code: code, memo: r.Memo, createdMS: l.now().UnixMilli(),
	}
	return l.execute(ctx, w, func(tx *store.Tx, w *row) error {
		p, err := readRow(ctx, tx, pid)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrUnknownTransfer, r.Pending)
		}
		if err != nil {
			return err
		}
		if p.kind != KindPending {
			return fmt.Errorf("%w: transfer %s is a %s transfer", ErrNotPending, r.Pending, p.kind)
		}
		if err := notResolved(ctx, tx, p); err != nil {
			return err
		}
		if kind == KindPost {
			if w.createdMS >= p.timeoutMS {
				return fmt.Errorf("%w: hold %s expired at %s; make a new hold", ErrExpired, r.Pending, time.UnixMilli(p.timeoutMS).UTC().Format(time.RFC3339))
			}
			if w.amount > p.amount {
				return fmt.Errorf("%w: hold %s is %s yuan, the capture %s yuan", ErrOverHold, r.Pending, money.Yuan(p.amount), money.Yuan(w.amount))
			}
		} else {
			w.amount = p.amount
		}
		w.debit, w.credit, w.held = p.debit, p.credit, p.amount
		return nil
	})
}

// notResolved refuses a hold that a post or void has resolved.
func notResolved(ctx context.Context, tx *store.Tx, p row) error {
	var kind string
	var amount int64
	err := tx.QueryRow(ctx, `SELECT kind, amount FROM ebank_transfers WHERE pending_id = ?`, p.id).Scan(&kind, &amount)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("reading hold %d: %w", p.id, err)
	case kind == KindPost:
		return fmt.Errorf("%w: hold %d was captured (%s yuan); nothing was changed", ErrCaptured, p.id, money.Yuan(amount))
	default:
		return fmt.Errorf("%w: hold %d was released; nothing was changed", ErrReleased, p.id)
	}
}

// Reverse moves a posted transfer (or a capture) back: a new posted
// transfer the other way, of the same amount, linked by reverses_id. A
// transfer is reversed at most once.
func (l *Ledger) Reverse(ctx context.Context, origin, key, id, grant, memo string) (Transfer, error) {
	if err := checkKey(origin, key); err != nil {
		return Transfer{}, err
	}
	if err := checkText("", memo); err != nil {
		return Transfer{}, err
	}
	oid, err := strconv.ParseInt(id, 10, 64)
	if err != nil || oid <= 0 {
		return Transfer{}, fmt.Errorf("%w: %q is not a transfer id", ErrUnknownTransfer, id)
	}
	w := row{origin: origin, key: key, kind: KindPosted, reverses: oid, grant: grant, code: "reversal", memo: memo, createdMS: l.now().UnixMilli()}
	return l.execute(ctx, w, func(tx *store.Tx, w *row) error {
		o, err := readRow(ctx, tx, oid)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrUnknownTransfer, id)
		}
		if err != nil {
			return err
		}
		if o.kind != KindPosted && o.kind != KindPost {
			return fmt.Errorf("%w: transfer %s is a %s transfer", ErrNotReversible, id, o.kind)
		}
		var by int64
		err = tx.QueryRow(ctx, `SELECT id FROM ebank_transfers WHERE reverses_id = ?`, oid).Scan(&by)
		if err == nil {
			return fmt.Errorf("%w: transfer %s was reversed by %d; nothing was changed", ErrReversed, id, by)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		w.debit, w.credit, w.amount = o.credit, o.debit, o.amount
		return nil
	})
}

// execute writes w in one database transaction: pre (reads and checks
// that fill in w), the row, and the balance columns of both accounts. A
// request repeating an earlier one's (origin, key) returns that transfer,
// or ErrKeyReused when it asks for something else.
//
// The key is looked up only when the transaction fails: a repeated key
// cannot commit (the unique index on origin and client_key refuses the
// row), so a new request, the common case, reads nothing more, and a
// repeated one is answered as before, whatever its transaction ran into
// first (a hold already captured, an account closed since, funds spent).
func (l *Ledger) execute(ctx context.Context, w row, pre func(tx *store.Tx, w *row) error) (Transfer, error) {
	for range 4 {
		id, err := newID()
		if err != nil {
			return Transfer{}, err
		}
		w.id = id
		err = l.db.InTx(ctx, func(tx *store.Tx) error {
			if pre != nil {
				if err := pre(tx, &w); err != nil {
					return err
				}
			}
			return l.apply(ctx, tx, w)
		})
		if err == nil {
			return w.transfer(), nil
		}
		// The same key used before, or by another request that committed
		// first (on another replica): answer as the first would have.
		if t, ok, rerr := l.replay(ctx, w); ok || rerr != nil {
			return t, rerr
		}
		if !store.IsUniqueViolation(err) {
			return Transfer{}, err
		}
		// A resolution or reversal of the same transfer committed first, or
		// the random id was taken: try again (pre then sees what the other
		// one did).
	}
	return Transfer{}, errors.New("ledger: the transfer kept conflicting with concurrent ones; try again")
}

// Lookup returns the transfer that origin made with key, if any.
func (l *Ledger) Lookup(ctx context.Context, origin, key string) (Transfer, bool, error) {
	w, err := scanRow(l.db.QueryRow(ctx, `SELECT `+rowCols+` FROM ebank_transfers WHERE origin = ? AND client_key = ?`, origin, key))
	if errors.Is(err, sql.ErrNoRows) {
		return Transfer{}, false, nil
	}
	if err != nil {
		return Transfer{}, false, fmt.Errorf("reading transfer %s/%s: %w", origin, key, err)
	}
	return w.transfer(), true, nil
}

// replay answers a request whose (origin, key) was used before.
func (l *Ledger) replay(ctx context.Context, w row) (Transfer, bool, error) {
	got, err := scanRow(l.db.QueryRow(ctx, `SELECT `+rowCols+` FROM ebank_transfers WHERE origin = ? AND client_key = ?`, w.origin, w.key))
	if errors.Is(err, sql.ErrNoRows) {
		return Transfer{}, false, nil
	}
	if err != nil {
		return Transfer{}, false, fmt.Errorf("reading transfer %s/%s: %w", w.origin, w.key, err)
	}
	same := got.kind == w.kind && got.pending == w.pending && got.reverses == w.reverses && got.code == w.code
	switch w.kind {
	case KindPosted, KindPending:
		if w.reverses == 0 {
			same = same && got.debit == w.debit && got.credit == w.credit && got.amount == w.amount
		}
	case KindPost:
		same = same && got.amount == w.amount
	}
	if !same {
		return Transfer{}, true, fmt.Errorf("%w (key %q of %s, transfer %d)", ErrKeyReused, w.key, w.origin, got.id)
	}
	t := got.transfer()
	t.Replayed = true
	return t, true, nil
}

// apply inserts the row and moves the balance columns, the accounts in id
// order so that two transfers between the same accounts never deadlock.
func (l *Ledger) apply(ctx context.Context, tx *store.Tx, w row) error {
	var pending, reverses any
	if w.pending != 0 {
		pending = w.pending
	}
	if w.reverses != 0 {
		reverses = w.reverses
	}
	if w.kind == KindPosted || w.kind == KindPending {
		if err := checkAccounts(ctx, tx, w); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ebank_transfers (id, origin, client_key, kind, debit_account, credit_account, amount,
		pending_id, reverses_id, timeout_ms, grant_id, code, memo, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		w.id, w.origin, w.key, w.kind, w.debit, w.credit, w.amount, pending, reverses, w.timeoutMS, w.grant, w.code, w.memo, w.createdMS); err != nil {
		return fmt.Errorf("recording transfer: %w", err)
	}
	sides := []struct {
		id    int64
		debit bool
	}{{w.debit, true}, {w.credit, false}}
	if w.credit < w.debit {
		sides[0], sides[1] = sides[1], sides[0]
	}
	for _, s := range sides {
		if err := l.move(ctx, tx, w, s.id, s.debit); err != nil {
			return err
		}
	}
	return nil
}

// move updates one account's balance columns for w with one guarded
// statement: the row's own flags are checked against its current values
// (on PostgreSQL after any concurrent writer of the row has committed), so
// no interleaving of transfers on any number of replicas overdraws it.
func (l *Ledger) move(ctx context.Context, tx *store.Tx, w row, acct int64, debit bool) error {
	side := "credits"
	flag, other := CreditsMustNotExceedDebits, "debits"
	if debit {
		side, flag, other = "debits", DebitsMustNotExceedCredits, "credits"
	}
	var res sql.Result
	var err error
	switch w.kind {
	case KindPosted, KindPending:
		col := side + "_posted"
		if w.kind == KindPending {
			col = side + "_pending"
		}
		res, err = tx.Exec(ctx, `UPDATE ebank_accounts SET `+col+` = `+col+` + ? WHERE id = ? AND status = 'open'
			AND ((flags & `+strconv.Itoa(flag)+`) = 0 OR `+side+`_posted + `+side+`_pending + ? <= `+other+`_posted)`,
			w.amount, acct, w.amount)
	case KindPost, KindVoid:
		posted := w.amount // a capture posts what it captures; the rest of the hold is released
		if w.kind == KindVoid {
			posted = 0
		}
		res, err = tx.Exec(ctx, `UPDATE ebank_accounts SET `+side+`_pending = `+side+`_pending - ?, `+side+`_posted = `+side+`_posted + ?
			WHERE id = ? AND `+side+`_pending >= ?`, w.held, posted, acct, w.held)
	}
	if err != nil {
		return fmt.Errorf("updating account %d: %w", acct, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	a, err := scanAccount(tx.QueryRow(ctx, `SELECT `+accountCols+` FROM ebank_accounts WHERE id = ?`, acct))
	if err != nil {
		return fmt.Errorf("reading account %d: %w", acct, err)
	}
	switch {
	case w.kind == KindPost || w.kind == KindVoid:
		return fmt.Errorf("ledger: account %s holds less pending than hold %d: run egate admin ledger check", a.Number, w.pending)
	case a.Status != StatusOpen:
		return fmt.Errorf("%w: account %s is %s", ErrAccountNotOpen, a.Number, a.Status)
	default:
		return fmt.Errorf("%w: account %s has %s yuan available, the transfer needs %s yuan", ErrInsufficientFunds, a.Number, money.Yuan(a.Available()), money.Yuan(w.amount))
	}
}

// checkAccounts refuses a transfer between accounts that do not exist, are
// not open or keep different currencies, before anything is written: one
// statement when they are fine, and each account read on its own to say
// which is not.
func checkAccounts(ctx context.Context, tx *store.Tx, w row) error {
	var ok int
	err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM ebank_accounts d, ebank_accounts c
		WHERE d.id = ? AND c.id = ? AND d.status = 'open' AND c.status = 'open' AND d.currency = c.currency`, w.debit, w.credit).Scan(&ok)
	if err != nil {
		return fmt.Errorf("reading accounts %d and %d: %w", w.debit, w.credit, err)
	}
	if ok == 1 {
		return nil
	}
	var cur [2]string
	for i, id := range []int64{w.debit, w.credit} {
		var status string
		err := tx.QueryRow(ctx, `SELECT status, currency FROM ebank_accounts WHERE id = ?`, id).Scan(&status, &cur[i])
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %d", ErrUnknownAccount, id)
		}
		if err != nil {
			return fmt.Errorf("reading account %d: %w", id, err)
		}
		if status != StatusOpen {
			return fmt.Errorf("%w: account %d is %s", ErrAccountNotOpen, id, status)
		}
	}
	if cur[0] != cur[1] {
		return fmt.Errorf("%w: %s and %s", ErrCurrency, cur[0], cur[1])
	}
	return fmt.Errorf("ledger: accounts %d and %d changed while they were checked; try again", w.debit, w.credit)
}

// Get returns a transfer; on a hold, also its state.
func (l *Ledger) Get(ctx context.Context, id string) (Transfer, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return Transfer{}, fmt.Errorf("%w: %q is not a transfer id", ErrUnknownTransfer, id)
	}
	w, err := scanRow(l.db.QueryRow(ctx, `SELECT `+rowCols+` FROM ebank_transfers WHERE id = ?`, n))
	if errors.Is(err, sql.ErrNoRows) {
		return Transfer{}, fmt.Errorf("%w: %s", ErrUnknownTransfer, id)
	}
	if err != nil {
		return Transfer{}, fmt.Errorf("reading transfer %s: %w", id, err)
	}
	t := w.transfer()
	if w.kind != KindPending {
		return t, nil
	}
	var rid, amount int64
	var kind string
	err = l.db.QueryRow(ctx, `SELECT id, kind, amount FROM ebank_transfers WHERE pending_id = ?`, n).Scan(&rid, &kind, &amount)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		t.State = HoldPending
		if l.now().UnixMilli() >= w.timeoutMS {
			t.State = HoldExpired
		}
	case err != nil:
		return Transfer{}, fmt.Errorf("reading hold %s: %w", id, err)
	case kind == KindPost:
		t.State, t.ResolvedBy, t.Captured = HoldCaptured, strconv.FormatInt(rid, 10), amount
	default:
		t.State, t.ResolvedBy = HoldReleased, strconv.FormatInt(rid, 10)
	}
	return t, nil
}

// ExpireHolds releases up to limit holds past their timeout, oldest first,
// and returns how many it released. Each release is a void with origin
// OriginLedger and key "expire:<hold id>", so the sweep is idempotent and
// replicas running it at once release each hold once.
func (l *Ledger) ExpireHolds(ctx context.Context, limit int) (int, error) {
	rows, err := l.db.Query(ctx, `SELECT p.id FROM ebank_transfers p WHERE p.kind = 'pending' AND p.timeout_ms <= ?
		AND NOT EXISTS (SELECT 1 FROM ebank_transfers r WHERE r.pending_id = p.id) ORDER BY p.timeout_ms LIMIT ?`, l.now().UnixMilli(), limit)
	if err != nil {
		return 0, fmt.Errorf("finding expired holds: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
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
		s := strconv.FormatInt(id, 10)
		t, err := l.Void(ctx, Resolve{Origin: OriginLedger, Key: "expire:" + s, Pending: s, Code: "expiry"})
		switch {
		case errors.Is(err, ErrCaptured), errors.Is(err, ErrReleased):
			// resolved meanwhile by its owner
		case err != nil:
			return n, err
		case !t.Replayed:
			n++
		}
	}
	return n, nil
}

const rowCols = `id, origin, client_key, kind, debit_account, credit_account, amount, COALESCE(pending_id, 0), COALESCE(reverses_id, 0), timeout_ms, grant_id, code, memo, created_ms`

func readRow(ctx context.Context, tx *store.Tx, id int64) (row, error) {
	return scanRow(tx.QueryRow(ctx, `SELECT `+rowCols+` FROM ebank_transfers WHERE id = ?`, id))
}

func scanRow(r interface{ Scan(...any) error }) (row, error) {
	var w row
	err := r.Scan(&w.id, &w.origin, &w.key, &w.kind, &w.debit, &w.credit, &w.amount, &w.pending, &w.reverses,
		&w.timeoutMS, &w.grant, &w.code, &w.memo, &w.createdMS)
	return w, err
}

func checkAmount(a int64) error {
	if a <= 0 || a > MaxAmount {
		return fmt.Errorf("%w (got %d fen)", ErrAmount, a)
	}
	return nil
}

// checkText bounds what a transfer says about itself.
func checkText(code, memo string) error {
	if len(code) > 32 {
		return fmt.Errorf("%w: the code must be at most 32 characters", ErrInvalidRequest)
	}
	if len(memo) > 256 {
		return fmt.Errorf("%w: the memo must be at most 256 bytes", ErrInvalidRequest)
	}
	return nil
}

// checkKey refuses an empty or unreasonable origin or idempotency key.
func checkKey(origin, key string) error {
	if origin == "" || len(origin) > 64 {
		return fmt.Errorf("%w: the origin (the calling system) must be 1–64 characters", ErrInvalidRequest)
	}
	if key == "" || len(key) > 128 {
		return fmt.Errorf("%w: the idempotency key must be 1–128 characters", ErrInvalidRequest)
	}
	for _, c := range key {
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: the idempotency key must be printable ASCII without spaces", ErrInvalidRequest)
		}
	}
	return nil
}

// newID makes a random positive 63-bit transfer id.
func newID() (int64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("making a transfer id: %w", err)
	}
	id := int64(binary.BigEndian.Uint64(b[:]) >> 1)
	if id == 0 {
		id = 1
	}
	return id, nil
}
