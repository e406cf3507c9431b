package alerts

import (
	"context"
	"errors"
	"fmt"
	"time"
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
