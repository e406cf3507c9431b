package atm

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestMix(t *testing.T) {
	t.Parallel()
	std := []Cassette{{1, 10000, 10, CassetteOK}, {2, 5000, 10, CassetteOK}, {3, 2000, 10, CassetteOK}, {4, 1000, 10, CassetteOK}}
	for _, tc := range []struct {
		name      string
		amount    int64
		cassettes []Cassette
		want      []Notes
		err       error
		why       string // in the error: what an operator can act on
	}{
		{"largest first", 38000, std, []Notes{{1, 3}, {2, 1}, {3, 1}, {4, 1}}, nil, ""},
		{"backtracks", 6000, []Cassette{{1, 5000, 5, CassetteOK}, {2, 2000, 5, CassetteOK}}, []Notes{{2, 3}}, nil, ""},
		{"limited count", 30000, []Cassette{{1, 10000, 1, CassetteOK}, {2, 5000, 10, CassetteOK}}, []Notes{{1, 1}, {2, 4}}, nil, ""},
		{"skips missing cassette", 10000, []Cassette{{1, 10000, 10, CassetteMissing}, {2, 5000, 10, CassetteOK}}, []Notes{{2, 2}}, nil, ""},
		{"not a multiple", 1500, std, nil, ErrCannotMix, "amount 15.00 yuan: atm: cassettes cannot make up the amount: not a multiple of 10.00 yuan"},
		{"more than the ATM holds", 10000 * 1000, std, nil, ErrCannotMix, "the cassettes in service hold 1,800.00 yuan"},
		{"zero", 0, std, nil, ErrCannotMix, "must be positive"},
		{"no cassette in service", 10000, []Cassette{{1, 10000, 0, CassetteOK}, {2, 5000, 10, CassetteMissing}}, nil, ErrCannotMix, "no cassette in service holds notes"},
		{"not with the notes left", 3000, []Cassette{{1, 5000, 5, CassetteOK}, {2, 2000, 5, CassetteOK}}, nil, ErrCannotMix, "not with the notes left"},
		{"large, not a multiple, fails fast", 123456700, []Cassette{{1, 10000, 500, 0}, {2, 5000, 500, 0}, {3, 2000, 500, 0}, {4, 1000, 500, 0}}, nil, ErrCannotMix, "not a multiple of 10.00 yuan"},
		{"large unmakeable multiple stays bounded", 9990000, []Cassette{{1, 10000, 500, 0}, {2, 5000, 500, 0}, {3, 2000, 500, 0}, {4, 1000, 500, 0}}, nil, ErrCannotMix, "hold 90,000.00 yuan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Mix(tc.amount, tc.cassettes)
			if !errors.Is(err, tc.err) || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Mix(%d) = %v, %v; want %v, %v", tc.amount, got, err, tc.want, tc.err)
			}
			if err != nil && !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Mix(%d): %q does not say %q", tc.amount, err, tc.why)
			}
		})
	}
}
