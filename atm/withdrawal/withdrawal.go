// Package withdrawal is the QR cardless withdrawal: a session bound to one
// ATM, shown as a QR code, approved from the customer's phone, authorized,
// held in the ledger, dispensed exactly once through the branch agent, and
// settled by the counts the ATM reports — capture of what was presented and
// taken, release of what was not dispensed or was retracted.
//
// The state (table atm_withdrawals) is written before each command sent to
// the ATM and moves forward only, by guarded UPDATE … WHERE state =
// expected, so any number of replicas may drive it. After a restart,
// Recover resolves every unfinished withdrawal by asking its ATM
// (txn_status); a dispense is only ever sent again under its own
// transaction id, which the agent and the ATM execute once. An outcome the
// ATM cannot tell is SUSPECT, never reversed automatically: an operator
// settles it (Settle, egate admin atm reconcile).
//
// The ledger and the authorization service are taken through the Ledger
// and Authorizer interfaces (atm/ imports no service; internal/app wires
// them).
package withdrawal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
)

// TxnRecord is what the ATM reports about a transaction.
type TxnRecord = dclink.TxnRecord

// Errors. Each refusal leaves the withdrawal, the ledger and the ATM as
// they were (an expired session is marked EXPIRED).
var (
	ErrUnknownSession = errors.New("no such withdrawal session")
	ErrForeignSession = errors.New("the withdrawal session belongs to another ATM")
	ErrSessionUsed    = errors.New("the withdrawal session was already used")
	ErrExpired        = errors.New("the withdrawal session has expired")
	ErrCashAtExit     = errors.New("cash is waiting at the ATM's exit; the next withdrawal starts after it is taken or retracted")
	ErrCannotMix      = errors.New("the ATM cannot pay out this amount")
	ErrRefused        = errors.New("the withdrawal was refused")
	ErrBadRequest     = errors.New("invalid withdrawal request")
	ErrConflict       = errors.New("the withdrawal was changed concurrently")
	ErrBackward       = errors.New("a withdrawal's state only moves forward")
	ErrNotSuspect     = errors.New("only a SUSPECT withdrawal is settled by an operator")
	// ErrHoldRefused is what a Ledger's Hold wraps when the ledger refuses
	// the hold (insufficient funds, an account not open): the withdrawal
	// ends with nothing held.
	ErrHoldRefused = errors.New("the ledger refused the hold")
)

// Commander sends commands to ATMs; *gateway.Gateway is one. A command
// sent again with the same id is executed once.
type Commander interface {
	Send(ctx context.Context, cmd gateway.Command) (json.RawMessage, error)
}

// Intent is what the customer authorizes: kind "withdrawal".
type Intent struct {
	Kind      string `json:"kind"`
	Account   string `json:"account"`
	AmountFen int64  `json:"amount_fen"`
	ATM       string `json:"atm"`
	Session   string `json:"session"`
}

// Authorizer authorizes a withdrawal intent with the customer's proof at
// the level the limit table asks and returns a single-use grant id. A
// refusal (over the limit, a wrong proof) wraps a message for the phone.
type Authorizer interface {
	Authorize(ctx context.Context, in Intent, proof string) (grant string, err error)
}

// Ledger holds, captures and releases a customer's funds. Every call
// carries an idempotency key: the same call again changes nothing and
// succeeds.
type Ledger interface {
	Hold(ctx context.Context, key, account string, amountFen int64, grant string) (holdID string, err error)
	Capture(ctx context.Context, key, holdID string, amountFen int64, grant string) error
	Release(ctx context.Context, key, holdID, grant string) error
}

// Options shape a Service.
type Options struct {
	DB         *store.DB
	ATM        Commander
	Ledger     Ledger
	Authorizer Authorizer
	// TTL is how long a QR session may be approved; 2 minutes when zero.
	TTL time.Duration
	// Call bounds each command to an ATM; 30 s when zero (a dispense gets
	// 3 minutes).
	Call time.Duration
	// OnSettled is told of each withdrawal that reached an end (for the
	// balance alert); may be nil. It runs on the caller's goroutine and
	// must not block.
	OnSettled func(w Withdrawal)
	Now       func() time.Time
}

// noATM and noAuthorizer stand in for a Service that only settles
// (egate admin atm reconcile): they refuse everything.
type noATM struct{}

func (noATM) Send(context.Context, gateway.Command) (json.RawMessage, error) {
	return nil, gateway.ErrNoAgent
}

type noAuthorizer struct{}

func (noAuthorizer) Authorize(context.Context, Intent, string) (string, error) {
	return "", errors.New("this process authorizes no withdrawal")
}

// Service drives withdrawals. It keeps nothing in memory that the
// database does not have: a new Service over the same database resumes.
type Service struct {
	opt Options
	r   repo
}

// New makes a Service.
func New(opt Options) (*Service, error) {
	if opt.DB == nil || opt.Ledger == nil {
		return nil, errors.New("withdrawal: DB and Ledger are required")
	}
	if opt.ATM == nil {
		opt.ATM = noATM{}
	}
	if opt.Authorizer == nil {
		opt.Authorizer = noAuthorizer{}
	}
	if opt.TTL <= 0 {
		opt.TTL = 2 * time.Minute
	}
	if opt.Call <= 0 {
		opt.Call = 30 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Service{opt: opt, r: repo{opt.DB}}, nil
}

func (s *Service) now() int64 { return s.opt.Now().UnixMilli() }

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// QRText is what the ATM's QR code says: the scheme, the ATM and the session.
func QRText(atmID, session string) string { return "egate-wd:1:" + atmID + ":" + session }

// ParseQR reads a QRText.
func ParseQR(text string) (atmID, session string, err error) {
	var a, s string
	const p = "egate-wd:1:"
	if len(text) < len(p)+33 || text[:len(p)] != p {
		return "", "", fmt.Errorf("%w: not a withdrawal QR code", ErrBadRequest)
	}
	rest := text[len(p):]
	a, s = rest[:len(rest)-33], rest[len(rest)-32:]
	if rest[len(rest)-33] != ':' || a == "" {
		return "", "", fmt.Errorf("%w: not a withdrawal QR code", ErrBadRequest)
	}
	return a, s, nil
}

// Get returns one withdrawal.
func (s *Service) Get(ctx context.Context, session string) (*Withdrawal, error) {
	return s.r.get(ctx, session)
}

// List returns the withdrawals in the given states (all when none).
func (s *Service) List(ctx context.Context, states ...State) ([]*Withdrawal, error) {
	if len(states) == 0 {
		return s.r.list(ctx, "1 = 1")
	}
	q, args := "state IN (", []any{}
	for i, st := range states {
		if i > 0 {
			q += ", "
		}
		q += "?"
		args = append(args, string(st))
	}
	return s.r.list(ctx, q+")", args...)
}

func (s *Service) send(ctx context.Context, cmd gateway.Command, timeout time.Duration) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.opt.ATM.Send(ctx, cmd)
}

func (s *Service) do(ctx context.Context, atmID, op string, args any) (json.RawMessage, error) {
	cmd, err := gateway.NewCommand(atmID, op, args)
	if err != nil {
		return nil, err
	}
	return s.send(ctx, cmd, s.opt.Call)
}

// atExit says whether a withdrawal of the ATM has cash out or on its way.
func (s *Service) atExit(ctx context.Context, atmID string) (bool, error) {
	ws, err := s.r.list(ctx, "atm_id = ? AND state IN ('DISPENSE_SENT', 'DISPENSED', 'PRESENTED')", atmID)
	return len(ws) > 0, err
}

// Open starts a withdrawal session on an ATM (the customer chose QR
// withdrawal there): the session is written as QR_SHOWN, then the ATM is
// told to show its QR code. Earlier sessions of the ATM not yet approved
// expire.
func (s *Service) Open(ctx context.Context, atmID string) (*Withdrawal, error) {
	if atmID == "" {
		return nil, fmt.Errorf("%w: no ATM", ErrBadRequest)
	}
	busy, err := s.atExit(ctx, atmID)
	if err != nil {
		return nil, err
	}
	if busy {
		return nil, ErrCashAtExit
	}
	old, err := s.r.list(ctx, "atm_id = ? AND state = 'QR_SHOWN'", atmID)
	if err != nil {
		return nil, err
	}
	for _, o := range old {
		s.expire(ctx, o, "replaced by a new session on the ATM")
	}
	now := s.opt.Now()
	w := &Withdrawal{Session: newID(), ATM: atmID, State: QRShown, CreatedMS: now.UnixMilli(),
		ExpiresMS: now.Add(s.opt.TTL).UnixMilli(), UpdatedMS: now.UnixMilli()}
	if err := s.r.insert(ctx, w); err != nil {
		return nil, err
	}
	ttl := uint16(min(s.opt.TTL/time.Second, 65535))
	if _, err := s.do(ctx, atmID, dclink.OpShowQR, dclink.QRArgs{Session: w.Session, TTLSec: ttl, Text: QRText(atmID, w.Session)}); err != nil {
		s.expire(ctx, w, "the ATM did not show the QR code: "+err.Error())
		return nil, fmt.Errorf("ATM %s did not show the QR code: %w", atmID, err)
	}
	return w, nil
}

func (s *Service) expire(ctx context.Context, w *Withdrawal, reason string) {
	if s.r.move(ctx, w, Expired, s.now(), change{"reason": reason}) == nil {
		s.do(ctx, w.ATM, dclink.OpCancelQR, dclink.QRArgs{Session: w.Session})
	}
}

// Approval is what the phone posts.
type Approval struct {
	ATM       string // from the QR code
	Session   string
	Account   string
	AmountFen int64
	Proof     string
}

// Approve runs an approved withdrawal to its end: checks the session,
// mixes the notes from the ATM's cassettes, authorizes, holds, dispenses
// (writing DISPENSE_SENT first) and settles by the ATM's counts. The
// returned withdrawal is in the state reached (PRESENTED when the customer
// has not taken the cash yet: Event or Recover finishes it).
func (s *Service) Approve(ctx context.Context, a Approval) (*Withdrawal, error) {
	if a.AmountFen <= 0 || a.Account == "" {
		return nil, fmt.Errorf("%w: give an account and a positive amount", ErrBadRequest)
	}
	w, err := s.r.get(ctx, a.Session)
	if err != nil {
		return nil, err
	}
	switch {
	case w.ATM != a.ATM:
		return nil, fmt.Errorf("%w: scan the QR code on the ATM you stand at", ErrForeignSession)
	case w.State == Expired && s.now() >= w.ExpiresMS:
		// Recover may have marked it first: still the customer's "too late".
		return nil, fmt.Errorf("%w: choose QR withdrawal on the ATM again", ErrExpired)
	case w.State != QRShown:
		return nil, fmt.Errorf("%w: scan the new QR code on the ATM", ErrSessionUsed)
	case s.now() >= w.ExpiresMS:
		s.expire(ctx, w, "not approved in time")
		return nil, fmt.Errorf("%w: choose QR withdrawal on the ATM again", ErrExpired)
	}
	busy, err := s.atExit(ctx, w.ATM)
	if err != nil {
		return nil, err
	}
	raw, err := s.do(ctx, w.ATM, dclink.OpStatus, nil)
	if err != nil {
		return nil, fmt.Errorf("ATM %s cannot be asked for its cassettes: %w", w.ATM, err)
	}
	var st struct {
		AtExit    uint16 `json:"notes_at_exit"`
		Cassettes []struct {
			ID       uint8  `json:"id"`
			DenomFen int64  `json:"denomination_fen"`
			Count    uint16 `json:"count"`
			State    uint8  `json:"state"`
		} `json:"cassettes"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("ATM %s status: %w", w.ATM, err)
	}
	if busy || st.AtExit > 0 {
		return nil, ErrCashAtExit
	}
	cs := make([]atm.Cassette, len(st.Cassettes))
	denom := map[uint8]int64{}
	for i, c := range st.Cassettes {
		cs[i] = atm.Cassette{ID: c.ID, Denom: c.DenomFen, Count: c.Count, State: c.State}
		denom[c.ID] = c.DenomFen
	}
	mix, err := atm.Mix(a.AmountFen, cs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCannotMix, err)
	}
	notes := make([]Note, len(mix))
	for i, n := range mix {
		notes[i] = Note{Cassette: n.Cassette, Count: n.Count, DenomFen: denom[n.Cassette]}
	}
	// The single-use guard comes before the authorization: of parallel
	// approvals of one QR, only the one that claims the session asks for
	// a grant and a hold.
	claim := newID()
	if err := s.r.claim(ctx, w.Session, claim); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: scan the new QR code on the ATM", ErrSessionUsed)
		}
		return nil, err
	}
	authorized := false
	defer func() {
		if !authorized {
			// refused or failed before AUTHORIZED: the QR may be approved
			// again (a process that died keeps its claim until the
			// session expires)
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			s.r.unclaim(uctx, w.Session, claim)
			cancel()
		}
	}()
	grant, err := s.opt.Authorizer.Authorize(ctx, Intent{Kind: "withdrawal", Account: a.Account, AmountFen: a.AmountFen, ATM: w.ATM, Session: w.Session}, a.Proof)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	nj, _ := json.Marshal(notes)
	txn := newID()
	if err := s.r.move(ctx, w, Authorized, s.now(), change{"account": a.Account, "amount_fen": a.AmountFen,
		"grant_id": grant, "txn": txn, "notes": string(nj)}); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("%w: scan the new QR code on the ATM", ErrSessionUsed)
		}
		return nil, err
	}
	authorized = true
	w.Account, w.AmountFen, w.Grant, w.Txn, w.Notes = a.Account, a.AmountFen, grant, txn, notes
	if err := s.hold(ctx, w); err != nil {
		return w, err
	}
	w, err = s.dispense(ctx, w)
	if errors.Is(err, ErrConflict) {
		// An ATM event (the cash taken before the dispense's answer came
		// back) or Recover moved it on: this approval's answer is where it
		// is now.
		if now, gerr := s.r.get(ctx, w.Session); gerr == nil {
			return now, nil
		}
	}
	return w, err
}

// hold places the hold of an AUTHORIZED withdrawal. A refusal ends it
// (NOT_DISPENSED, nothing held); an error that says nothing leaves it
// AUTHORIZED for Recover.
func (s *Service) hold(ctx context.Context, w *Withdrawal) error {
	id, err := s.opt.Ledger.Hold(ctx, "atm-wd:"+w.Session+":hold", w.Account, w.AmountFen, w.Grant)
	if err != nil {
		if errors.Is(err, ErrHoldRefused) {
			s.r.move(ctx, w, NotDispensed, s.now(), change{"reason": "the ledger refused the hold: " + err.Error()})
			s.do(ctx, w.ATM, dclink.OpCancelQR, dclink.QRArgs{Session: w.Session})
			return fmt.Errorf("%w: %w", ErrRefused, err)
		}
		return err
	}
	w.Hold = id
	_, err = s.opt.DB.Exec(ctx, `UPDATE atm_withdrawals SET hold_id = ? WHERE session = ? AND hold_id = ''`, id, w.Session)
	return err
}

func (s *Service) dispenseCmd(w *Withdrawal) (gateway.Command, error) {
	args := dclink.DispenseArgs{Txn: w.Txn, AmountFen: w.AmountFen}
	for _, n := range w.Notes {
		args.Notes = append(args.Notes, dclink.Notes{Cassette: n.Cassette, Count: n.Count})
	}
	raw, err := json.Marshal(args)
	// The command id is the transaction id: sent again, it is the same
	// command, executed once.
	return gateway.Command{ID: w.Txn, ATM: w.ATM, Op: dclink.OpDispense, Args: raw}, err
}

// dispense writes DISPENSE_SENT, sends the dispense and settles by its
// answer. An answer that does not come leaves DISPENSE_SENT for Recover.
func (s *Service) dispense(ctx context.Context, w *Withdrawal) (*Withdrawal, error) {
	if w.State == Authorized {
		if err := s.r.move(ctx, w, DispenseSent, s.now(), nil); err != nil {
			return w, err
		}
	}
	cmd, err := s.dispenseCmd(w)
	if err != nil {
		return w, err
	}
	raw, err := s.send(ctx, cmd, 3*time.Minute)
	rec, err := record(raw, err)
	if err != nil {
		return w, fmt.Errorf("ATM %s: the dispense's outcome is not known yet (it will be asked): %w", w.ATM, err)
	}
	if err := s.apply(ctx, w, rec); err != nil {
		if !errors.Is(err, ErrConflict) {
			return w, err
		}
		// The ATM's event (presented, taken) moved it first: what it
		// reached stands, and is the answer.
		return s.r.get(ctx, w.Session)
	}
	return w, nil
}

// stateNone is the state of a transaction record the ATM never accepted
// (the agent's txn_status answers it; the ATM's own answer is UNKNOWN_TXN).
const stateNone = "NONE"

// errNotAccepted is an UNKNOWN_TXN answer: the ATM has no record of the
// transaction.
var errNotAccepted = errors.New("the ATM has no record of the transaction")

// record takes the ATM's transaction record from a command's answer: a
// result, or a device error that carries the record. An UNKNOWN_TXN error
// is errNotAccepted.
func record(raw json.RawMessage, err error) (*TxnRecord, error) {
	if err != nil {
		var ce *gateway.CommandError
		if errors.As(err, &ce) && ce.Err.Code == dclink.ErrDevice && ce.Err.Device == "UNKNOWN_TXN" {
			return nil, fmt.Errorf("%w: %w", errNotAccepted, err)
		}
		if errors.As(err, &ce) && ce.Err.Record != nil {
			return ce.Err.Record, nil
		}
		return nil, err
	}
	var rec TxnRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// presentedFen is the value of the notes the ATM presented.
func presentedFen(w *Withdrawal, rec *TxnRecord) (int64, int) {
	denom := map[uint8]int64{}
	for _, n := range w.Notes {
		denom[n.Cassette] = n.DenomFen
	}
	var fen int64
	var notes int
	for _, c := range rec.Cassettes {
		fen += int64(c.Presented) * denom[c.Cassette]
		notes += int(c.Presented)
	}
	return fen, notes
}

// apply moves a withdrawal by the ATM's record of its transaction and
// does the ledger's part: capture what was presented and taken, release
// what was not dispensed or was retracted; anything else is SUSPECT.
func (s *Service) apply(ctx context.Context, w *Withdrawal, rec *TxnRecord) error {
	if rec.Txn != "" && rec.Txn != w.Txn {
		return fmt.Errorf("ATM %s answered about transaction %s, not %s", w.ATM, rec.Txn, w.Txn)
	}
	rj, _ := json.Marshal(rec)
	fen, notes := presentedFen(w, rec)
	now := s.now()
	switch rec.State {
	case stateNone:
		if w.State == DispenseSent {
			return fmt.Errorf("ATM %s: %w %s (yet)", w.ATM, errNotAccepted, w.Txn)
		}
		return s.suspect(ctx, w, rj, "the ATM has no record of transaction "+w.Txn+" it had reported")
	case "ACCEPTED", "PICKING":
		if w.State == DispenseSent {
			return s.r.move(ctx, w, Dispensed, now, change{"record": string(rj)})
		}
		return nil
	case "PRESENTED":
		if rank[w.State] < rank[Presented] {
			if err := s.r.move(ctx, w, Presented, now, change{"record": string(rj), "cash_out_fen": fen}); err != nil {
				return err
			}
			w.CashOutFen = fen
		}
		return nil
	case "TAKEN":
		if fen > w.AmountFen {
			return s.suspect(ctx, w, rj, fmt.Sprintf("the ATM reports %s yuan taken of %s requested", money.Yuan(fen), money.Yuan(w.AmountFen)))
		}
		if w.State != Taken {
			if err := s.r.move(ctx, w, Taken, now, change{"record": string(rj), "cash_out_fen": fen}); err != nil {
				return err
			}
		}
		w.CashOutFen = fen
		return s.capture(ctx, w)
	case "RETRACTED":
		if int(rec.Retracted) != notes {
			return s.suspect(ctx, w, rj, fmt.Sprintf("the ATM retracted %d of %d notes presented", rec.Retracted, notes))
		}
		return s.release(ctx, w, Retracted, rj, "retracted: the customer did not take the cash")
	case "FAILED":
		if notes == 0 {
			return s.release(ctx, w, NotDispensed, rj, "the ATM dispensed nothing: "+rec.Error)
		}
		return s.suspect(ctx, w, rj, fmt.Sprintf("the ATM failed (%s) after presenting %d notes", rec.Error, notes))
	}
	return s.suspect(ctx, w, rj, fmt.Sprintf("the ATM reports state %q", rec.State))
}

func (s *Service) suspect(ctx context.Context, w *Withdrawal, rj []byte, reason string) error {
	if w.State == Suspect {
		return nil
	}
	return s.r.move(ctx, w, Suspect, s.now(), change{"record": string(rj), "reason": reason})
}

func (s *Service) capture(ctx context.Context, w *Withdrawal) error {
	if w.CashOutFen == 0 {
		return s.release(ctx, w, NotDispensed, nil, "nothing was taken")
	}
	if err := s.opt.Ledger.Capture(ctx, "atm-wd:"+w.Session+":capture", w.Hold, w.CashOutFen, w.Grant); err != nil {
		return fmt.Errorf("capture of withdrawal %s: %w", w.Session, err)
	}
	if err := s.r.move(ctx, w, Captured, s.now(), change{"captured_fen": w.CashOutFen, "released_fen": w.AmountFen - w.CashOutFen}); err != nil {
		return err
	}
	w.Captured, w.Released = w.CashOutFen, w.AmountFen-w.CashOutFen
	s.settled(w)
	return nil
}

func (s *Service) release(ctx context.Context, w *Withdrawal, to State, rj []byte, reason string) error {
	if w.Hold != "" {
		if err := s.opt.Ledger.Release(ctx, "atm-wd:"+w.Session+":release", w.Hold, w.Grant); err != nil {
			return fmt.Errorf("release of withdrawal %s: %w", w.Session, err)
		}
	}
	c := change{"released_fen": w.AmountFen, "reason": reason, "cash_out_fen": 0}
	if rj != nil {
		c["record"] = string(rj)
	}
	if w.Hold == "" {
		c["released_fen"] = 0
	}
	if err := s.r.move(ctx, w, to, s.now(), c); err != nil {
		return err
	}
	w.Released, w.Reason = c["released_fen"].(int64), reason
	if w.Hold == "" {
		w.Released = 0
	}
	s.settled(w)
	return nil
}

func (s *Service) settled(w *Withdrawal) {
	if s.opt.OnSettled != nil {
		s.opt.OnSettled(*w)
	}
}

// Event takes an ATM's event (presented, taken, retracted) from the
// gateway and moves the withdrawal of its transaction.
func (s *Service) Event(ctx context.Context, ev dclink.Event) error {
	w, err := s.r.byTxn(ctx, ev.Record.Txn)
	if errors.Is(err, ErrUnknownSession) {
		return nil // a dispense of another kind (egate admin atm dispense)
	}
	if err != nil {
		return err
	}
	if w.ATM != ev.ATM || w.State.Final() || w.State == Suspect {
		return nil
	}
	err = s.apply(ctx, w, &ev.Record)
	if errors.Is(err, ErrConflict) {
		return nil // another path moved it first
	}
	return err
}

// Recover resolves every unfinished withdrawal by asking its ATM: after a
// restart, and periodically. It returns the first error; the others wait
// for the next run.
func (s *Service) Recover(ctx context.Context) error {
	ws, err := s.List(ctx, QRShown, Authorized, DispenseSent, Dispensed, Presented, Taken)
	if err != nil {
		return err
	}
	var first error
	for _, w := range ws {
		if err := s.resolve(ctx, w); err != nil && !errors.Is(err, ErrConflict) && first == nil {
			first = fmt.Errorf("withdrawal %s at ATM %s (%s): %w", w.Session, w.ATM, w.State, err)
		}
	}
	return first
}

func (s *Service) resolve(ctx context.Context, w *Withdrawal) error {
	switch w.State {
	case QRShown:
		if s.now() >= w.ExpiresMS {
			s.expire(ctx, w, "not approved in time")
		}
		return nil
	case Authorized:
		if s.now() >= w.ExpiresMS {
			return s.expireAuthorized(ctx, w)
		}
		if w.Hold == "" {
			if err := s.hold(ctx, w); err != nil {
				return err
			}
		}
		_, err := s.dispense(ctx, w)
		return err
	case Taken:
		return s.capture(ctx, w)
	}
	raw, err := s.do(ctx, w.ATM, dclink.OpTxnStatus, dclink.TxnArgs{Txn: w.Txn})
	rec, err := record(raw, err)
	if errors.Is(err, errNotAccepted) || err == nil && rec.State == stateNone {
		if w.State != DispenseSent {
			return s.suspect(ctx, w, nil, "the ATM has no record of transaction "+w.Txn+" it had reported")
		}
		// The ATM never accepted it: send the same dispense (same id,
		// executed once) while the customer may still be there.
		if s.now() < w.ExpiresMS {
			_, err := s.dispense(ctx, w)
			return err
		}
		return s.suspect(ctx, w, nil, "the ATM has no record of transaction "+w.Txn+" and the session expired before it could be sent again")
	}
	if err != nil {
		return err
	}
	return s.apply(ctx, w, rec)
}

// expireAuthorized ends an AUTHORIZED withdrawal whose session ran out
// before its dispense. The state moves first: an approval still at its
// hold then loses the guarded UPDATE to DISPENSE_SENT and dispenses
// nothing (releasing first let it dispense against a released hold). Then
// the hold is released: the one the approval placed, learnt by its key
// when the row does not have it yet. A release that fails after the move
// is left to the hold's own timeout in the ledger.
func (s *Service) expireAuthorized(ctx context.Context, w *Withdrawal) error {
	reason := "the data centre stopped before the dispense; the session expired"
	if err := s.r.move(ctx, w, NotDispensed, s.now(), change{"reason": reason, "released_fen": w.AmountFen, "cash_out_fen": 0}); err != nil {
		return err
	}
	w.Reason, w.Released = reason, w.AmountFen
	if w.Hold == "" {
		id, err := s.opt.Ledger.Hold(ctx, "atm-wd:"+w.Session+":hold", w.Account, w.AmountFen, w.Grant)
		if errors.Is(err, ErrHoldRefused) {
			// nothing was held
			w.Released = 0
			_, err = s.opt.DB.Exec(ctx, `UPDATE atm_withdrawals SET released_fen = 0 WHERE session = ?`, w.Session)
			s.settled(w)
			return err
		}
		if err != nil {
			return fmt.Errorf("the hold of expired withdrawal %s (left to the ledger's timeout): %w", w.Session, err)
		}
		w.Hold = id
		if _, err := s.opt.DB.Exec(ctx, `UPDATE atm_withdrawals SET hold_id = ? WHERE session = ? AND hold_id = ''`, id, w.Session); err != nil {
			return err
		}
	}
	if err := s.opt.Ledger.Release(ctx, "atm-wd:"+w.Session+":release", w.Hold, w.Grant); err != nil {
		return fmt.Errorf("release of expired withdrawal %s (left to the ledger's timeout): %w", w.Session, err)
	}
	s.settled(w)
	return nil
}

// Settlement is an operator's decision on a SUSPECT withdrawal.
type Settlement struct {
	Session    string
	Operator   string
	CaptureFen int64 // > 0: capture this much (≤ the amount); 0: release
	Reason     string
}

// Settle ends a SUSPECT withdrawal as the operator decided, after
// comparing the ATM's record and counts with the ledger's hold.
func (s *Service) Settle(ctx context.Context, st Settlement) (*Withdrawal, error) {
	if st.Operator == "" || st.Reason == "" {
		return nil, fmt.Errorf("%w: an operator and a reason are required", ErrBadRequest)
	}
	w, err := s.r.get(ctx, st.Session)
	if err != nil {
		return nil, err
	}
	if w.State != Suspect {
		return nil, fmt.Errorf("%w: withdrawal %s is %s", ErrNotSuspect, w.Session, w.State)
	}
	if st.CaptureFen < 0 || st.CaptureFen > w.AmountFen {
		return nil, fmt.Errorf("%w: capture between 0 and %s yuan", ErrBadRequest, money.Yuan(w.AmountFen))
	}
	reason := w.Reason + "; settled by " + st.Operator + ": " + st.Reason
	if st.CaptureFen == 0 {
		if w.Hold != "" {
			if err := s.opt.Ledger.Release(ctx, "atm-wd:"+w.Session+":release", w.Hold, w.Grant); err != nil {
				return nil, err
			}
		}
		released := w.AmountFen
		if w.Hold == "" {
			released = 0
		}
		err = s.r.move(ctx, w, NotDispensed, s.now(), change{"released_fen": released, "cash_out_fen": 0, "reason": reason, "settled_by": st.Operator})
		w.Released = released
	} else {
		if err := s.opt.Ledger.Capture(ctx, "atm-wd:"+w.Session+":capture", w.Hold, st.CaptureFen, w.Grant); err != nil {
			return nil, err
		}
		err = s.r.move(ctx, w, Captured, s.now(), change{"captured_fen": st.CaptureFen, "released_fen": w.AmountFen - st.CaptureFen,
			"cash_out_fen": st.CaptureFen, "reason": reason, "settled_by": st.Operator})
		w.Captured, w.Released, w.CashOutFen = st.CaptureFen, w.AmountFen-st.CaptureFen, st.CaptureFen
	}
	if err != nil {
		return nil, err
	}
	w.Reason, w.SettledBy = reason, st.Operator
	s.settled(w)
	return w, nil
}
