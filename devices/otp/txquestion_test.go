package otp

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestTransactionQuestion(t *testing.T) {
	t.Parallel()
	tx := Transaction{Challenge: "4711", PayeeAccount: "6228 0012 3456 7890", AmountFen: 123456}
	cases := []struct {
		name, suite string
		tx          Transaction
		want        string
		err         error
	}{
		{"QN16", "OCRA-1:HOTP-SHA256-8:QN16", tx, "47117890123456", nil},
		{"QA20", "OCRA-1:HOTP-SHA256-8:QA20-T1M", tx, "47117890123456", nil},
		{"QH16 hashes", "OCRA-1:HOTP-SHA256-8:QH16", tx, "", nil},
		{"amount too long for QN08", "OCRA-1:HOTP-SHA1-6:QN08", tx, "", ErrInvalid},
		{"zero amount", "OCRA-1:HOTP-SHA256-8:QN16", Transaction{Challenge: "4711", PayeeAccount: "12345678", AmountFen: 0}, "", ErrInvalid},
		{"challenge with leading 0", "OCRA-1:HOTP-SHA256-8:QN16", Transaction{Challenge: "0711", PayeeAccount: "12345678", AmountFen: 5}, "", ErrInvalid},
		{"short payee", "OCRA-1:HOTP-SHA256-8:QN16", Transaction{Challenge: "4711", PayeeAccount: "12a", AmountFen: 5}, "", ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := ParseSuite(tc.suite)
			if err != nil {
				t.Fatal(err)
			}
			q, err := TransactionQuestion(s, tc.tx, TxLayout{})
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && q != tc.want {
				t.Fatalf("question = %q, want %q", q, tc.want)
			}
			if s.QType == 'H' && len(q) != s.QLen {
				t.Fatalf("QH question %q has %d digits, want %d", q, len(q), s.QLen)
			}
		})
	}
}

// Two different transactions never give the same response input: change any
// part and the response changes.
func TestTransactionQuestionBinds(t *testing.T) {
	t.Parallel()
	s, _ := ParseSuite("OCRA-1:HOTP-SHA256-8:QN16")
	base := Transaction{Challenge: "4711", PayeeAccount: "62280012345678", AmountFen: 123456}
	variants := map[string]Transaction{
		"base":      base,
		"payee":     {Challenge: "4711", PayeeAccount: "62280012345679", AmountFen: 123456},
		"amount":    {Challenge: "4711", PayeeAccount: "62280012345678", AmountFen: 123457},
		"challenge": {Challenge: "4712", PayeeAccount: "62280012345678", AmountFen: 123456},
		"shift":     {Challenge: "4711", PayeeAccount: "62280012345671", AmountFen: 23456}, // same digits moved
	}
	seen := map[string]string{}
	for name, tx := range variants {
		q, err := TransactionQuestion(s, tx, TxLayout{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Compute(context.Background(), SoftwareMAC{seed32}, OCRAInput{Question: q})
		if err != nil {
			t.Fatal(err)
		}
		if other, ok := seen[r]; ok {
			t.Fatalf("%s and %s give the same response", name, other)
		}
		seen[r] = name
		d, err := DecodeTransactionQuestion(q, TxLayout{})
		if err != nil || d.AmountFen != tx.AmountFen || d.Challenge != tx.Challenge || !strings.HasSuffix(tx.PayeeAccount, d.PayeeTail) {
			t.Fatalf("DecodeTransactionQuestion(%q) = %+v, %v", q, d, err)
		}
	}
}

func TestNewChallenge(t *testing.T) {
	t.Parallel()
	for range 200 {
		c, err := NewChallenge(nil, 4)
		if err != nil || len(c) != 4 || c[0] == '0' || !isDigits(c) {
			t.Fatalf("NewChallenge = %q, %v", c, err)
		}
	}
}
