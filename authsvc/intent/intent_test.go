package intent

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const good = `{"customer":"pid-alice","channel":"web","kind":"transfer","payer":"6222000000000001",
"payee":"6222000000000002","amount":123456,"currency":"CNY","device":"fp-1","client_ip":"192.0.2.7",
"idempotency_key":"k-1"}`

func TestDecodeGood(t *testing.T) {
	in, err := Decode(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	want := Intent{Customer: "pid-alice", Channel: Web, Kind: Transfer, Payer: "6222000000000001",
		Payee: "6222000000000002", Amount: 123456, Currency: "CNY", Device: "fp-1", ClientIP: "192.0.2.7",
		IdempotencyKey: "k-1"}
	if in != want {
		t.Fatalf("got %+v\nwant %+v", in, want)
	}
}

// TestDecodeWith: a member named beside the intent is handed back raw and
// leaves the intent and its hash as they are without it; absent, it stays
// nil; any other unknown field is refused as by Decode.
func TestDecodeWith(t *testing.T) {
	plain, err := Decode(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, body, raw, code string
	}{
		{name: "with it", body: with(t, "challenge", `{"factor":"otp"}`), raw: `{"factor":"otp"}`},
		{name: "without it", body: good},
		{name: "another unknown field", body: with(t, "challenges", `{"factor":"otp"}`), code: "unknown_field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw json.RawMessage
			in, err := DecodeWith(strings.NewReader(tc.body), map[string]*json.RawMessage{"challenge": &raw})
			if tc.code != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tc.code {
					t.Fatalf("error %v, want %s", err, tc.code)
				}
				return
			}
			if err != nil || in != plain || in.Hash() != plain.Hash() || string(raw) != tc.raw {
				t.Fatalf("%+v %v, raw %q", in, err, raw)
			}
		})
	}
	if _, err := Decode(strings.NewReader(with(t, "challenge", `{"factor":"otp"}`))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Decode took a challenge: %v", err)
	}
}

// with returns good with one field replaced by raw JSON (or removed when raw
// is empty).
func with(t *testing.T, field, raw string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(good), &m); err != nil {
		t.Fatal(err)
	}
	if raw == "" {
		delete(m, field)
	} else {
		m[field] = json.RawMessage(raw)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecodeBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, field, code string
	}{
		{"not json", `{"customer":`, "", "bad_json"},
		{"array", `[1,2]`, "", "bad_json"},
		{"two objects", good + good, "", "bad_json"},
		{"trailing garbage", good + ` x`, "", "bad_json"},
		{"unknown field", with(t, "memo", `"hi"`), "memo", "unknown_field"},
		{"zero amount", with(t, "amount", `0`), "amount", "bad_amount"},
		{"negative amount", with(t, "amount", `-100`), "amount", "bad_amount"},
		{"minus zero", with(t, "amount", `-0`), "amount", "bad_amount"},
		{"fractional fen", with(t, "amount", `1.5`), "amount", "bad_amount"},
		{"integral float", with(t, "amount", `100.0`), "amount", "bad_amount"},
		{"exponent", with(t, "amount", `1e3`), "amount", "bad_amount"},
		{"string amount", with(t, "amount", `"100"`), "amount", "bad_amount"},
		{"null amount", with(t, "amount", `null`), "amount", "bad_amount"},
		{"overflowing int64", with(t, "amount", `9223372036854775808`), "amount", "bad_amount"},
		{"above the maximum", with(t, "amount", `10000000000001`), "amount", "bad_amount"},
		{"missing amount", with(t, "amount", ""), "amount", "missing_field"},
		{"unknown currency", with(t, "currency", `"XTS"`), "currency", "bad_currency"},
		{"lower-case currency", with(t, "currency", `"cny"`), "currency", "bad_currency"},
		{"unknown channel", with(t, "channel", `"fax"`), "channel", "bad_channel"},
		{"unknown kind", with(t, "kind", `"loan"`), "kind", "bad_kind"},
		{"no customer", with(t, "customer", ""), "customer", "missing_field"},
		{"no payer", with(t, "payer", `""`), "payer", "missing_field"},
		{"no idempotency key", with(t, "idempotency_key", ""), "idempotency_key", "missing_field"},
		{"number as payee", with(t, "payee", `6222`), "payee", "bad_field"},
		{"control character", with(t, "payee", `"62\u0000"`), "payee", "bad_field"},
		{"payer pays itself", with(t, "payee", `"6222000000000001"`), "payee", "bad_field"},
		{"bad client ip", with(t, "client_ip", `"10.0.0.300"`), "client_ip", "bad_field"},
		{"long key", with(t, "idempotency_key", `"`+strings.Repeat("k", 129)+`"`), "idempotency_key", "bad_field"},
		{"unknown language", with(t, "lang", `"fr"`), "lang", "bad_field"},
		{"language of the pages, not BCP 47", with(t, "lang", `"zh"`), "lang", "bad_field"},
		{"language as a number", with(t, "lang", `1`), "lang", "bad_field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decode(strings.NewReader(tc.body))
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if e.Field != tc.field || e.Code != tc.code {
				t.Fatalf("field %q code %q (%v), want field %q code %q", e.Field, e.Code, e, tc.field, tc.code)
			}
			if e.Msg == "" {
				t.Fatal("no message for a person")
			}
		})
	}
}

// Every field is bound: changing any one changes the hash.
func TestHashBindsEveryField(t *testing.T) {
	base, err := Decode(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	h0 := base.Hash()
	for _, tc := range []struct {
		name string
		f    func(*Intent)
	}{
		{"customer", func(in *Intent) { in.Customer += "x" }},
		{"channel", func(in *Intent) { in.Channel = App }},
		{"kind", func(in *Intent) { in.Kind = Payment }},
		{"payer", func(in *Intent) { in.Payer += "9" }},
		{"payee", func(in *Intent) { in.Payee += "9" }},
		{"amount by one fen", func(in *Intent) { in.Amount++ }},
		{"device", func(in *Intent) { in.Device = "fp-2" }},
		{"client ip", func(in *Intent) { in.ClientIP = "192.0.2.8" }},
		{"idempotency key", func(in *Intent) { in.IdempotencyKey = "k-2" }},
		{"language set to Chinese", func(in *Intent) { in.Lang = LangZH }},
		{"language set to English", func(in *Intent) { in.Lang = LangEN }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			tc.f(&in)
			if in.Hash() == h0 {
				t.Fatalf("changing %s left the hash unchanged", tc.name)
			}
		})
	}
	if base.Hash() != sha256.Sum256(base.Canonical()) {
		t.Fatal("Hash is not SHA-256 of Canonical")
	}
}

// Moving bytes from one field to the next never gives the same encoding (a
// plain concatenation would: "ab"+"c" == "a"+"bc").
func TestCanonicalUnambiguous(t *testing.T) {
	a := Intent{Customer: "c", Payer: "ab", Payee: "c", Amount: 1, Currency: "CNY", Channel: Web, Kind: Transfer, IdempotencyKey: "k"}
	b := a
	b.Payer, b.Payee = "a", "bc"
	if bytes.Equal(a.Canonical(), b.Canonical()) {
		t.Fatal("two intents share a canonical form")
	}
}

// The same intent, whatever the order of its JSON fields or their spacing,
// hashes alike.
func TestHashIgnoresJSONLayout(t *testing.T) {
	a, err := Decode(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	re := `{ "idempotency_key":"k-1", "amount" : 123456, "client_ip":"192.0.2.7","device":"fp-1",
	 "currency":"CNY","payee":"6222000000000002","payer":"6222000000000001","kind":"transfer","channel":"web","customer":"pid-alice"}`
	b, err := Decode(strings.NewReader(re))
	if err != nil {
		t.Fatal(err)
	}
	if a.HashHex() != b.HashHex() {
		t.Fatal("field order changed the hash")
	}
}

// The hashes are pinned (computed independently: SHA-256 of the canonical
// form built by hand in Python): an intent without a language hashes as it did
// before the field existed (the intents stored then keep their ids), and
// the language, when present, is bound.
func TestHashVectors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, hash string
	}{
		{"no language (as before)", good, "291015e208d9055240967f64103e4ba792818a8e193d330e12208b37ac9f75bb"},
		{"English", with(t, "lang", `"en"`), "48938528624cd06fa7c493a550cf82a05dbc76b175be2ef8279530ed24ee5561"},
		{"Chinese", with(t, "lang", `"zh-CN"`), "264e7c3f46435b9edef2b1d27ee017029d5c9408901a28995a220640d5095111"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, err := Decode(strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if got := in.HashHex(); got != tc.hash {
				t.Fatalf("hash %s, want %s", got, tc.hash)
			}
		})
	}
}

// The language's field is the canonical form's last, after the eleven of
// an intent without one, which are unchanged.
func TestCanonicalLanguageAppended(t *testing.T) {
	t.Parallel()
	base, err := Decode(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	zh := base
	zh.Lang = LangZH
	want := append(append([]byte{}, base.Canonical()...), 0, 0, 0, 5)
	want = append(want, LangZH...)
	if !bytes.Equal(zh.Canonical(), want) {
		t.Fatalf("canonical form with a language:\n%q\nwant\n%q", zh.Canonical(), want)
	}
}
