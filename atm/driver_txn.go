package atm

// The money-moving commands (DISPENSE, RETRACT, REJECT) and TXN_STATUS.
// Each is keyed by a TxnID; a lost reply is never guessed at but resolved
// by asking the ATM (pollStatus), with one settle rule per command, and
// what cannot be learned before ctx ends is an *UncertainError.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// UncertainError carries the transaction whose outcome is unknown.
type UncertainError struct {
	ID  TxnID
	Err error
}

func (e *UncertainError) Error() string {
	return fmt.Sprintf("atm: transaction %s: outcome uncertain: %v", e.ID, e.Err)
}
func (e *UncertainError) Unwrap() []error { return []error{ErrUncertain, e.Err} }

// txnCall runs a request about id answered by a TxnReply and records the
// result. A reply whose record is not id's is refused with ErrWrongTxn.
func (d *Driver) txnCall(ctx context.Context, t MsgType, id TxnID) (TxnReply, error) {
	f, err := d.call(ctx, t, TxnRequest{id}.Marshal())
	if err != nil {
		return TxnReply{}, err
	}
	r, err := ParseTxnReply(f.Payload)
	if err != nil {
		return r, fmt.Errorf("atm: %s reply: %w", t, err)
	}
	if r.Record.ID != id {
		return TxnReply{}, fmt.Errorf("atm: %s %s: reply names %s: %w", t, id, r.Record.ID, ErrWrongTxn)
	}
	d.record(r.Record)
	return r, nil
}

// TxnStatus asks the ATM what it knows about id. A record in state NONE
// means the ATM never accepted the id.
func (d *Driver) TxnStatus(ctx context.Context, id TxnID) (TxnRecord, error) {
	r, err := d.txnCall(ctx, TypeTxnStatus, id)
	if err != nil {
		return TxnRecord{}, err
	}
	if r.Code == CodeUnknownTxn {
		r.Record.ID, r.Record.State = id, StateNone
	}
	return r.Record, nil
}

// Dispense dispenses notes for transaction id, exactly once. It returns the
// ATM's record (per-cassette picked, presented, rejected) also on error:
//   - a *DeviceError with Record == nil: refused, nothing moved;
//   - a *DeviceError with a Record: the dispense failed part way (jam, too
//     many rejects, power loss); the counts say what happened;
//   - an *UncertainError: ctx ended before the ATM could be asked.
//
// A retry with the same id never dispenses again.
func (d *Driver) Dispense(ctx context.Context, id TxnID, amount int64, notes []Notes) (TxnRecord, error) {
	if r, ok := d.Record(id); ok && r.State.Final() {
		if !sameDispense(r, amount, notes) {
			return TxnRecord{ID: id}, &DeviceError{Op: TypeDispense, Code: CodeTxnConflict, Msg: "transaction id already used for a different dispense"}
		}
		return r, finalErr(TypeDispense, r)
	}
	payload := Dispense{ID: id, Amount: amount, Notes: notes}.Marshal()
	for {
		f, err := d.call(ctx, TypeDispense, payload)
		if err == nil {
			r, perr := ParseTxnReply(f.Payload)
			switch {
			case perr != nil:
				err = fmt.Errorf("atm: DISPENSE reply: %w", perr)
			case r.Record.ID != id:
				// Never an answer, not even a refusal: ask for id's outcome.
				err = fmt.Errorf("atm: DISPENSE %s: reply names %s: %w", id, r.Record.ID, ErrWrongTxn)
			default:
				switch {
				case r.Record.State.Final():
					d.record(r.Record)
					rec, _ := d.Record(id)
					return rec, finalErr(TypeDispense, rec)
				case r.Code != OK && r.Code != CodeInProgress:
					return TxnRecord{ID: id}, &DeviceError{Op: TypeDispense, Code: r.Code}
				}
				// accepted and still running: wait for the outcome below
			}
		} else {
			var de *DeviceError
			if errors.As(err, &de) && de.Code != CodeNoSession || errors.Is(err, ErrDriverClosed) {
				return TxnRecord{ID: id}, err // refused or never sent: nothing moved
			}
		}
		d.Resolved.Add(1)
		rec, rerr := d.resolve(ctx, id)
		if rerr != nil {
			return TxnRecord{ID: id}, &UncertainError{ID: id, Err: rerr}
		}
		if rec.State == StateNone {
			continue // never accepted: the same DISPENSE, same id, is safe
		}
		return rec, finalErr(TypeDispense, rec)
	}
}

// resolve asks the ATM until it states a final outcome for id, or that it
// never accepted it (StateNone). Line errors are retried until ctx ends.
func (d *Driver) resolve(ctx context.Context, id TxnID) (TxnRecord, error) {
	rec, err := d.pollStatus(ctx, id, func(rec TxnRecord) (bool, error) {
		return rec.State == StateNone || rec.State.Final(), nil
	})
	if err != nil {
		return TxnRecord{}, err
	}
	if rec.State.Final() {
		r, _ := d.Record(id)
		return r, nil
	}
	return rec, nil
}

// pollStatus asks the ATM about id every PollInterval until settles says
// its answer settles the question, ctx ends or the driver closes. Line
// errors, and the reason settles gives for an answer that does not settle
// it, are retried; the last of them is returned at the end (ctx's error if
// there was none).
func (d *Driver) pollStatus(ctx context.Context, id TxnID, settles func(TxnRecord) (bool, error)) (TxnRecord, error) {
	var last error
	for {
		rec, err := d.TxnStatus(ctx, id)
		if err == nil {
			var done bool
			if done, err = settles(rec); done {
				return rec, nil
			}
		}
		if err != nil {
			last = err
		}
		if ctx.Err() != nil || errors.Is(err, ErrDriverClosed) {
			if last == nil {
				last = ctx.Err()
			}
			return TxnRecord{}, last
		}
		t := time.NewTimer(d.cfg.PollInterval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

func sameDispense(r TxnRecord, amount int64, notes []Notes) bool {
	if r.Amount != amount {
		return false
	}
	for _, n := range notes {
		found := false
		for _, c := range r.Cassettes {
			found = found || (c.Cassette == n.Cassette && c.Requested == n.Count)
		}
		if !found {
			return false
		}
	}
	return true
}

func finalErr(op MsgType, r TxnRecord) error {
	if r.Error != OK && r.State == StateFailed {
		rc := r
		return &DeviceError{Op: op, Code: r.Error, Record: &rc}
	}
	return nil
}

// Retract pulls notes left at the exit into the reject bin.
func (d *Driver) Retract(ctx context.Context, id TxnID) (TxnRecord, error) {
	return d.moveNotes(ctx, TypeRetract, id)
}

// Reject moves notes in the transport into the reject bin.
func (d *Driver) Reject(ctx context.Context, id TxnID) (TxnRecord, error) {
	return d.moveNotes(ctx, TypeReject, id)
}

func (d *Driver) moveNotes(ctx context.Context, t MsgType, id TxnID) (TxnRecord, error) {
	r, err := d.txnCall(ctx, t, id)
	var de *DeviceError
	if err != nil && !errors.As(err, &de) {
		// Lost reply: the ATM keeps the outcome; ask it.
		d.Resolved.Add(1)
		var rec TxnRecord
		var rerr error
		if t == TypeRetract {
			rec, r.Code, rerr = d.resolveRetract(ctx, id)
		} else {
			rec, r.Code, rerr = d.resolveReject(ctx, id)
		}
		if rerr != nil {
			return TxnRecord{ID: id}, &UncertainError{ID: id, Err: errors.Join(err, rerr)}
		}
		r.Record = rec
	} else if err != nil {
		return TxnRecord{ID: id}, err
	}
	rec, ok := d.Record(id)
	if !ok {
		rec = r.Record
	}
	if r.Code != OK {
		rc := r.Record
		return rec, &DeviceError{Op: t, Code: r.Code, Record: &rc}
	}
	return rec, nil
}

// resolveReject learns the outcome of a REJECT whose reply was lost. REJECT
// is idempotent (PROTOCOL.md §6.8): on a final transaction it moves nothing
// and answers OK with the record, so a final state settles it with OK, the
// answer a second REJECT would get; UNKNOWN_TXN is the ATM's answer for an
// id it never accepted. While the transaction is PICKING the REJECT may
// never have arrived (a line that failed before the ACK), so the driver
// sends it again: a dispense stopped mid-pick is ended by it, one still
// running answers BUSY and nothing moves; it asks until ctx ends.
func (d *Driver) resolveReject(ctx context.Context, id TxnID) (TxnRecord, Code, error) {
	rejected := false // the REJECT sent again was answered OK (and recorded)
	rec, err := d.pollStatus(ctx, id, func(rec TxnRecord) (bool, error) {
		switch {
		case rec.State == StateNone || rec.State.Final():
			return true, nil
		case rec.State == StatePicking:
			r, err := d.txnCall(ctx, TypeReject, id)
			rejected = err == nil && r.Code == OK
			return rejected, err
		}
		return false, nil
	})
	switch {
	case err != nil:
		return TxnRecord{}, 0, err
	case !rejected && rec.State == StateNone:
		return TxnRecord{ID: id}, CodeUnknownTxn, nil
	}
	if r, ok := d.Record(id); ok {
		rec = r
	}
	return rec, OK, nil
}

// resolveRetract learns the outcome of a RETRACT whose reply was lost. Only
// the two ends of a presentation answer it: TAKEN (the customer was first:
// NOT_PRESENTED) and RETRACTED (RETRACT_COUNT_UNKNOWN if the ATM could not
// count), the codes PROTOCOL.md §6.7 gives them. UNKNOWN_TXN is the ATM's own
// answer. Any other state (PRESENTED: the retract may still run; FAILED) says
// nothing about the retract, so the driver asks again until ctx ends and then
// the outcome is uncertain; it never guesses.
func (d *Driver) resolveRetract(ctx context.Context, id TxnID) (TxnRecord, Code, error) {
	rec, err := d.pollStatus(ctx, id, func(rec TxnRecord) (bool, error) {
		switch rec.State {
		case StateTaken, StateRetracted, StateNone:
			return true, nil
		}
		return false, fmt.Errorf("atm: RETRACT %s: ATM reports %s: %w", id, rec.State, ErrUncertain)
	})
	switch {
	case err != nil:
		return TxnRecord{}, 0, err
	case rec.State == StateTaken:
		return rec, CodeNotPresented, nil
	case rec.State == StateNone:
		return rec, CodeUnknownTxn, nil
	case rec.Retracted == RetractUnknown:
		return rec, CodeRetractCountUnknown, nil
	default: // retracted
		return rec, OK, nil
	}
}
