// Package dclink is the protocol between a branch agent and the data
// centre's agent gateway: what travels, in both directions, over the one
// mutual-TLS connection the agent opens (the data centre never dials a
// branch).
//
// A frame is a 4-byte big-endian length followed by that many bytes of one
// JSON object (a Msg), at most MaxFrame bytes. The agent speaks first
// (hello); the gateway answers welcome (with the ATMs it accepted and those
// it refused, each with a reason) or refused (code and message, then it
// closes). After that the gateway sends commands and pings, the agent sends
// results, events and pongs, interleaved on the one stream.
//
// Commands carry an id chosen by the gateway. An agent executes an id once:
// the same id again (the gateway re-sends every unanswered command after a
// reconnect) is answered with the result of the first execution, waiting
// for it if it is still running; the same id with another operation or
// arguments is refused (command_id_reused). A dispense is keyed by its
// 128-bit transaction id as well, in the ATM driver and in the ATM.
//
// Both sides use this package's types; neither writes JSON by hand.
package dclink

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Version is the protocol version sent in hello.
const Version = 1

// MaxFrame bounds one frame's JSON.
const MaxFrame = 1 << 20

// Message types.
const (
	TypeHello   = "hello"   // agent → DC, first
	TypeWelcome = "welcome" // DC → agent, the link is up
	TypeRefused = "refused" // DC → agent, then the DC closes
	TypeCommand = "command" // DC → agent
	TypeResult  = "result"  // agent → DC, one per command id
	TypeEvent   = "event"   // agent → DC, an ATM event
	TypePing    = "ping"    // either way
	TypePong    = "pong"    // the answer to a ping
)

// Operations a command may ask for. Each names one ATM.
const (
	OpStatus    = "status"     // STATUS: no side effect
	OpShowQR    = "show_qr"    // SHOW_QR for a withdrawal session
	OpCancelQR  = "cancel_qr"  // CANCEL_QR
	OpDispense  = "dispense"   // DISPENSE keyed by the 128-bit transaction id
	OpTxnStatus = "txn_status" // TXN_STATUS: what the ATM knows of a transaction
	OpRetract   = "retract"    // RETRACT the notes at the exit
	OpPIN       = "pin"        // PIN: the PIN pad's encrypted PIN block for a withdrawal session
)

// Refusal codes (Msg.Code of a refused message, Refusal.Code of an ATM).
const (
	CodeCertRevoked    = "certificate_revoked"
	CodeCertInvalid    = "certificate_invalid"
	CodeNotAgentCert   = "not_an_agent_certificate"
	CodeBranchMismatch = "branch_mismatch"
	CodeBadHello       = "bad_hello"
	CodeATMNotPinned   = "atm_not_pinned"
	CodeATMOtherBranch = "atm_pinned_to_another_branch"
	CodeUnavailable    = "unavailable"
)

// Error codes of a command's result.
const (
	ErrUnknownATM    = "unknown_atm"       // the agent has no such ATM
	ErrBadArgs       = "bad_args"          // the arguments do not parse
	ErrUnknownOp     = "unknown_op"        // an operation this agent does not know
	ErrCommandReused = "command_id_reused" // the id was used for another command
	ErrDevice        = "device"            // the ATM answered with an error code
	ErrUncertain     = "uncertain"         // the outcome is unknown: ask txn_status
	ErrUnavailable   = "unavailable"       // the ATM's line is down
)

// Msg is one frame. Fields unused by a type are empty.
type Msg struct {
	Type string `json:"type"`

	// hello
	Version int      `json:"version,omitempty"`
	Branch  string   `json:"branch,omitempty"` // hello: agent.branch; welcome: the branch of the certificate
	ATMs    []string `json:"atms,omitempty"`

	// welcome
	Accepted []string  `json:"accepted,omitempty"`
	Refused  []Refusal `json:"refused_atms,omitempty"`
	PingMS   int64     `json:"ping_ms,omitempty"` // how often the gateway pings

	// refused, and errors
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`

	// command, result
	ID     string          `json:"id,omitempty"`
	ATM    string          `json:"atm,omitempty"`
	Op     string          `json:"op,omitempty"`
	Args   json.RawMessage `json:"args,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`

	// event
	Event *Event `json:"event,omitempty"`

	// ping, pong
	Seq uint64 `json:"seq,omitempty"`
}

// Refusal says why one ATM was refused.
type Refusal struct {
	ATM     string `json:"atm"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is a failed command.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Device is the ATM's own code (PROTOCOL.md §7) when Code is "device".
	Device string `json:"device,omitempty"`
	// Record is what the ATM reported with the error (counts always come
	// back, also on a jam).
	Record *TxnRecord `json:"record,omitempty"`
}

func (e *Error) Error() string {
	if e.Device != "" {
		return fmt.Sprintf("%s (%s): %s", e.Code, e.Device, e.Message)
	}
	return e.Code + ": " + e.Message
}

// Digest identifies a command's content, so that an id re-used for other
// content is told apart from a re-sent command.
func (m *Msg) Digest() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", m.ATM, m.Op)
	h.Write(m.Args)
	return hex.EncodeToString(h.Sum(nil))
}

// Arguments and results of the operations. Transaction and session ids
// are 32 hex digits (atm.TxnID).

// QRArgs are show_qr's and cancel_qr's arguments.
type QRArgs struct {
	Session string `json:"session"`
	TTLSec  uint16 `json:"ttl_s,omitempty"`
	Text    string `json:"text,omitempty"`
}

// QRResult is show_qr's result: the mode the ATM showed the QR in.
type QRResult struct {
	Mode uint8 `json:"mode"`
}

// PINArgs are pin's arguments: the withdrawal session, the account number
// the PIN block is bound to (12–19 digits) and how long the customer has.
type PINArgs struct {
	Session    string `json:"session"`
	PAN        string `json:"pan"`
	MinLen     uint8  `json:"min_len"`
	MaxLen     uint8  `json:"max_len"`
	TimeoutSec uint16 `json:"timeout_s"`
}

// PINResult is pin's result: the ISO 9564 format 4 PIN block under the PIN
// pad's key KeyID. It never carries the PIN; only the HSM opens it.
type PINResult struct {
	Format uint8  `json:"format"`
	KeyID  uint32 `json:"key_id"`
	Block  []byte `json:"block"`
}

// DispenseArgs are dispense's arguments.
type DispenseArgs struct {
	Txn       string  `json:"txn"`
	AmountFen int64   `json:"amount_fen"`
	Notes     []Notes `json:"notes"`
}

// Notes is one cassette's share of a dispense.
type Notes struct {
	Cassette uint8  `json:"cassette"`
	Count    uint16 `json:"count"`
}

// TxnArgs are txn_status's and retract's arguments.
type TxnArgs struct {
	Txn string `json:"txn"`
}

// TxnRecord is what an ATM reports of a transaction.
type TxnRecord struct {
	Txn       string          `json:"txn"`
	State     string          `json:"state"`
	Error     string          `json:"error,omitempty"`
	AmountFen int64           `json:"amount_fen"`
	Retracted uint16          `json:"retracted"`
	Cassettes []CassetteCount `json:"cassettes,omitempty"`
}

// CassetteCount is one cassette's line in a TxnRecord.
type CassetteCount struct {
	Cassette  uint8  `json:"cassette"`
	Requested uint16 `json:"requested"`
	Picked    uint16 `json:"picked"`
	Presented uint16 `json:"presented"`
	Rejected  uint16 `json:"rejected"`
}

// Event is an ATM event the agent forwards (presented, taken, retracted).
type Event struct {
	ATM      string    `json:"atm"`
	Kind     string    `json:"kind"`
	No       uint32    `json:"no"`
	Advanced bool      `json:"advanced"`
	Record   TxnRecord `json:"record"`
}

// ErrFrameTooLarge is a frame over MaxFrame.
var ErrFrameTooLarge = errors.New("dclink: frame too large")

// Conn reads and writes frames on a stream. Writes are serialised (one
// writer at a time); reads belong to one goroutine.
type Conn struct {
	rw io.ReadWriter
	r  *bufio.Reader
	wm sync.Mutex
}

// NewConn wraps a stream (a *tls.Conn).
func NewConn(rw io.ReadWriter) *Conn { return &Conn{rw: rw, r: bufio.NewReader(rw)} }

// Write sends one message.
func (c *Conn) Write(m *Msg) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("dclink: encoding %s: %w", m.Type, err)
	}
	if len(b) > MaxFrame {
		return fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, len(b))
	}
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	c.wm.Lock()
	defer c.wm.Unlock()
	_, err = c.rw.Write(buf)
	return err
}

// Read receives one message.
func (c *Conn) Read() (*Msg, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return nil, fmt.Errorf("%w: %d bytes announced", ErrFrameTooLarge, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	var m Msg
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("dclink: frame does not decode: %w", err)
	}
	if m.Type == "" {
		return nil, errors.New("dclink: frame without a type")
	}
	return &m, nil
}
