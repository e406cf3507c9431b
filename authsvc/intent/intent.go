// Package intent is a money movement as a platform asks for it: who pays
// whom, how much, on which channel, keyed by an idempotency key.
//
// An intent is decoded strictly (unknown fields, fractional, string,
// exponent or overflowing amounts are refused), validated, and reduced to a
// canonical byte string whose SHA-256 is the intent's hash. Everything the
// bank authorizes — the challenge a customer answers, the limit usage that
// is counted, the grant a platform executes with — is bound to that hash, so
// an intent whose fields change after it was decided is a different intent.
//
// The canonical form is a domain tag followed by every field, in a fixed
// order, each as a 4-byte big-endian length and its UTF-8 bytes (the amount
// as a decimal string). It is unambiguous: no choice of field values can make
// two different intents encode alike. Every field is in it, the device
// fingerprint and the client address included: the platform executes the
// intent exactly as it posted it.
//
// The language of the transaction text (Lang) is the one optional field: an
// intent with a language has it as a twelfth field at the end; an intent
// without one (English) encodes as it did before the field existed, so the
// intents stored then, and clients that never send a language, keep their
// hashes. The text a customer confirms and a device signs is made from the
// intent in its language, so binding the language binds the text: a grant
// bought by signing the Chinese text cannot execute the English intent, nor
// the other way round.
package intent

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Channel is where the customer is.
type Channel string

// The channels.
const (
	Web     Channel = "web"
	App     Channel = "app"
	ATM     Channel = "atm"
	Counter Channel = "counter"
)

// Channels lists the channels in a stable order.
var Channels = []Channel{Web, App, ATM, Counter}

// Kind is what the movement is.
type Kind string

// The kinds.
const (
	Transfer       Kind = "transfer"        // to another account, own or another customer's
	Payment        Kind = "payment"         // to a merchant (mall checkout)
	Withdrawal     Kind = "withdrawal"      // cash at an ATM
	FriendTransfer Kind = "friend_transfer" // in a messenger conversation
	AAShare        Kind = "aa_share"        // one member's share of an AA collection
	Refund         Kind = "refund"          // a merchant pays a customer back
	ReceiveByQR    Kind = "qr_payment"      // paying a payee's receive QR
)

// Kinds lists the kinds in a stable order.
var Kinds = []Kind{Transfer, Payment, Withdrawal, FriendTransfer, AAShare, Refund, ReceiveByQR}

// The languages of a transaction text (BCP 47). An intent without a
// language is in English.
const (
	LangEN = "en"    // English
	LangZH = "zh-CN" // Simplified Chinese
)

// Langs lists the languages in a stable order.
var Langs = []string{LangEN, LangZH}

// Currencies egate moves. Amounts are integers in the currency's smallest
// unit (fen for CNY).
var Currencies = []string{"CNY"}

// MaxAmount bounds an amount (in fen): 10^13 fen, 100 billion yuan, far
// above any limit, far below where int64 sums of a year's usage overflow.
const MaxAmount = 10_000_000_000_000

// Intent is one money movement asked for by a platform.
type Intent struct {
	Customer       string  `json:"customer"`        // passport id of the customer who pays
	Channel        Channel `json:"channel"`         // web, app, atm, counter
	Kind           Kind    `json:"kind"`            // transfer, payment, …
	Payer          string  `json:"payer"`           // the payer's account
	Payee          string  `json:"payee"`           // the payee's account (or merchant, or ATM id for a withdrawal)
	Amount         int64   `json:"amount"`          // in the currency's smallest unit (fen)
	Currency       string  `json:"currency"`        // ISO 4217; CNY
	Device         string  `json:"device"`          // the customer's device fingerprint as the platform sees it
	ClientIP       string  `json:"client_ip"`       // the customer's address as the platform sees it
	IdempotencyKey string  `json:"idempotency_key"` // the platform's key: the same intent with the same key is one intent
	// Lang is the language of the text the customer confirms and signs
	// (LangEN, LangZH); empty is English.
	Lang string `json:"lang,omitempty"`
}

// Error is bad input: the field at fault, a stable code and a sentence a
// person can act on. It never carries the value that was refused.
type Error struct {
	Field string
	Code  string // bad_json, unknown_field, bad_amount, bad_currency, bad_channel, bad_kind, missing_field, bad_field
	Msg   string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// ErrInvalid matches every *Error with errors.Is.
var ErrInvalid = errors.New("invalid intent")

// Is makes errors.Is(err, ErrInvalid) true for an *Error.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func bad(field, code, msg string) error { return &Error{Field: field, Code: code, Msg: msg} }

// maxBody bounds what Decode reads.
const maxBody = 16 << 10

// Decode reads one intent as JSON and validates it. Unknown fields, a
// second JSON value after the first, an amount that is not a plain integer
// (1.5, 1e3, "100") or is out of range are refused.
func Decode(r io.Reader) (Intent, error) { return DecodeWith(r, nil) }

// DecodeWith is Decode for a body that carries, beside the intent's
// fields, the members named in also (the authorize call's "challenge"):
// each one present is stored raw where also points, and is no part of the
// intent nor of its hash. Any other unknown field is refused as by Decode.
func DecodeWith(r io.Reader, also map[string]*json.RawMessage) (Intent, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(io.LimitReader(r, maxBody+1))
	if err := dec.Decode(&raw); err != nil {
		return Intent{}, bad("", "bad_json", "the intent is not a JSON object")
	}
	if dec.More() {
		return Intent{}, bad("", "bad_json", "the intent must be one JSON object, with nothing after it")
	}
	if _, err := dec.Token(); err != io.EOF {
		return Intent{}, bad("", "bad_json", "the intent must be one JSON object, with nothing after it")
	}
	var in Intent
	fields := map[string]any{
		"customer": &in.Customer, "channel": (*string)(&in.Channel), "kind": (*string)(&in.Kind),
		"payer": &in.Payer, "payee": &in.Payee, "currency": &in.Currency, "device": &in.Device,
		"client_ip": &in.ClientIP, "idempotency_key": &in.IdempotencyKey, "lang": &in.Lang,
	}
	for name, v := range raw {
		if name == "amount" {
			a, err := parseAmount(v)
			if err != nil {
				return Intent{}, err
			}
			in.Amount = a
			continue
		}
		if dst, ok := also[name]; ok {
			*dst = v
			continue
		}
		dst, ok := fields[name]
		if !ok {
			return Intent{}, bad(name, "unknown_field", "is not a field of an intent")
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return Intent{}, bad(name, "bad_field", "must be a string")
		}
	}
	if _, ok := raw["amount"]; !ok {
		return Intent{}, bad("amount", "missing_field", "is required: an integer number of fen")
	}
	return in, in.Validate()
}

// parseAmount accepts a JSON integer literal only: no fraction, exponent,
// string, or leading sign other than '-' (refused later as not positive).
func parseAmount(v json.RawMessage) (int64, error) {
	s := string(bytes.TrimSpace(v))
	if s == "" || strings.ContainsAny(s, ".eE\"") {
		return 0, bad("amount", "bad_amount", "must be a whole number of fen (1 yuan = 100 fen), written as an integer")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, bad("amount", "bad_amount", "must be a whole number of fen between 1 and 10,000,000,000,000")
	}
	return n, nil
}

// Validate checks every field.
func (in Intent) Validate() error {
	if in.Amount <= 0 {
		return bad("amount", "bad_amount", "must be more than zero")
	}
	if in.Amount > MaxAmount {
		return bad("amount", "bad_amount", "is larger than any movement egate accepts (100,000,000,000.00 yuan)")
	}
	if !known(in.Currency, Currencies) {
		return bad("currency", "bad_currency", "must be one of "+strings.Join(Currencies, ", "))
	}
	if !known(in.Channel, Channels) {
		return bad("channel", "bad_channel", "must be one of "+join(Channels))
	}
	if !known(in.Kind, Kinds) {
		return bad("kind", "bad_kind", "must be one of "+join(Kinds))
	}
	if in.Lang != "" && !known(in.Lang, Langs) {
		return bad("lang", "bad_field", "must be one of "+strings.Join(Langs, ", ")+", or left out for English")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"customer", in.Customer, 64}, {"payer", in.Payer, 64}, {"payee", in.Payee, 64},
		{"idempotency_key", in.IdempotencyKey, 128},
	} {
		if f.v == "" {
			return bad(f.name, "missing_field", "is required")
		}
		if err := printable(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	if err := printable("device", in.Device, 256); err != nil {
		return err
	}
	if in.ClientIP != "" {
		if _, err := netip.ParseAddr(in.ClientIP); err != nil {
			return bad("client_ip", "bad_field", "must be an IPv4 or IPv6 address")
		}
	}
	if in.Payer == in.Payee {
		return bad("payee", "bad_field", "is the payer's own account: choose another account to pay")
	}
	return nil
}

func printable(name, v string, max int) error {
	if len(v) > max {
		return bad(name, "bad_field", fmt.Sprintf("is longer than %d bytes", max))
	}
	if !utf8.ValidString(v) {
		return bad(name, "bad_field", "is not valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return bad(name, "bad_field", "contains a control character")
		}
	}
	return nil
}

func known[T ~string](v T, set []T) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

func join[T ~string](set []T) string {
	s := make([]string, len(set))
	for i, v := range set {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

// domain separates intent hashes from every other SHA-256 egate computes.
const domain = "egate-intent-v1"

// Canonical is the intent's canonical byte string (see the package doc).
func (in Intent) Canonical() []byte {
	var b bytes.Buffer
	put := func(s string) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		b.Write(n[:])
		b.WriteString(s)
	}
	put(domain)
	put(in.Customer)
	put(string(in.Channel))
	put(string(in.Kind))
	put(in.Payer)
	put(in.Payee)
	put(strconv.FormatInt(in.Amount, 10))
	put(in.Currency)
	put(in.Device)
	put(in.ClientIP)
	put(in.IdempotencyKey)
	if in.Lang != "" { // absent for English without a language: the hash of before the field
		put(in.Lang)
	}
	return b.Bytes()
}

// Hash is SHA-256 of the canonical form.
func (in Intent) Hash() [32]byte { return sha256.Sum256(in.Canonical()) }

// HashHex is Hash in lower-case hex, the intent's id in APIs and the database.
func (in Intent) HashHex() string {
	h := in.Hash()
	return hex.EncodeToString(h[:])
}
