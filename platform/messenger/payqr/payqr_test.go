package payqr

import "testing"

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text, url string
		ok              bool
	}{
		{"ours", Text("http://127.0.0.1:8083/pay/abc"), "http://127.0.0.1:8083/pay/abc", true},
		{"https", "EGPAY1:https://m.bank.example/pay/x", "https://m.bank.example/pay/x", true},
		{"no prefix", "http://127.0.0.1:8083/pay/abc", "", false},
		{"another order QR", "EGQ1.abc.1.def", "", false},
		{"not a pay page", "EGPAY1:http://evil.example/login", "", false},
		{"not http", "EGPAY1:javascript:alert(1)//pay/", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u, ok := Parse(tc.text)
			if ok != tc.ok || (ok && u != tc.url) {
				t.Fatalf("Parse(%q) = %q %v", tc.text, u, ok)
			}
		})
	}
}
