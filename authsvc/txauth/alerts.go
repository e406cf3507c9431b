package txauth

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
)

// Preferences returns a customer's alert preferences (every kind, SMS for
// every amount, when the customer set none).
func (s *Service) Preferences(ctx context.Context, customer string) (txclient.Preferences, error) {
	p := txclient.Preferences{Customer: customer, Risk: true, Balance: true}
	var risk, bal int
	err := s.db.QueryRow(ctx, `SELECT risk, balance, sms_min_amount FROM tx_alert_prefs WHERE customer = ?`, customer).Scan(&risk, &bal, &p.SMSMinAmount)
	if err != nil && !isNoRows(err) {
		return p, unavailable(fmt.Errorf("reading alert preferences: %w", err))
	}
	if err == nil {
		p.Risk, p.Balance = risk == 1, bal == 1
	}
	return p, nil
}

// SetPreferences stores a customer's alert preferences.
func (s *Service) SetPreferences(ctx context.Context, p txclient.Preferences) (txclient.Preferences, error) {
	if p.Customer == "" || len(p.Customer) > 64 {
		return p, ErrBadRequest.with("customer: give the passport id")
	}
	if p.SMSMinAmount < 0 || p.SMSMinAmount > intent.MaxAmount {
		return p, &Error{Status: http.StatusBadRequest, Code: "bad_amount", Msg: "sms_min_amount: give 0 or more fen"}
	}
	_, err := s.db.Exec(ctx, `INSERT INTO tx_alert_prefs (customer, risk, balance, sms_min_amount, updated_ms) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (customer) DO UPDATE SET risk = excluded.risk, balance = excluded.balance, sms_min_amount = excluded.sms_min_amount, updated_ms = excluded.updated_ms`,
		p.Customer, b2i(p.Risk), b2i(p.Balance), p.SMSMinAmount, s.now().UnixMilli())
	if err != nil {
		return p, unavailable(fmt.Errorf("saving alert preferences: %w", err))
	}
	return p, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// riskAlert tells the customer about an intent denied, stepped up, held,
// approved or refused: in the messenger inbox, and by SMS when the
// preferences say so.
func (s *Service) riskAlert(ctx context.Context, in intent.Intent, hash, event, message string) error {
	p, err := s.Preferences(ctx, in.Customer)
	if err != nil {
		return err
	}
	if !p.Risk {
		return nil
	}
	_, _, err = s.alerts.PostOnce(ctx, in.Customer, alerts.KindTxRisk, "tx:"+event+":"+hash, alerts.TxRisk{
		Time: s.now().UTC(), Intent: hash, Event: event, Amount: in.Amount, Text: textEN(in), Message: message, SMS: in.Amount >= p.SMSMinAmount,
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// Balance posts a balance-change alert for a movement a platform executed.
// The same id posts once. posted is false when it was posted before or the
// customer turned balance alerts off.
func (s *Service) Balance(ctx context.Context, a txclient.BalanceAlert) (posted bool, err error) {
	for _, f := range []struct{ name, v string }{{"id", a.ID}, {"customer", a.Customer}, {"account", a.Account}} {
		if f.v == "" || len(f.v) > 128 || strings.ContainsFunc(f.v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return false, &Error{Status: http.StatusBadRequest, Code: "missing_field", Msg: f.name + ": give 1 to 128 printable characters"}
		}
	}
	if a.Amount == 0 || a.Amount > intent.MaxAmount || a.Amount < -intent.MaxAmount {
		return false, &Error{Status: http.StatusBadRequest, Code: "bad_amount", Msg: "amount: give the change in fen, not zero, negative for money out"}
	}
	if a.Balance > intent.MaxAmount*10 || a.Balance < -intent.MaxAmount*10 {
		return false, &Error{Status: http.StatusBadRequest, Code: "bad_amount", Msg: "balance: out of range"}
	}
	if !slices.Contains(intent.Currencies, a.Currency) {
		return false, &Error{Status: http.StatusBadRequest, Code: "bad_currency", Msg: "currency: must be one of " + strings.Join(intent.Currencies, ", ")}
	}
	if len(a.Description) > 128 {
		return false, &Error{Status: http.StatusBadRequest, Code: "bad_field", Msg: "description: at most 128 bytes"}
	}
	owns, err := s.accounts.Owns(ctx, a.Customer, a.Account)
	if err != nil {
		return false, unavailable(err)
	}
	if !owns {
		return false, ErrPayer.with("the account is not one of the customer's accounts")
	}
	p, err := s.Preferences(ctx, a.Customer)
	if err != nil {
		return false, err
	}
	if !p.Balance {
		return false, nil
	}
	amt := a.Amount
	if amt < 0 {
		amt = -amt
	}
	_, posted, err = s.alerts.PostOnce(ctx, a.Customer, alerts.KindBalance, "balance:"+a.Customer+":"+a.ID, alerts.Balance{
		Time: s.now().UTC(), Account: Mask(a.Account), Amount: a.Amount, Balance: a.Balance, Currency: a.Currency, Description: a.Description, SMS: amt >= p.SMSMinAmount,
	})
	if err != nil {
		return false, unavailable(err)
	}
	return posted, nil
}
