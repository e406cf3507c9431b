// Package money formats and parses amounts. egate keeps every amount as an
// int64 number of fen (1 yuan = 100 fen); yuan with two decimals exist only
// at the edges, for people to read and type.
package money

import (
	"errors"
	"strconv"
	"strings"
)

// Yuan formats fen as yuan with two decimals and thousands grouping:
// 123456789 → "1,234,567.89", -5 → "-0.05".
func Yuan(fen int64) string {
	neg := fen < 0
	u := uint64(fen)
	if neg {
		u = -u // also right for math.MinInt64
	}
	whole := strconv.FormatUint(u/100, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i := range len(whole) {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(whole[i])
	}
	cents := u % 100
	b.WriteByte('.')
	b.WriteByte(byte('0' + cents/10))
	b.WriteByte(byte('0' + cents%10))
	return b.String()
}

// ErrAmount reports an amount that is not a positive number of yuan with at
// most two decimals.
var ErrAmount = errors.New("want a positive amount in yuan with at most two decimals, e.g. 350 or 350.25")

// MaxYuan bounds what ParseYuan accepts: 100 billion yuan.
const MaxYuan = 100_000_000_000

// ParseYuan reads "350", "350.2" or "350.25" (yuan, optional thousands
// commas in the whole part: "1,234.50") into fen. Signs, exponents, more than
// two decimals, zero and amounts above MaxYuan are refused with ErrAmount.
func ParseYuan(s string) (int64, error) {
	s = strings.TrimSpace(s)
	whole, frac, dot := strings.Cut(s, ".")
	if strings.Contains(whole, ",") {
		groups := strings.Split(whole, ",")
		for i, g := range groups {
			if (i == 0 && (len(g) == 0 || len(g) > 3)) || (i > 0 && len(g) != 3) {
				return 0, ErrAmount
			}
		}
		whole = strings.Join(groups, "")
	}
	if whole == "" || len(frac) > 2 || (dot && frac == "") || !digits(whole) || !digits(frac) {
		return 0, ErrAmount
	}
	y, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || y > MaxYuan {
		return 0, ErrAmount
	}
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 2-len(frac)), 10, 64)
	}
	fen := y*100 + f
	if fen == 0 {
		return 0, ErrAmount
	}
	return fen, nil
}

func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
