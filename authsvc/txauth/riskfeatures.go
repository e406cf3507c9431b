package txauth

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/egate-bank/egate/authsvc/risk"
)

// featureFields maps each risk feature name (as rules write it) to its
// field, so features are recorded and read back by the names operators
// know (egate admin risk test).
func featureFields(f *risk.Features) map[string]any {
	return map[string]any{
		"intent.amount": &f.Amount, "intent.kind": &f.Kind, "intent.channel": &f.Channel, "intent.currency": &f.Currency, "intent.payee": &f.Payee,
		"customer.age_days": &f.CustomerAgeDays, "account.age_days": &f.AccountAgeDays,
		"velocity.count_1h": &f.Count1h, "velocity.count_24h": &f.Count24h, "velocity.amount_24h": &f.Amount24h,
		"time.hour": &f.Hour, "time.weekday": &f.Weekday,
		"failures.logins_24h": &f.FailedLogins24h, "failures.proofs_24h": &f.FailedProofs24h,
		"payee.known": &f.PayeeKnown, "payee.first_payment": &f.PayeeFirstPay,
		"history.count": &f.HistoryCount, "history.max_amount": &f.HistoryMaxAmount, "history.avg_amount": &f.HistoryAvgAmount,
		"device.new": &f.DeviceNew, "device.rooted": &f.DeviceRooted, "device.location_jump_km": &f.LocationJumpKm,
	}
}

// FeaturesJSON encodes features by their rule names.
func FeaturesJSON(f risk.Features) []byte {
	m := featureFields(&f)
	out := make(map[string]any, len(m))
	for k, p := range m {
		switch v := p.(type) {
		case *int64:
			out[k] = *v
		case *string:
			out[k] = *v
		case *bool:
			out[k] = *v
		}
	}
	b, _ := json.Marshal(out) // sorted keys
	return b
}

// ParseFeatures reads features by their rule names; names not given keep
// their zero value (account.age_days and device.location_jump_km: -1,
// unknown). An unknown name or a value of the wrong type is an error.
func ParseFeatures(b []byte) (risk.Features, error) {
	f := risk.Features{AccountAgeDays: -1, LocationJumpKm: -1}
	if len(b) == 0 {
		return f, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return f, fmt.Errorf("features: not a JSON object of feature names")
	}
	m := featureFields(&f)
	for k, v := range raw {
		p, ok := m[k]
		if !ok {
			names := make([]string, 0, len(m))
			for n := range m {
				names = append(names, n)
			}
			sort.Strings(names)
			return f, fmt.Errorf("features: unknown feature %q (known: %v)", k, names)
		}
		if err := json.Unmarshal(v, p); err != nil {
			return f, fmt.Errorf("features: %s has the wrong type", k)
		}
	}
	return f, nil
}
