package simatm

// The presenter: cash at the exit, the customer in front of it (takes it,
// or not, or grabs it as a retract starts), and RETRACT, by the host or by
// the ATM itself after its take timeout.

import (
	"context"
	"time"

	"github.com/egate-bank/egate/atm"
)

// TakeNow makes the customer take the cash at the exit now.
func (s *Sim) TakeNow() {
	select {
	case s.customer <- struct{}{}:
	default:
	}
}

// customerAt plays the customer in front of the ATM after cash was presented.
func (s *Sim) customerAt(ctx context.Context, id atm.TxnID, reversed bool) {
	s.cfg.Screen.Prompt("Take your cash.")
	defer s.cfg.Screen.Prompt("")
	takes := s.f.get(func(f *Faults) int {
		if f.CustomerTakes {
			return 1
		}
		return 0
	}) == 1
	var takeC <-chan time.Time
	if takes {
		t := time.NewTimer(s.cfg.TakeAfter)
		defer t.Stop()
		takeC = t.C
	}
	timeout := time.NewTimer(s.cfg.TakeTimeout)
	defer timeout.Stop()
	select {
	case <-ctx.Done():
		return
	case <-takeC:
	case <-s.customer:
	case <-timeout.C:
		s.retract(ctx, nil, atm.Frame{}, id)
		return
	}
	s.mu.Lock()
	if s.tray == 0 || s.trayTxn != id {
		s.mu.Unlock()
		return // retracted meanwhile
	}
	s.act(jrec{Op: "taken", Txn: id.String()})
	s.mu.Unlock()
	s.sendEvent(ctx, atm.EventTaken, id)
	if reversed {
		s.sendEvent(ctx, atm.EventPresented, id)
	}
}

func (s *Sim) retractCmd(ctx context.Context, l *atm.Link, req atm.Frame, id atm.TxnID) {
	s.mu.Lock()
	r, ok := s.txns[id]
	switch {
	case !ok:
		s.mu.Unlock()
		s.reply(ctx, l, req, atm.TxnReply{Code: atm.CodeUnknownTxn, Record: atm.TxnRecord{ID: id}}.Marshal())
		return
	case r.State == atm.StateRetracted:
		rep := atm.TxnReply{Record: cloneRec(r)}
		if r.Retracted == atm.RetractUnknown {
			rep.Code = atm.CodeRetractCountUnknown
		}
		s.mu.Unlock()
		s.reply(ctx, l, req, rep.Marshal())
		return
	case r.State != atm.StatePresented || s.tray == 0 || s.trayTxn != id:
		rep := atm.TxnReply{Code: atm.CodeNotPresented, Record: cloneRec(r)}
		s.mu.Unlock()
		s.reply(ctx, l, req, rep.Marshal())
		return
	case s.busy:
		s.mu.Unlock()
		s.reply(ctx, l, req, atm.TxnReply{Code: atm.CodeBusy, Record: cloneRec(r)}.Marshal())
		return
	}
	s.busy = true
	s.mu.Unlock()
	go s.retract(ctx, l, req, id)
}

// retract pulls the cash at the exit back; l == nil when the ATM does it on
// its own after the take timeout.
func (s *Sim) retract(ctx context.Context, l *atm.Link, req atm.Frame, id atm.TxnID) {
	var stop func()
	if l != nil {
		stop = s.progress(ctx, l, req, atm.StageRetracting, func() int { return 0 })
	} else {
		s.mu.Lock()
		if s.busy || s.tray == 0 || s.trayTxn != id {
			s.mu.Unlock()
			return
		}
		s.busy = true
		s.mu.Unlock()
	}
	grab := s.f.take(&s.f.TakeDuringRetr)
	unknown := s.f.take(&s.f.RetractUnknown)
	if l != nil {
		if d := time.Duration(s.f.get(func(f *Faults) int { v := f.LineDownMid; f.LineDownMid = 0; return int(v) })); d > 0 {
			s.f.setLineDown(d)
		}
	}
	sleep(ctx, s.cfg.RetractTime)
	s.mu.Lock()
	code := atm.OK
	kind := uint8(atm.EventRetracted)
	switch {
	case s.tray == 0 || s.trayTxn != id:
		// The customer took the cash while the retract was starting.
		code, kind = atm.CodeNotPresented, 0
	case grab:
		s.act(jrec{Op: "taken", Txn: id.String()})
		code, kind = atm.CodeNotPresented, atm.EventTaken
	default:
		s.act(jrec{Op: "retract", Txn: id.String(), N: s.tray, Unk: unknown})
		if unknown {
			code = atm.CodeRetractCountUnknown
		}
	}
	s.busy = false
	rep := atm.TxnReply{Code: code, Record: cloneRec(s.txns[id])}
	s.mu.Unlock()
	if stop != nil {
		stop()
		s.reply(ctx, l, req, rep.Marshal())
	}
	if kind != 0 {
		s.sendEvent(ctx, kind, id)
	}
}
