package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/egate-bank/egate/internal/money"
)

// Sender delivers one alert to a consumer's channel (an SMS, an inbox
// entry). It returns an error when the alert was not delivered.
type Sender func(ctx context.Context, a Alert) error

// claim marks an alert as taken by consumer; it reports false when another
// replica took it first.
func (o *Outbox) claim(ctx context.Context, consumer, id string) (bool, error) {
	res, err := o.db.Exec(ctx, `INSERT INTO alerts_delivered (alert_id, consumer, at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		id, consumer, o.now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("claiming alert: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// release gives a claimed alert back after a failed delivery.
func (o *Outbox) release(ctx context.Context, consumer, id string) error {
	_, err := o.db.Exec(ctx, `DELETE FROM alerts_delivered WHERE alert_id = ? AND consumer = ?`, id, consumer)
	return err
}

// Deliver sends up to limit of consumer's pending alerts, oldest first, and
// returns how many it sent. Each alert is claimed with one atomic insert
// before it is sent, so replicas delivering at once never send an alert
// twice; a failed send gives the claim back and the alert is tried again
// next time. (A process killed between claim and send loses that one alert
// for this consumer: an alert is advice, never money.)
func (o *Outbox) Deliver(ctx context.Context, consumer string, limit int, send Sender) (int, error) {
	pending, err := o.Pending(ctx, consumer, limit)
	if err != nil {
		return 0, err
	}
	sent := 0
	var errs []error
	for _, a := range pending {
		ok, err := o.claim(ctx, consumer, a.ID)
		if err != nil {
			return sent, err
		}
		if !ok {
			continue
		}
		if err := send(ctx, a); err != nil {
			errs = append(errs, fmt.Errorf("alert %s: %w", a.ID, err))
			if rerr := o.release(context.WithoutCancel(ctx), consumer, a.ID); rerr != nil {
				errs = append(errs, rerr)
			}
			continue
		}
		sent++
	}
	return sent, errors.Join(errs...)
}

// Run delivers consumer's alerts every period until ctx ends. Errors go to
// report (which may be nil).
func (o *Outbox) Run(ctx context.Context, consumer string, period time.Duration, send Sender, report func(error)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if _, err := o.Deliver(ctx, consumer, 100, send); err != nil && report != nil && ctx.Err() == nil {
			report(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SMSText is the SMS an alert becomes, and whether it goes by SMS at all.
// One SMS per sitting: a login alert goes by SMS only when the customer
// typed the password (a new passport session); a login by single sign-on
// to another platform, or a stronger tool inside the same session, is
// in the messenger inbox only. Failed-login alerts (already one per hour)
// and lockouts always go. Risk and balance alerts go when their SMS flag,
// set from the customer's preferences when they were posted, says so.
// Other kinds are not sent by SMS here.
func SMSText(a Alert, loc *time.Location) (string, bool) {
	if loc == nil {
		loc = time.UTC
	}
	switch a.Kind {
	case KindLogin:
		var l Login
		if json.Unmarshal(a.Body, &l) != nil || l.SSO || l.StepUp {
			return "", false
		}
		return LoginText(l, loc), true
	case KindLoginFailed:
		var f LoginFailed
		if json.Unmarshal(a.Body, &f) != nil {
			return "", false
		}
		return fmt.Sprintf("[egate] Failed sign-in to %s at %s from %s: wrong %s. Not you? Change your password or call the bank.",
			f.Client, f.Time.In(loc).Format("2006-01-02 15:04"), f.IP, f.Factor), true
	case KindLocked:
		var l Locked
		if json.Unmarshal(a.Body, &l) != nil {
			return "", false
		}
		until := "only the bank's service desk can unlock it"
		if !l.Until.IsZero() {
			until = "it unlocks at " + l.Until.In(loc).Format("2006-01-02 15:04")
		}
		return fmt.Sprintf("[egate] Your %s is locked after too many failed sign-ins (last at %s from %s); %s. Not you? Call the bank at once.",
			l.Factor, l.Time.In(loc).Format("2006-01-02 15:04"), l.IP, until), true
	case KindTxRisk:
		var r TxRisk
		if json.Unmarshal(a.Body, &r) != nil || !r.SMS {
			return "", false
		}
		what := map[string]string{TxDenied: "was refused", TxStepUp: "needs a stronger confirmation", TxReview: "is held for a check by the bank",
			TxApproved: "was approved by the bank: confirm it now", TxRefused: "was refused by the bank"}[r.Event]
		if what == "" {
			return "", false
		}
		return fmt.Sprintf("[egate] %s (%s) %s. Not you? Call the bank at once.", r.Text, r.Time.In(loc).Format("2006-01-02 15:04"), what), true
	case KindBalance:
		var b Balance
		if json.Unmarshal(a.Body, &b) != nil || !b.SMS {
			return "", false
		}
		sign, amt := "+", b.Amount
		if amt < 0 {
			sign, amt = "-", -amt
		}
		desc := ""
		if b.Description != "" {
			desc = " (" + b.Description + ")"
		}
		return fmt.Sprintf("[egate] Account %s %s%s %s%s at %s; balance %s %s.", b.Account, sign, money.Yuan(amt), currencyWord(b.Currency), desc,
			b.Time.In(loc).Format("2006-01-02 15:04"), money.Yuan(b.Balance), currencyWord(b.Currency)), true
	case KindTool: // always by SMS: a tool bound or revoked that the customer did not ask for is a takeover
		var tl Tool
		if json.Unmarshal(a.Body, &tl) != nil {
			return "", false
		}
		what := map[string]string{"lost": "was reported lost and no longer works", "bound": "was bound to your passport", "set": "was set or changed"}[tl.Event]
		if what == "" {
			return "", false
		}
		name := map[string]string{"gridcard": "grid card", "otp": "dynamic-password token", "ushield": "U-shield", "ushield2": "U-shield",
			"piv": "PIV card", "phone": "phone app", "atm-pin": "withdrawal PIN"}[tl.Tool]
		if name == "" {
			name = tl.Tool
		}
		if tl.Ref != "" {
			name += " " + tl.Ref
		}
		return fmt.Sprintf("[egate] Your %s %s at %s. Not you? Call the bank at once.", name, what, tl.Time.In(loc).Format("2006-01-02 15:04")), true
	}
	return "", false
}

func currencyWord(c string) string {
	if c == "CNY" {
		return "yuan"
	}
	return c
}

// LoginText is the SMS a login alert becomes: when, where and on what, and
// what to do if it was not the customer.
func LoginText(l Login, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	how := "with your password"
	if l.SSO {
		how = "through your passport session"
	}
	return fmt.Sprintf("[egate] Login to %s at %s %s from %s. Not you? Call the bank at once.",
		l.Client, l.Time.In(loc).Format("2006-01-02 15:04"), how, l.IP)
}
