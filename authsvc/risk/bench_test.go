package risk

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// manyRules is a set of n rules of the shapes a bank writes: thresholds on
// amounts and counts, conjunctions with device and payee flags, arithmetic
// against history.
func manyRules(n int) map[string][]byte {
	var b strings.Builder
	b.WriteString("rules:\n")
	shapes := []string{
		"intent.amount >= %d && device.new",
		"velocity.count_1h >= %d",
		"intent.amount > %d && !payee.known && payee.first_payment",
		"history.count >= 5 && intent.amount > history.max_amount * 3 + %d",
		"time.hour < 6 && intent.amount >= %d && intent.kind == 'transfer'",
		"device.location_jump_km > %d && intent.channel in ['web', 'app']",
		"failures.proofs_24h >= %d || failures.logins_24h >= 10",
		"velocity.amount_24h + intent.amount > %d",
	}
	for i := range n {
		cond := fmt.Sprintf(shapes[i%len(shapes)], 1_000_000+i*997)
		fmt.Fprintf(&b, "  - name: r%d\n    when: %s\n    action: step-up\n    level: %d\n    reason: rule %d\n", i, cond, 3+i%3, i)
	}
	return map[string][]byte{"many.yaml": []byte(b.String())}
}

// BenchmarkRiskDecide: one decision, database excluded, with the default
// rule set and with 500 rules. p50-ns and p99-ns are over every decision of
// the run; run with -cpu 1 for the per-core figure (goal: p99 ≤ 2 ms at 500
// rules).
func BenchmarkRiskDecide(b *testing.B) {
	for _, bc := range []struct {
		name  string
		files map[string][]byte
	}{
		{"default", Builtin()},
		{"rules-500", manyRules(500)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := Compile(bc.files)
			if err != nil {
				b.Fatal(err)
			}
			f := Features{Amount: 1_234_500, Kind: "transfer", Channel: "web", Currency: "CNY", Payee: "6222",
				CustomerAgeDays: 300, Count1h: 2, Count24h: 5, Amount24h: 3_000_000, Hour: 3, DeviceNew: true,
				PayeeFirstPay: true, HistoryCount: 12, HistoryMaxAmount: 400_000, LocationJumpKm: 20}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				d := s.Decide(&f, 3)
				lat = append(lat, time.Since(t0))
				if d.Action == "" {
					b.Fatal("no decision")
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
			}
		})
	}
}
