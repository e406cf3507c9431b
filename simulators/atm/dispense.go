package simatm

// The dispenser: DISPENSE validated before anything moves, then journaled
// pick by pick and presented (with the device faults: jam, rejects, crash,
// a dead line, slow picks); REJECT, which empties a stopped dispense's
// transport into the reject bin; and PURGE, which empties the transport.

import (
	"context"
	"sync"
	"time"

	"github.com/egate-bank/egate/atm"
)

func sameRequest(r *atm.TxnRecord, m atm.Dispense) bool {
	if r.Amount != m.Amount || len(r.Cassettes) < len(m.Notes) {
		return false
	}
	for _, n := range m.Notes {
		found := false
		for _, c := range r.Cassettes {
			if c.Cassette == n.Cassette && c.Requested == n.Count {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// validate checks a dispense before anything moves. Caller holds mu.
func (s *Sim) validate(m atm.Dispense) atm.Code {
	if s.busy {
		return atm.CodeBusy
	}
	if s.tray > 0 {
		return atm.CodeCashAtExit
	}
	if len(m.Notes) == 0 {
		return atm.CodeBadMessage
	}
	seen := map[uint8]bool{}
	var sum int64
	for _, n := range m.Notes {
		if seen[n.Cassette] || n.Count == 0 {
			return atm.CodeBadMessage
		}
		seen[n.Cassette] = true
		c := s.cassette(n.Cassette)
		if c == nil || c.Missing || int(c.ID) == s.f.MissingCassette {
			return atm.CodeCassetteMissing
		}
		if c.Count <= 0 || int(c.ID) == s.f.EmptyCassette {
			return atm.CodeCassetteEmpty
		}
		if c.Count < int(n.Count) {
			return atm.CodeCannotMakeAmount
		}
		sum += c.Denom * int64(n.Count)
	}
	if sum != m.Amount {
		return atm.CodeCannotMakeAmount
	}
	return atm.OK
}

func (s *Sim) dispense(ctx context.Context, l *atm.Link, req atm.Frame, m atm.Dispense) {
	s.mu.Lock()
	if r, ok := s.txns[m.ID]; ok {
		reply := atm.TxnReply{Code: r.Error, Record: cloneRec(r)}
		if !sameRequest(r, m) {
			reply = atm.TxnReply{Code: atm.CodeTxnConflict, Record: atm.TxnRecord{ID: m.ID}}
		} else if !r.State.Final() {
			reply.Code = atm.CodeInProgress
		}
		s.mu.Unlock()
		s.reply(ctx, l, req, reply.Marshal())
		return
	}
	s.f.mu.Lock()
	code := s.validate(m)
	s.f.mu.Unlock()
	if code != atm.OK {
		s.mu.Unlock()
		s.reply(ctx, l, req, atm.TxnReply{Code: code, Record: atm.TxnRecord{ID: m.ID, Amount: m.Amount}}.Marshal())
		return
	}
	if err := s.act(jrec{Op: "begin", Txn: m.ID.String(), Amount: m.Amount, Req: m.Notes}); err != nil {
		s.mu.Unlock()
		s.reply(ctx, l, req, atm.TxnReply{Code: atm.CodeHardware, Record: atm.TxnRecord{ID: m.ID}}.Marshal())
		return
	}
	s.busy = true
	s.mu.Unlock()
	go s.runDispense(ctx, l, req, m)
}

func (s *Sim) runDispense(ctx context.Context, l *atm.Link, req atm.Frame, m atm.Dispense) {
	id := m.ID.String()
	s.cfg.Screen.Prompt("Counting your cash…")
	var picked int
	var pmu sync.Mutex
	stop := s.progress(ctx, l, req, atm.StagePicking, func() int { pmu.Lock(); defer pmu.Unlock(); return picked })
	f := s.f
	jamAt := f.get(func(f *Faults) int { v := f.JamAfter; f.JamAfter = -1; return v })
	rejectEvery := f.get(func(f *Faults) int { v := f.RejectEvery; f.RejectEvery = 0; return v })
	crashAt := f.get(func(f *Faults) int { v := f.CrashAfterPick; f.CrashAfterPick = 0; return v })
	lineDown := time.Duration(f.get(func(f *Faults) int { v := f.LineDownMid; f.LineDownMid = 0; return int(v) }))
	pickDelay := time.Duration(f.get(func(f *Faults) int { return int(f.PickDelay) }))

	fail := func(c atm.Code) {
		s.cfg.Screen.Prompt("")
		s.mu.Lock()
		s.act(jrec{Op: "fail", Txn: id, Code: uint8(c)})
		s.busy = false
		rep := atm.TxnReply{Code: c, Record: cloneRec(s.txns[m.ID])}
		s.mu.Unlock()
		stop()
		s.reply(ctx, l, req, rep.Marshal())
	}
	total, rejects := 0, 0
	for _, n := range m.Notes {
		good := 0
		for good < int(n.Count) {
			if total == jamAt {
				fail(atm.CodeJam)
				return
			}
			s.mu.Lock()
			c := s.cassette(n.Cassette)
			if c.Count <= 0 {
				s.mu.Unlock()
				fail(atm.CodeCassetteEmpty)
				return
			}
			err := s.act(jrec{Op: "pick", Txn: id, Cas: n.Cassette})
			s.mu.Unlock()
			if err != nil {
				fail(atm.CodeHardware)
				return
			}
			total++
			pmu.Lock()
			picked = total
			pmu.Unlock()
			if total == crashAt {
				s.cfg.Crash()
			}
			if lineDown > 0 && total == 1 {
				f.setLineDown(lineDown)
			}
			sleep(ctx, s.cfg.PickTime+pickDelay)
			if rejectEvery > 0 && total%rejectEvery == 0 {
				rejects++
				s.mu.Lock()
				s.act(jrec{Op: "reject", Txn: id, Cas: n.Cassette})
				s.mu.Unlock()
				if rejects > s.cfg.RejectLimit {
					fail(atm.CodeTooManyRejects)
					return
				}
				continue
			}
			good++
		}
	}
	sleep(ctx, s.cfg.PresentTime)
	s.mu.Lock()
	err := s.act(jrec{Op: "present", Txn: id})
	s.busy = false
	rep := atm.TxnReply{Code: atm.OK, Record: cloneRec(s.txns[m.ID])}
	s.mu.Unlock()
	stop()
	if err != nil {
		fail(atm.CodeHardware)
		return
	}
	s.reply(ctx, l, req, rep.Marshal())
	reversed := f.take(&f.EventsReversed)
	go s.customerAt(ctx, m.ID, reversed)
	if !reversed {
		s.sendEvent(ctx, atm.EventPresented, m.ID)
	}
}

func (s *Sim) rejectCmd(ctx context.Context, l *atm.Link, req atm.Frame, id atm.TxnID) {
	s.mu.Lock()
	r, ok := s.txns[id]
	if !ok {
		s.mu.Unlock()
		s.reply(ctx, l, req, atm.TxnReply{Code: atm.CodeUnknownTxn, Record: atm.TxnRecord{ID: id}}.Marshal())
		return
	}
	code := atm.OK
	if r.State == atm.StatePicking && !s.busy {
		s.act(jrec{Op: "fail", Txn: id.String(), Code: uint8(atm.CodeCancelled)})
	} else if !r.State.Final() {
		code = atm.CodeBusy
	}
	rep := atm.TxnReply{Code: code, Record: cloneRec(r)}
	s.mu.Unlock()
	s.reply(ctx, l, req, rep.Marshal())
}

// purge clears the transport into the reject bin (PURGE) and says how many
// notes it moved; nothing while an operation runs (BUSY).
func (s *Sim) purge() atm.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.transport
	var code atm.Code
	if s.busy {
		code, n = atm.CodeBusy, 0
	} else if n > 0 {
		if e := s.act(jrec{Op: "purge"}); e != nil {
			code = atm.CodeHardware
		}
	}
	return atm.Result{Code: code, Notes: uint16(n)}
}
