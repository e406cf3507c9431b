package txauth

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/risk"
)

var errNoRows = sql.ErrNoRows

// Features reads the risk features of an intent from the database:
// velocity (intents in the last hour and day), time in the bank's zone,
// failed sign-ins and proofs in the last day, the payee (paid before),
// the customer's executed movements of 90 days, the device (seen in a
// proved intent before), the customer's and the account's age.
func (s *Service) Features(ctx context.Context, in intent.Intent) (risk.Features, error) {
	now := s.now()
	local := now.In(s.loc)
	f := risk.Features{
		Amount: in.Amount, Kind: string(in.Kind), Channel: string(in.Channel), Currency: in.Currency, Payee: in.Payee,
		Hour: int64(local.Hour()), Weekday: int64(local.Weekday()), AccountAgeDays: -1, LocationJumpKm: -1,
	}
	ms := now.UnixMilli()
	hour, day := now.Add(-time.Hour).UnixMilli(), now.Add(-24*time.Hour).UnixMilli()
	ago90 := now.Add(-90 * 24 * time.Hour).UnixMilli()
	var created int64 = -1
	var paid, seen int64
	// One statement: the customer's intents of the last 90 days read once
	// for velocity and history (before, one subquery each read its rows
	// again), the rest a subquery over its own index each; whether the
	// payee was paid and the device proved before stop at the first such
	// intent (EXISTS) instead of counting the customer's whole history.
	err := s.db.QueryRow(ctx, `SELECT
		COUNT(CASE WHEN created_ms >= ? THEN 1 END),
		COUNT(CASE WHEN created_ms >= ? THEN 1 END),
		COALESCE(SUM(CASE WHEN created_ms >= ? THEN amount END), 0),
		COUNT(CASE WHEN state = 'executed' THEN 1 END),
		COALESCE(MAX(CASE WHEN state = 'executed' THEN amount END), 0),
		COALESCE(SUM(CASE WHEN state = 'executed' THEN amount END), 0),
		(SELECT COUNT(*) FROM tx_failures WHERE customer = ? AND at_ms >= ?),
		(SELECT COALESCE(SUM(n), 0) FROM auth_failures WHERE subject = ? AND factor <> 'any' AND day IN (?, ?)),
		(SELECT COALESCE(MAX(created_ms), -1) FROM customers WHERE passport_id = ?),
		CASE WHEN EXISTS (SELECT 1 FROM tx_intents WHERE customer = ? AND payee = ? AND state = 'executed') THEN 1 ELSE 0 END,
		CASE WHEN EXISTS (SELECT 1 FROM tx_intents WHERE customer = ? AND device = ? AND device <> '' AND state IN ('granted', 'executed')) THEN 1 ELSE 0 END
		FROM tx_intents WHERE customer = ? AND created_ms >= ?`,
		hour, day, day,
		in.Customer, day,
		"pid:"+in.Customer, local.Format("2006-01-02"), local.AddDate(0, 0, -1).Format("2006-01-02"),
		in.Customer, in.Customer, in.Payee, in.Customer, in.Device,
		in.Customer, ago90,
	).Scan(&f.Count1h, &f.Count24h, &f.Amount24h, &f.HistoryCount, &f.HistoryMaxAmount, &f.HistoryAvgAmount,
		&f.FailedProofs24h, &f.FailedLogins24h, &created, &paid, &seen)
	if err != nil {
		return f, fmt.Errorf("risk features: %w", err)
	}
	if f.HistoryCount > 0 {
		f.HistoryAvgAmount /= f.HistoryCount
	}
	if created >= 0 {
		f.CustomerAgeDays = (ms - created) / (24 * 3600 * 1000)
	}
	f.PayeeKnown, f.PayeeFirstPay = paid > 0, paid == 0
	f.DeviceNew = seen == 0
	if ag, ok := s.accounts.(AccountAger); ok {
		if d, err := ag.AccountAgeDays(ctx, in.Payer); err == nil {
			f.AccountAgeDays = d
		}
	}
	return f, nil
}
