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
	q := func(what string, query string, args []any, dst ...any) error {
		if err := s.db.QueryRow(ctx, query, args...).Scan(dst...); err != nil && err != sql.ErrNoRows {
			return fmt.Errorf("risk features: %s: %w", what, err)
		}
		return nil
	}
	var created int64 = -1
	steps := []struct {
		what  string
		query string
		args  []any
		dst   []any
	}{
		{"velocity", `SELECT COALESCE(SUM(CASE WHEN created_ms >= ? THEN 1 ELSE 0 END), 0), COUNT(*), COALESCE(SUM(amount), 0) FROM tx_intents WHERE customer = ? AND created_ms >= ?`,
			[]any{hour, in.Customer, day}, []any{&f.Count1h, &f.Count24h, &f.Amount24h}},
		{"history", `SELECT COUNT(*), COALESCE(MAX(amount), 0), COALESCE(SUM(amount), 0) FROM tx_intents WHERE customer = ? AND state = 'executed' AND created_ms >= ?`,
			[]any{in.Customer, now.Add(-90 * 24 * time.Hour).UnixMilli()}, []any{&f.HistoryCount, &f.HistoryMaxAmount, &f.HistoryAvgAmount}},
		{"failed proofs", `SELECT COUNT(*) FROM tx_failures WHERE customer = ? AND at_ms >= ?`, []any{in.Customer, day}, []any{&f.FailedProofs24h}},
		{"failed sign-ins", `SELECT COALESCE(SUM(n), 0) FROM auth_failures WHERE subject = ? AND factor <> 'any' AND day IN (?, ?)`,
			[]any{"pid:" + in.Customer, local.Format("2006-01-02"), local.AddDate(0, 0, -1).Format("2006-01-02")}, []any{&f.FailedLogins24h}},
		{"customer", `SELECT created_ms FROM customers WHERE passport_id = ?`, []any{in.Customer}, []any{&created}},
	}
	for _, st := range steps {
		if err := q(st.what, st.query, st.args, st.dst...); err != nil {
			return f, err
		}
	}
	if f.HistoryCount > 0 {
		f.HistoryAvgAmount /= f.HistoryCount
	}
	if created >= 0 {
		f.CustomerAgeDays = (ms - created) / (24 * 3600 * 1000)
	}
	var paid, seen int64
	if err := q("payee", `SELECT COUNT(*) FROM tx_intents WHERE customer = ? AND payee = ? AND state = 'executed'`, []any{in.Customer, in.Payee}, &paid); err != nil {
		return f, err
	}
	f.PayeeKnown, f.PayeeFirstPay = paid > 0, paid == 0
	if in.Device != "" {
		if err := q("device", `SELECT COUNT(*) FROM tx_intents WHERE customer = ? AND device = ? AND state IN ('granted', 'executed')`, []any{in.Customer, in.Device}, &seen); err != nil {
			return f, err
		}
	}
	f.DeviceNew = seen == 0
	if ag, ok := s.accounts.(AccountAger); ok {
		if d, err := ag.AccountAgeDays(ctx, in.Payer); err == nil {
			f.AccountAgeDays = d
		}
	}
	return f, nil
}
