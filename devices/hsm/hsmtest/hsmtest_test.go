package hsmtest

import (
	"context"
	"errors"
	"testing"

	"github.com/egate-bank/egate/devices/hsm"
)

func TestMain(m *testing.M) { Main(m) }

func TestTokens(t *testing.T) {
	ctx := context.Background()
	extra := hsm.KeySpec{Label: "hsmtest-extra", Type: hsm.KeyECDSAP256}
	// Parallel callers asking for the same extra key get one key.
	t.Run("parallel", func(t *testing.T) {
		for _, name := range []string{"a", "b", "c", "d"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				Open(t, extra)
			})
		}
	})
	s := Open(t)
	keys, err := s.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, k := range keys {
		count[k.Label]++
	}
	for _, spec := range append(hsm.StandardKeys(), extra) {
		// An asymmetric key is a pair: Keys lists the pair once.
		if count[spec.Label] != 1 {
			t.Errorf("key %q listed %d times on %s, want once (all keys: %v)", spec.Label, count[spec.Label], Token, keys)
		}
	}
	e := OpenEmpty(t)
	if _, err := e.FindKey(ctx, hsm.LabelHMAC); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Fatalf("FindKey on %s: %v, want ErrKeyNotFound", EmptyToken, err)
	}
}
