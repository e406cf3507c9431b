package simatm

// The PIN pad: what the customer types (EnterPIN) answers the next PIN
// request as an ISO 9564 format 4 block under the shared AES key.

import (
	"context"
	"time"

	"github.com/egate-bank/egate/atm"
)

// PINEntry is what the customer types on the PIN pad.
type PINEntry struct {
	Digits string
	Cancel bool
}

// EnterPIN queues what the customer types at the next PIN prompt.
func (s *Sim) EnterPIN(e PINEntry) { s.pins <- e }

func (s *Sim) pinEntry(ctx context.Context, l *atm.Link, req atm.Frame, m atm.PINRequest) {
	s.cfg.Screen.Prompt("Enter your withdrawal PIN on the PIN pad, then press Enter.")
	defer s.cfg.Screen.Prompt("")
	stop := s.progress(ctx, l, req, atm.StagePINEntry, func() int { return 0 })
	rep := atm.PINReply{Code: atm.CodeTimeout}
	t := time.NewTimer(time.Duration(m.TimeoutSec) * time.Second)
	defer t.Stop()
	select {
	case e := <-s.pins:
		switch {
		case e.Cancel:
			rep.Code = atm.CodeCancelled
		case len(s.cfg.PINKey) == 0:
			rep.Code = atm.CodeHardware
		case len(e.Digits) < int(m.MinLen) || len(e.Digits) > int(m.MaxLen):
			rep.Code = atm.CodeBadMessage
		default:
			b, err := atm.EncipherPINBlock4(s.cfg.PINKey, e.Digits, m.PAN)
			if err != nil {
				rep.Code = atm.CodeBadMessage
			} else {
				rep = atm.PINReply{Code: atm.OK, Format: 4, KeyID: s.cfg.PINKeyID, Block: b}
			}
		}
	case <-t.C:
	case <-ctx.Done():
	}
	stop()
	s.reply(ctx, l, req, rep.Marshal())
}
