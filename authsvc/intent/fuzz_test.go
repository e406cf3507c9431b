package intent

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecode: any input either decodes to a valid intent or is refused with
// an *Error; a decoded intent survives a JSON round trip with the same hash.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"amount":1e3}`))
	f.Add([]byte(`{"amount":-0,"customer":"x"}`))
	f.Add([]byte(`{"customer":"a","customer":"b"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"customer":"a","channel":"web","kind":"transfer","payer":"1","payee":"2","amount":1,"currency":"CNY","idempotency_key":"k","lang":"zh-CN"}`))
	f.Add([]byte(`{"customer":"a","channel":"web","kind":"transfer","payer":"1","payee":"2","amount":1,"currency":"CNY","idempotency_key":"k","lang":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := Decode(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if err := in.Validate(); err != nil {
			t.Fatalf("decoded an invalid intent: %v", err)
		}
		again, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("re-encoded intent refused: %v", err)
		}
		if back.Hash() != in.Hash() {
			t.Fatal("a JSON round trip changed the hash")
		}
	})
}

// FuzzCanonical: two intents have the same canonical form only if they are
// equal (the optional language, absent or not, included).
func FuzzCanonical(f *testing.F) {
	f.Add("c", "ab", "c", int64(1), "k", "", "c", "a", "bc", int64(1), "k", "")
	f.Add("c", "a", "b", int64(1), "k", "", "c", "a", "b", int64(1), "k", "en")
	f.Add("c", "a", "b", int64(1), "k\x00\x00\x00\x05zh-CN", "", "c", "a", "b", int64(1), "k", "zh-CN")
	f.Fuzz(func(t *testing.T, c1, p1, q1 string, a1 int64, k1, l1, c2, p2, q2 string, a2 int64, k2, l2 string) {
		x := Intent{Customer: c1, Payer: p1, Payee: q1, Amount: a1, IdempotencyKey: k1, Lang: l1, Channel: Web, Kind: Transfer, Currency: "CNY"}
		y := Intent{Customer: c2, Payer: p2, Payee: q2, Amount: a2, IdempotencyKey: k2, Lang: l2, Channel: Web, Kind: Transfer, Currency: "CNY"}
		if bytes.Equal(x.Canonical(), y.Canonical()) != (x == y) {
			t.Fatalf("canonical equality %v differs from value equality for %+v and %+v", bytes.Equal(x.Canonical(), y.Canonical()), x, y)
		}
	})
}
