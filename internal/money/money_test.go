package money

import (
	"errors"
	"math"
	"testing"
)

func TestYuan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		fen  int64
		want string
	}{
		{0, "0.00"}, {5, "0.05"}, {100, "1.00"}, {99999, "999.99"}, {100000, "1,000.00"},
		{123456789, "1,234,567.89"}, {-5, "-0.05"}, {-100000, "-1,000.00"},
		{math.MaxInt64, "92,233,720,368,547,758.07"}, {math.MinInt64, "-92,233,720,368,547,758.08"},
	} {
		if got := Yuan(tc.fen); got != tc.want {
			t.Errorf("Yuan(%d) = %q, want %q", tc.fen, got, tc.want)
		}
	}
}

func TestParseYuan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64 // 0: refused
	}{
		{"350", 35000}, {"350.2", 35020}, {"350.25", 35025}, {" 0.01 ", 1}, {"1,234.50", 123450},
		{"1,234,567", 123456700}, {"100000000000", 10000000000000},
		{"", 0}, {"0", 0}, {"0.00", 0}, {"-5", 0}, {"+5", 0}, {"1e3", 0}, {"1.234", 0}, {"1.", 0},
		{".5", 0}, {"12,34", 0}, {",123", 0}, {"1234,567", 0}, {"1 000", 0}, {"100000000001", 0},
		{"99999999999999999999", 0}, {"五", 0}, {"NaN", 0},
	} {
		got, err := ParseYuan(tc.in)
		if tc.want == 0 {
			if !errors.Is(err, ErrAmount) {
				t.Errorf("ParseYuan(%q) = %d, %v; want ErrAmount", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseYuan(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseYuan: whatever is accepted formats back to an amount that parses
// to the same fen.
func FuzzParseYuan(f *testing.F) {
	for _, s := range []string{"350", "1,234.50", "0.01", "1.", "-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fen, err := ParseYuan(s)
		if err != nil {
			return
		}
		if fen <= 0 {
			t.Fatalf("ParseYuan(%q) = %d", s, fen)
		}
		back, err := ParseYuan(Yuan(fen))
		if err != nil || back != fen {
			t.Fatalf("%q → %d → %q → %d, %v", s, fen, Yuan(fen), back, err)
		}
	})
}
