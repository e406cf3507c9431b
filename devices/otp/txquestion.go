package otp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
)

// Transaction is the data an OCRA question binds for a money movement
// (DESIGN.md §3): a server challenge, the payee's account and the amount.
type Transaction struct {
	// Challenge is the single-use server challenge: decimal digits whose
	// first digit is not 0 (see TransactionQuestion for why).
	Challenge    string
	PayeeAccount string // account number; only its decimal digits count
	AmountFen    int64  // > 0
}

// TxLayout says how many digits of each part go into the question.
// The zero value means 4 challenge digits and the payee's last 4 digits.
type TxLayout struct {
	ChallengeDigits int
	PayeeDigits     int
}

func (l TxLayout) norm() TxLayout {
	if l.ChallengeDigits == 0 {
		l.ChallengeDigits = 4
	}
	if l.PayeeDigits == 0 {
		l.PayeeDigits = 4
	}
	return l
}

// NewChallenge returns n random decimal digits, the first one not 0.
func NewChallenge(r io.Reader, n int) (string, error) {
	if n < 1 || n > 32 {
		return "", fmt.Errorf("%w: challenge of %d digits", ErrInvalid, n)
	}
	if r == nil {
		r = rand.Reader
	}
	lo := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n-1)), nil)
	span := new(big.Int).Sub(new(big.Int).Mul(lo, big.NewInt(10)), lo)
	v, err := rand.Int(r, span)
	if err != nil {
		return "", fmt.Errorf("drawing a challenge: %w", err)
	}
	return v.Add(v, lo).String(), nil
}

// TransactionQuestion builds the OCRA question that binds tx, for the
// suite's question type:
//
//   - QN and QA: challenge ‖ payee tail ‖ amount, all decimal digits, e.g.
//     challenge 4711, payee …6228 0012 3456 7890, 1,234.56 yuan →
//     "4711" + "7890" + "123456" = "47117890123456". This is what the customer
//     types on a keypad token, in that order. The challenge's first digit is
//     never 0, so the number (QN hashes the numeric value, not the text) has
//     exactly ChallengeDigits+PayeeDigits+len(amount) digits and two
//     different transactions can never give the same question.
//   - QH: the first QLen hex digits of SHA-256("ocra-tx-v1|challenge|payee
//     digits|amount"), for app tokens that receive the transaction itself.
//
// The question must fit the suite's QLen (QN16 allows amounts up to 8 digits,
// 999,999.99 yuan, with the default layout).
func TransactionQuestion(s *Suite, tx Transaction, l TxLayout) (string, error) {
	l = l.norm()
	if len(tx.Challenge) != l.ChallengeDigits || !isDigits(tx.Challenge) || tx.Challenge[0] == '0' {
		return "", fmt.Errorf("%w: transaction challenge must be %d digits not starting with 0", ErrInvalid, l.ChallengeDigits)
	}
	if tx.AmountFen <= 0 {
		return "", fmt.Errorf("%w: transaction amount must be positive", ErrInvalid)
	}
	var acct strings.Builder
	for _, c := range tx.PayeeAccount {
		if c >= '0' && c <= '9' {
			acct.WriteRune(c)
		}
	}
	digits := acct.String()
	if len(digits) < l.PayeeDigits {
		return "", fmt.Errorf("%w: payee account has fewer than %d digits", ErrInvalid, l.PayeeDigits)
	}
	tail := digits[len(digits)-l.PayeeDigits:]
	amount := strconv.FormatInt(tx.AmountFen, 10)
	var q string
	switch s.QType {
	case 'N', 'A':
		q = tx.Challenge + tail + amount
	case 'H':
		sum := sha256.Sum256([]byte("ocra-tx-v1|" + tx.Challenge + "|" + digits + "|" + amount))
		h := strings.ToUpper(hex.EncodeToString(sum[:]))
		q = h[:min(s.QLen, len(h))]
	default:
		return "", fmt.Errorf("%w: question type %q", ErrUnsupported, s.QType)
	}
	if err := s.CheckQuestion(q); err != nil {
		return "", fmt.Errorf("transaction does not fit suite %s: %w", s.Raw, err)
	}
	return q, nil
}

// DecodedTransaction is what a token with a display shows for a QN/QA
// transaction question.
type DecodedTransaction struct {
	Challenge string
	PayeeTail string
	AmountFen int64
}

// DecodeTransactionQuestion splits a QN/QA transaction question back into
// its parts (what a display token shows before computing the response).
func DecodeTransactionQuestion(q string, l TxLayout) (DecodedTransaction, error) {
	l = l.norm()
	if !isDigits(q) || len(q) <= l.ChallengeDigits+l.PayeeDigits || q[0] == '0' {
		return DecodedTransaction{}, fmt.Errorf("%w: not a transaction question", ErrInvalid)
	}
	a, err := strconv.ParseInt(q[l.ChallengeDigits+l.PayeeDigits:], 10, 64)
	if err != nil || a <= 0 {
		return DecodedTransaction{}, fmt.Errorf("%w: transaction question has no valid amount", ErrInvalid)
	}
	return DecodedTransaction{
		Challenge: q[:l.ChallengeDigits],
		PayeeTail: q[l.ChallengeDigits : l.ChallengeDigits+l.PayeeDigits],
		AmountFen: a,
	}, nil
}
