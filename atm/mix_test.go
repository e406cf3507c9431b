package atm

import (
	"errors"
	"reflect"
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
	}{
		{"largest first", 38000, std, []Notes{{1, 3}, {2, 1}, {3, 1}, {4, 1}}, nil},
		{"backtracks", 6000, []Cassette{{1, 5000, 5, CassetteOK}, {2, 2000, 5, CassetteOK}}, []Notes{{2, 3}}, nil},
		{"limited count", 30000, []Cassette{{1, 10000, 1, CassetteOK}, {2, 5000, 10, CassetteOK}}, []Notes{{1, 1}, {2, 4}}, nil},
		{"skips missing cassette", 10000, []Cassette{{1, 10000, 10, CassetteMissing}, {2, 5000, 10, CassetteOK}}, []Notes{{2, 2}}, nil},
		{"not a multiple", 1500, std, nil, ErrCannotMix},
		{"more than the ATM holds", 10000 * 1000, std, nil, ErrCannotMix},
		{"zero", 0, std, nil, ErrCannotMix},
		{"large, not a multiple, fails fast", 123456700, []Cassette{{1, 10000, 500, 0}, {2, 5000, 500, 0}, {3, 2000, 500, 0}, {4, 1000, 500, 0}}, nil, ErrCannotMix},
		{"large unmakeable multiple stays bounded", 9990000, []Cassette{{1, 10000, 500, 0}, {2, 5000, 500, 0}, {3, 2000, 500, 0}, {4, 1000, 500, 0}}, nil, ErrCannotMix},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Mix(tc.amount, tc.cassettes)
			if !errors.Is(err, tc.err) || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Mix(%d) = %v, %v; want %v, %v", tc.amount, got, err, tc.want, tc.err)
			}
		})
	}
}
