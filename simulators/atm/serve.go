package simatm

// Serving the line: the ATM side of the link, HELLO and the session, the
// dispatch of each request to its part of the machine, the answers that
// only read the machine (STATUS, TXN_STATUS) or go to the screen (SHOW_QR,
// CANCEL_QR), EVENTs and PROGRESS. Every payload is encoded with atm's
// marshalling.

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/egate-bank/egate/atm"
)

// Serve runs the ATM on a line until ctx ends or the line fails. It closes rwc.
func (s *Sim) Serve(ctx context.Context, rwc io.ReadWriteCloser) error {
	l := atm.NewLink(&faultLine{rwc: rwc, f: s.f}, s.cfg.Link)
	defer l.Close()
	s.mu.Lock()
	s.link, s.session = l, false
	boot := s.bootID
	s.mu.Unlock()
	go l.SendStart(ctx, atm.TypeBoot, 0, atm.Boot{ID: boot}.Marshal())
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.Done():
			return l.Err()
		case f := <-l.Recv():
			s.handle(ctx, l, f)
		}
	}
}

func (s *Sim) reply(ctx context.Context, l *atm.Link, req atm.Frame, payload []byte) {
	if req.Seq == 0 {
		l.SendStart(ctx, req.Type|atm.ReplyBit, 0, payload)
		return
	}
	l.Send(ctx, req.Type|atm.ReplyBit, req.Seq, payload)
}

func (s *Sim) replyErr(ctx context.Context, l *atm.Link, req atm.Frame, c atm.Code, msg string) {
	l.Send(ctx, atm.TypeError, req.Seq, atm.ErrorMsg{Code: c, Msg: msg}.Marshal())
}

func (s *Sim) handle(ctx context.Context, l *atm.Link, f atm.Frame) {
	if f.Type == atm.TypeHello {
		m, err := atm.ParseHello(f.Payload)
		if err != nil {
			s.replyErr(ctx, l, f, atm.CodeBadMessage, err.Error())
			return
		}
		if m.VersionMin > atm.ProtocolVersion || m.VersionMax < 1 {
			s.replyErr(ctx, l, f, atm.CodeVersion, "this ATM speaks version 1")
			return
		}
		s.mu.Lock()
		s.session = true
		h := atm.HelloReply{Version: atm.ProtocolVersion, Capabilities: s.cfg.Capabilities, MaxPayload: atm.MaxPayload, BootID: s.bootID, LastEvent: s.eventNo}
		if s.last != nil {
			r := cloneRec(s.txns[*s.last])
			h.Last = &r
		}
		s.mu.Unlock()
		s.reply(ctx, l, f, h.Marshal())
		if s.f.take(&s.f.ResetTwice) {
			s.reply(ctx, l, f, h.Marshal())
		}
		return
	}
	s.mu.Lock()
	session := s.session
	s.mu.Unlock()
	if !session {
		s.replyErr(ctx, l, f, atm.CodeNoSession, "send HELLO first")
		return
	}
	var err error
	switch f.Type {
	case atm.TypeStatus:
		s.reply(ctx, l, f, s.status().Marshal())
	case atm.TypeTxnStatus:
		var m atm.TxnRequest
		if m, err = atm.ParseTxnRequest(f.Payload); err == nil {
			s.reply(ctx, l, f, s.txnStatus(m.ID).Marshal())
		}
	case atm.TypeDispense:
		var m atm.Dispense
		if m, err = atm.ParseDispense(f.Payload); err == nil {
			s.dispense(ctx, l, f, m)
		}
	case atm.TypeRetract:
		var m atm.TxnRequest
		if m, err = atm.ParseTxnRequest(f.Payload); err == nil {
			s.retractCmd(ctx, l, f, m.ID)
		}
	case atm.TypeReject:
		var m atm.TxnRequest
		if m, err = atm.ParseTxnRequest(f.Payload); err == nil {
			s.rejectCmd(ctx, l, f, m.ID)
		}
	case atm.TypePurge:
		s.reply(ctx, l, f, s.purge().MarshalPurge())
	case atm.TypeShowQR:
		var m atm.ShowQR
		if m, err = atm.ParseShowQR(f.Payload); err == nil {
			code := atm.OK
			if need := qrCap(m.Mode); s.cfg.Capabilities&need == 0 {
				code = atm.CodeUnsupported // a mode not advertised in HELLO: show nothing
			} else if e := s.cfg.Screen.Show(m); e != nil {
				code = atm.CodeHardware
			}
			s.reply(ctx, l, f, atm.Result{Code: code}.Marshal())
		}
	case atm.TypeCancelQR:
		var m atm.TxnRequest
		if m, err = atm.ParseTxnRequest(f.Payload); err == nil {
			s.cfg.Screen.Cancel(m.ID)
			s.reply(ctx, l, f, atm.Result{Code: atm.OK}.Marshal())
		}
	case atm.TypePIN:
		var m atm.PINRequest
		if m, err = atm.ParsePINRequest(f.Payload); err == nil {
			go s.pinEntry(ctx, l, f, m)
		}
	default:
		s.replyErr(ctx, l, f, atm.CodeUnknownType, fmt.Sprintf("message type %#02x", uint8(f.Type)))
	}
	if err != nil {
		s.replyErr(ctx, l, f, atm.CodeBadMessage, err.Error())
	}
}

// qrCap is the capability a SHOW_QR mode needs.
func qrCap(mode uint8) uint16 {
	if mode == atm.QRModeBitmap {
		return atm.CapQRBitmap
	}
	return atm.CapQRText
}

// QRCapabilities maps the simulator's --qr flag (text, bitmap, both) to the
// capabilities it advertises: every other capability and the QR modes named.
func QRCapabilities(qr string) (uint16, error) {
	all := atm.CapPINISO4 | atm.CapRetract | atm.CapReject | atm.CapPurge | atm.CapProgress
	switch qr {
	case "text":
		return all | atm.CapQRText, nil
	case "bitmap":
		return all | atm.CapQRBitmap, nil
	case "both", "":
		return all | atm.CapQRText | atm.CapQRBitmap, nil
	}
	return 0, fmt.Errorf("QR modes %q: want text, bitmap or both", qr)
}

func (s *Sim) status() atm.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := atm.Status{AtExit: uint16(s.tray), RejectBin: uint16(s.rejectBin)}
	if s.busy {
		st.Device = 1
	}
	if s.tray > 0 {
		st.Shutter = atm.ShutterOpen
		st.Sensors |= atm.SensorTray
	}
	if s.transport > 0 {
		st.Sensors |= atm.SensorTransport
	}
	for _, c := range s.cassettes {
		cs := atm.Cassette{ID: c.ID, Denom: c.Denom, Count: uint16(max(c.Count, 0))}
		switch {
		case c.Missing || int(c.ID) == s.f.get(func(f *Faults) int { return f.MissingCassette }):
			cs.State, cs.Count = atm.CassetteMissing, 0
		case c.Count <= 0 || int(c.ID) == s.f.get(func(f *Faults) int { return f.EmptyCassette }):
			cs.State, cs.Count = atm.CassetteEmpty, 0
		case c.Count < 20:
			cs.State = atm.CassetteLow
		}
		st.Cassettes = append(st.Cassettes, cs)
	}
	return st
}

func (s *Sim) txnStatus(id atm.TxnID) atm.TxnReply {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.txns[id]
	if !ok {
		return atm.TxnReply{Code: atm.CodeUnknownTxn, Record: atm.TxnRecord{ID: id}}
	}
	return atm.TxnReply{Code: r.Error, Record: cloneRec(r)}
}

// sendEvent sends an EVENT; caller must not hold mu.
func (s *Sim) sendEvent(ctx context.Context, kind uint8, id atm.TxnID) {
	s.mu.Lock()
	s.eventNo++
	ev := atm.EventMsg{No: s.eventNo, Kind: kind}
	if r, ok := s.txns[id]; ok {
		ev.Record = cloneRec(r)
	}
	l := s.link
	s.mu.Unlock()
	if l == nil {
		return
	}
	p := ev.Marshal()
	l.Send(ctx, atm.TypeEvent, 0, p)
	if s.f.take(&s.f.EventsDuplicated) {
		l.Send(ctx, atm.TypeEvent, 0, p)
	}
}

// progress sends PROGRESS for req every T_progress until stop is closed.
func (s *Sim) progress(ctx context.Context, l *atm.Link, req atm.Frame, stage uint8, notes func() int) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				l.Send(ctx, atm.TypeProgress, req.Seq, atm.Progress{Stage: stage, Notes: uint16(notes())}.Marshal())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
