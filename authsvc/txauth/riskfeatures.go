package txauth

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/egate-bank/egate/authsvc/risk"
)

// featureTable names each risk feature (as rules write it) with its
// field, in the order of the names: the one list from which features are
// recorded and read back by the names operators know (egate admin risk
// test).
var featureTable = sortFeatures([]featureField{
	{"intent.amount", func(f *risk.Features) any { return &f.Amount }},
	{"intent.kind", func(f *risk.Features) any { return &f.Kind }},
	{"intent.channel", func(f *risk.Features) any { return &f.Channel }},
	{"intent.currency", func(f *risk.Features) any { return &f.Currency }},
	{"intent.payee", func(f *risk.Features) any { return &f.Payee }},
	{"customer.age_days", func(f *risk.Features) any { return &f.CustomerAgeDays }},
	{"account.age_days", func(f *risk.Features) any { return &f.AccountAgeDays }},
	{"velocity.count_1h", func(f *risk.Features) any { return &f.Count1h }},
	{"velocity.count_24h", func(f *risk.Features) any { return &f.Count24h }},
	{"velocity.amount_24h", func(f *risk.Features) any { return &f.Amount24h }},
	{"time.hour", func(f *risk.Features) any { return &f.Hour }},
	{"time.weekday", func(f *risk.Features) any { return &f.Weekday }},
	{"failures.logins_24h", func(f *risk.Features) any { return &f.FailedLogins24h }},
	{"failures.proofs_24h", func(f *risk.Features) any { return &f.FailedProofs24h }},
	{"payee.known", func(f *risk.Features) any { return &f.PayeeKnown }},
	{"payee.first_payment", func(f *risk.Features) any { return &f.PayeeFirstPay }},
	{"history.count", func(f *risk.Features) any { return &f.HistoryCount }},
	{"history.max_amount", func(f *risk.Features) any { return &f.HistoryMaxAmount }},
	{"history.avg_amount", func(f *risk.Features) any { return &f.HistoryAvgAmount }},
	{"device.new", func(f *risk.Features) any { return &f.DeviceNew }},
	{"device.rooted", func(f *risk.Features) any { return &f.DeviceRooted }},
	{"device.location_jump_km", func(f *risk.Features) any { return &f.LocationJumpKm }},
})

// featureField is one feature: its name and a pointer to its field
// (*int64, *string or *bool).
type featureField struct {
	name string
	ptr  func(*risk.Features) any
}

func sortFeatures(fs []featureField) []featureField {
	sort.Slice(fs, func(i, j int) bool { return fs[i].name < fs[j].name })
	return fs
}

// featureFields maps each feature name to its field in f.
func featureFields(f *risk.Features) map[string]any {
	m := make(map[string]any, len(featureTable))
	for _, ff := range featureTable {
		m[ff.name] = ff.ptr(f)
	}
	return m
}

// FeaturesJSON encodes features by their rule names: a JSON object with
// the names in order, byte for byte what encoding/json writes for the map
// of featureFields, written straight from the table (it is stored with
// every intent; the map and its reflection cost a round trip ~2%).
func FeaturesJSON(f risk.Features) []byte {
	b := make([]byte, 0, 640)
	b = append(b, '{')
	for i, ff := range featureTable {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, ff.name...)
		b = append(b, '"', ':')
		switch v := ff.ptr(&f).(type) {
		case *int64:
			b = strconv.AppendInt(b, *v, 10)
		case *string:
			b = appendJSONString(b, *v)
		case *bool:
			b = strconv.AppendBool(b, *v)
		}
	}
	return append(b, '}')
}

// appendJSONString appends s as encoding/json writes it: printable ASCII
// other than the characters it escapes goes as is; anything else through
// encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
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
