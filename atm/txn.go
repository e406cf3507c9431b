package atm

// The transaction model shared by host and ATM: the host's 128-bit id, the
// states a transaction moves through (forward only), and the record with
// per-cassette counts that every answer about money carries.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// TxnID is the 128-bit transaction id chosen by the host.
type TxnID [16]byte

// NewTxnID returns a random transaction id.
func NewTxnID() TxnID {
	var t TxnID
	if _, err := rand.Read(t[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return t
}

func (t TxnID) String() string { return hex.EncodeToString(t[:]) }

// ParseTxnID parses 32 hex digits.
func ParseTxnID(s string) (TxnID, error) {
	var t TxnID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		return t, fmt.Errorf("atm: transaction id %q: want 32 hex digits", s)
	}
	copy(t[:], b)
	return t, nil
}

// TxnState is the state of a transaction as the ATM reports it.
type TxnState uint8

// Transaction states; they only move forward.
const (
	StateNone TxnState = iota
	StateAccepted
	StatePicking
	StatePresented
	StateTaken
	StateRetracted
	StateFailed
)

var stateNames = [...]string{"NONE", "ACCEPTED", "PICKING", "PRESENTED", "TAKEN", "RETRACTED", "FAILED"}

func (s TxnState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("STATE_%d", uint8(s))
}

// Final reports whether the dispense part of the transaction has ended.
func (s TxnState) Final() bool { return s >= StatePresented }

// rank orders states for forward-only updates.
func (s TxnState) rank() int {
	switch s {
	case StateTaken, StateRetracted:
		return 4
	case StatePresented, StateFailed:
		return 3
	default:
		return int(s)
	}
}

// RetractUnknown in TxnRecord.Retracted means the ATM could not count.
const RetractUnknown = 0xFFFF

// CassetteCount is one cassette's line in a transaction record.
type CassetteCount struct {
	Cassette  uint8
	Requested uint16
	Picked    uint16
	Presented uint16
	Rejected  uint16
}

// TxnRecord is what the ATM knows about one transaction.
type TxnRecord struct {
	ID        TxnID
	State     TxnState
	Error     Code
	Amount    int64
	Retracted uint16
	Cassettes []CassetteCount
}

// Totals sums the per-cassette counts.
func (r TxnRecord) Totals() (picked, presented, rejected int) {
	for _, c := range r.Cassettes {
		picked += int(c.Picked)
		presented += int(c.Presented)
		rejected += int(c.Rejected)
	}
	return
}

// Notes is one cassette's share of a dispense.
type Notes struct {
	Cassette uint8
	Count    uint16
}
