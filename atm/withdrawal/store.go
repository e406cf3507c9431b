package withdrawal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/egate-bank/egate/internal/store"
)

// State is where a withdrawal is. States only move forward (rank grows);
// the final ones never move again, except SUSPECT, which only an operator
// settles (to CAPTURED or NOT_DISPENSED).
type State string

// The states.
const (
	QRShown      State = "QR_SHOWN"
	Authorized   State = "AUTHORIZED"
	DispenseSent State = "DISPENSE_SENT"
	Dispensed    State = "DISPENSED"
	Presented    State = "PRESENTED"
	Taken        State = "TAKEN"
	Captured     State = "CAPTURED"
	Expired      State = "EXPIRED"
	NotDispensed State = "NOT_DISPENSED"
	Retracted    State = "RETRACTED"
	Suspect      State = "SUSPECT"
)

var rank = map[State]int{QRShown: 1, Authorized: 2, DispenseSent: 3, Dispensed: 4, Presented: 5, Taken: 6,
	Captured: 10, Expired: 10, NotDispensed: 10, Retracted: 10, Suspect: 9}

// Final says the withdrawal needs nothing more from the data centre.
// SUSPECT is not final: it waits for an operator.
func (s State) Final() bool { return rank[s] == 10 }

// Forward says whether to may follow from: a later state of the path, or
// an end; SUSPECT only to CAPTURED or NOT_DISPENSED (an operator's
// settlement).
func Forward(from, to State) bool {
	if from == Suspect {
		return to == Captured || to == NotDispensed
	}
	if from.Final() {
		return false
	}
	return rank[to] > rank[from]
}

// Note is one cassette's part of the mix.
type Note struct {
	Cassette uint8  `json:"cassette"`
	Count    uint16 `json:"count"`
	DenomFen int64  `json:"denomination_fen"`
}

// Withdrawal is one row of atm_withdrawals.
type Withdrawal struct {
	Session    string
	ATM        string
	State      State
	Reason     string
	CreatedMS  int64
	ExpiresMS  int64
	UpdatedMS  int64
	Account    string
	AmountFen  int64
	Grant      string
	Hold       string
	Txn        string
	Notes      []Note
	CashOutFen int64
	Captured   int64
	Released   int64
	Record     *TxnRecord
	SettledBy  string
}

// Unresolved says the withdrawal's money is not settled yet.
func (w *Withdrawal) Unresolved() bool { return !w.State.Final() }

const cols = `session, atm_id, state, reason, created_ms, expires_ms, updated_ms, account, amount_fen, grant_id, hold_id,
 COALESCE(txn, ''), notes, cash_out_fen, captured_fen, released_fen, record, settled_by`

func scan(row interface{ Scan(...any) error }) (*Withdrawal, error) {
	var w Withdrawal
	var notes, rec, st string
	if err := row.Scan(&w.Session, &w.ATM, &st, &w.Reason, &w.CreatedMS, &w.ExpiresMS, &w.UpdatedMS, &w.Account, &w.AmountFen,
		&w.Grant, &w.Hold, &w.Txn, &notes, &w.CashOutFen, &w.Captured, &w.Released, &rec, &w.SettledBy); err != nil {
		return nil, err
	}
	w.State = State(st)
	if notes != "" {
		if err := json.Unmarshal([]byte(notes), &w.Notes); err != nil {
			return nil, fmt.Errorf("withdrawal %s: notes: %w", w.Session, err)
		}
	}
	if rec != "" {
		w.Record = new(TxnRecord)
		if err := json.Unmarshal([]byte(rec), w.Record); err != nil {
			return nil, fmt.Errorf("withdrawal %s: record: %w", w.Session, err)
		}
	}
	return &w, nil
}

type repo struct{ db *store.DB }

func (r repo) insert(ctx context.Context, w *Withdrawal) error {
	_, err := r.db.Exec(ctx, `INSERT INTO atm_withdrawals (session, atm_id, state, created_ms, expires_ms, updated_ms) VALUES (?, ?, ?, ?, ?, ?)`,
		w.Session, w.ATM, string(w.State), w.CreatedMS, w.ExpiresMS, w.UpdatedMS)
	return err
}

func (r repo) get(ctx context.Context, session string) (*Withdrawal, error) {
	w, err := scan(r.db.QueryRow(ctx, `SELECT `+cols+` FROM atm_withdrawals WHERE session = ?`, session))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUnknownSession
	}
	return w, err
}

func (r repo) byTxn(ctx context.Context, txn string) (*Withdrawal, error) {
	w, err := scan(r.db.QueryRow(ctx, `SELECT `+cols+` FROM atm_withdrawals WHERE txn = ?`, txn))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUnknownSession
	}
	return w, err
}

func (r repo) list(ctx context.Context, where string, args ...any) ([]*Withdrawal, error) {
	rows, err := r.db.Query(ctx, `SELECT `+cols+` FROM atm_withdrawals WHERE `+where+` ORDER BY created_ms, session`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Withdrawal
	for rows.Next() {
		w, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// claim marks a QR_SHOWN session as being approved by one approval: the
// guarded UPDATE that makes approvals single use before any of them
// authorizes. ErrConflict: another approval claimed it, or it moved on.
func (r repo) claim(ctx context.Context, session, claim string) error {
	res, err := r.db.Exec(ctx, `UPDATE atm_withdrawals SET claim = ? WHERE session = ? AND state = 'QR_SHOWN' AND claim = ''`, claim, session)
	return oneRow(res, err, "withdrawal "+session+" is being approved or was used")
}

// oneRow is the outcome of a guarded UPDATE: ErrConflict (with what) when
// it changed no row.
func oneRow(res sql.Result, err error, what string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("%w: %s", ErrConflict, what)
	}
	return nil
}

// unclaim gives up a claim whose approval was refused before AUTHORIZED.
func (r repo) unclaim(ctx context.Context, session, claim string) error {
	_, err := r.db.Exec(ctx, `UPDATE atm_withdrawals SET claim = '' WHERE session = ? AND state = 'QR_SHOWN' AND claim = ?`, session, claim)
	return err
}

// change is the columns a transition sets besides state and updated_ms.
type change map[string]any

// move is the guarded transition: UPDATE … WHERE session = ? AND state =
// from. It fails with ErrConflict when another replica (or event) moved the
// row first; the caller reloads.
func (r repo) move(ctx context.Context, w *Withdrawal, to State, now int64, c change) error {
	if !Forward(w.State, to) {
		return fmt.Errorf("%w: %s → %s", ErrBackward, w.State, to)
	}
	set := []string{"state = ?", "updated_ms = ?"}
	args := []any{string(to), now}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	// a stable order keeps the statement text stable
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	for _, k := range keys {
		set = append(set, k+" = ?")
		args = append(args, c[k])
	}
	args = append(args, w.Session, string(w.State))
	res, err := r.db.Exec(ctx, `UPDATE atm_withdrawals SET `+strings.Join(set, ", ")+` WHERE session = ? AND state = ?`, args...)
	if err := oneRow(res, err, fmt.Sprintf("withdrawal %s is no longer %s", w.Session, w.State)); err != nil {
		return err
	}
	w.State, w.UpdatedMS = to, now
	return nil
}
