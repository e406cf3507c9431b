package atm

import (
	"errors"
	"fmt"
	"sort"

	"github.com/egate-bank/egate/internal/money"
)

// ErrCannotMix means the cassettes cannot make up the amount.
var ErrCannotMix = errors.New("atm: cassettes cannot make up the amount")

// Mix chooses notes for amount (fen) from the cassettes in a status report:
// largest denominations first, backtracking when a remainder cannot be made.
// Cassettes that are missing, empty or jammed are skipped.
func Mix(amount int64, cassettes []Cassette) ([]Notes, error) {
	if amount <= 0 {
		return nil, fmt.Errorf("amount %s yuan: %w: the amount must be positive", money.Yuan(amount), ErrCannotMix)
	}
	cs := make([]Cassette, 0, len(cassettes))
	for _, c := range cassettes {
		if c.Denom > 0 && c.Count > 0 && (c.State == CassetteOK || c.State == CassetteLow) {
			cs = append(cs, c)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Denom > cs[j].Denom })
	var g, total int64
	for _, c := range cs {
		g = gcd(g, c.Denom)
		total += c.Denom * int64(c.Count)
	}
	switch {
	case g == 0:
		return nil, fmt.Errorf("amount %s yuan: %w: no cassette in service holds notes", money.Yuan(amount), ErrCannotMix)
	case amount%g != 0:
		return nil, fmt.Errorf("amount %s yuan: %w: not a multiple of %s yuan", money.Yuan(amount), ErrCannotMix, money.Yuan(g))
	case amount > total:
		return nil, fmt.Errorf("amount %s yuan: %w: the cassettes in service hold %s yuan", money.Yuan(amount), ErrCannotMix, money.Yuan(total))
	}
	counts := make([]int, len(cs))
	budget := 200000 // search steps; a real cassette set needs a handful
	var try func(i int, rest int64) bool
	try = func(i int, rest int64) bool {
		if rest == 0 {
			return true
		}
		if budget--; i == len(cs) || budget < 0 {
			return false
		}
		n := min(rest/cs[i].Denom, int64(cs[i].Count))
		for ; n >= 0; n-- {
			counts[i] = int(n)
			if try(i+1, rest-n*cs[i].Denom) {
				return true
			}
		}
		counts[i] = 0
		return false
	}
	if !try(0, amount) {
		return nil, fmt.Errorf("amount %s yuan: %w: not with the notes left in the cassettes", money.Yuan(amount), ErrCannotMix)
	}
	var out []Notes
	for i, n := range counts {
		if n > 0 {
			out = append(out, Notes{Cassette: cs[i].ID, Count: uint16(n)})
		}
	}
	return out, nil
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
