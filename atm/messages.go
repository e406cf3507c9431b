package atm

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// MsgType is the TYPE byte of a frame (PROTOCOL.md §6).
type MsgType uint8

// Message types.
const (
	TypeACK MsgType = 0x06
	TypeNAK MsgType = 0x15

	TypeHello     MsgType = 0x20
	TypeStatus    MsgType = 0x21
	TypeShowQR    MsgType = 0x22
	TypeCancelQR  MsgType = 0x23
	TypePIN       MsgType = 0x24
	TypeDispense  MsgType = 0x25
	TypeRetract   MsgType = 0x26
	TypeReject    MsgType = 0x27
	TypeTxnStatus MsgType = 0x28
	TypePurge     MsgType = 0x29

	ReplyBit MsgType = 0x80

	TypeBoot     MsgType = 0x60
	TypeProgress MsgType = 0x61
	TypeEvent    MsgType = 0x62
	TypeError    MsgType = 0x7F
)

var typeNames = map[MsgType]string{
	TypeACK: "ACK", TypeHello: "HELLO", TypeStatus: "STATUS", TypeShowQR: "SHOW_QR",
	TypeCancelQR: "CANCEL_QR", TypePIN: "PIN", TypeDispense: "DISPENSE", TypeRetract: "RETRACT",
	TypeReject: "REJECT", TypeTxnStatus: "TXN_STATUS", TypePurge: "PURGE", TypeBoot: "BOOT",
	TypeProgress: "PROGRESS", TypeEvent: "EVENT", TypeError: "ERROR",
}

func (t MsgType) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	if n, ok := typeNames[t&^ReplyBit]; ok && t&ReplyBit != 0 {
		return n + "_R"
	}
	return fmt.Sprintf("TYPE_%02X", uint8(t))
}

// Code is a result or error code (PROTOCOL.md §7).
type Code uint8

// Result codes.
const (
	OK Code = iota
	CodeBadMessage
	CodeUnknownType
	CodeBusy
	CodeCashAtExit
	CodeCannotMakeAmount
	CodeCassetteMissing
	CodeCassetteEmpty
	CodeJam
	CodeTooManyRejects
	CodeShutterFault
	CodeTxnConflict
	CodeUnknownTxn
	CodeTimeout
	CodeNotPresented
	CodeRetractCountUnknown
	CodeVersion
	CodeCancelled
	CodePowerLoss
	CodeInProgress
	CodeNoSession
	CodeHardware
	// CodeUnsupported refuses a request that needs a capability the ATM did
	// not advertise in its HELLO reply (e.g. SHOW_QR in a mode it lacks);
	// nothing was done.
	CodeUnsupported
)

var codeNames = [...]string{"OK", "BAD_MESSAGE", "UNKNOWN_TYPE", "BUSY", "CASH_AT_EXIT",
	"CANNOT_MAKE_AMOUNT", "CASSETTE_MISSING", "CASSETTE_EMPTY", "JAM", "TOO_MANY_REJECTS",
	"SHUTTER_FAULT", "TXN_CONFLICT", "UNKNOWN_TXN", "TIMEOUT", "NOT_PRESENTED",
	"RETRACT_COUNT_UNKNOWN", "VERSION", "CANCELLED", "POWER_LOSS", "IN_PROGRESS", "NO_SESSION", "HARDWARE",
	"UNSUPPORTED"}

// codeMeanings are PROTOCOL.md §7's explanations, word for word
// (TestCodesMatchProtocol), for operators' messages.
var codeMeanings = [...]string{
	"done",
	"payload does not parse or is inconsistent",
	"message type not known",
	"another operation is running",
	"notes lie in the tray; nothing dispensed",
	"note list does not make the amount, or too few notes",
	"a named cassette is not fitted",
	"a named cassette is empty",
	"the transport jammed; counts tell how far it got",
	"more than the reject limit; dispense abandoned",
	"shutter failed to open or close",
	"known txn id with different content",
	"txn id never accepted",
	"customer or mechanism timeout",
	"nothing at the exit for this txn (e.g. already taken)",
	"retracted, count unknown",
	"no common protocol version",
	"customer cancelled",
	"operation interrupted by power loss; counts from the journal",
	"the operation for this txn id is still running",
	"HELLO first",
	"other device fault",
	"the request needs a capability the ATM did not advertise in HELLO; nothing done",
}

// Meaning explains the code in words (PROTOCOL.md §7), or "" for a code
// this version does not know.
func (c Code) Meaning() string {
	if int(c) < len(codeMeanings) {
		return codeMeanings[c]
	}
	return ""
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("CODE_%d", uint8(c))
}

// DeviceError is a non-OK code reported by the ATM. Use errors.As to get the
// code and, where the ATM sent one, the record with the counts.
type DeviceError struct {
	Op     MsgType
	Code   Code
	Msg    string
	Record *TxnRecord
}

func (e *DeviceError) Error() string {
	s := fmt.Sprintf("atm: %s: %s", e.Op, e.Code)
	if e.Msg != "" {
		s += ": " + e.Msg
	} else if m := e.Code.Meaning(); m != "" {
		s += ": " + m
	}
	return s
}

// Is lets errors.Is(err, CodeJam) style checks work through CodeError values.
func (e *DeviceError) Is(target error) bool {
	t, ok := target.(codeErr)
	return ok && Code(t) == e.Code
}

type codeErr Code

func (c codeErr) Error() string { return Code(c).String() }

// ErrCode returns a sentinel for errors.Is(err, atm.ErrCode(atm.CodeJam)).
func ErrCode(c Code) error { return codeErr(c) }

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

// ---- wire helpers ----

// ErrShort means a payload ended early; ErrTrailing that it had extra bytes.
var (
	ErrShort    = errors.New("atm: payload too short")
	ErrTrailing = errors.New("atm: trailing bytes in payload")
)

type rd struct {
	b   []byte
	err error
}

func (r *rd) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = ErrShort
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
func (r *rd) u8() uint8 {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}
func (r *rd) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}
func (r *rd) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}
func (r *rd) i64() int64 {
	if v := r.take(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}
func (r *rd) id() (t TxnID) { copy(t[:], r.take(16)); return }
func (r *rd) bytes16() []byte {
	n := int(r.u16())
	return append([]byte(nil), r.take(n)...)
}
func (r *rd) done() error {
	if r.err == nil && len(r.b) > 0 {
		return ErrTrailing
	}
	return r.err
}

type wr []byte

func (w *wr) u8(v uint8)   { *w = append(*w, v) }
func (w *wr) u16(v uint16) { *w = binary.BigEndian.AppendUint16(*w, v) }
func (w *wr) u32(v uint32) { *w = binary.BigEndian.AppendUint32(*w, v) }
func (w *wr) i64(v int64)  { *w = binary.BigEndian.AppendUint64(*w, uint64(v)) }
func (w *wr) id(t TxnID)   { *w = append(*w, t[:]...) }
func (w *wr) bytes16(b []byte) {
	w.u16(uint16(len(b)))
	*w = append(*w, b...)
}

func (w *wr) record(r TxnRecord) {
	w.id(r.ID)
	w.u8(uint8(r.State))
	w.u8(uint8(r.Error))
	w.i64(r.Amount)
	w.u16(r.Retracted)
	w.u8(uint8(len(r.Cassettes)))
	for _, c := range r.Cassettes {
		w.u8(c.Cassette)
		w.u16(c.Requested)
		w.u16(c.Picked)
		w.u16(c.Presented)
		w.u16(c.Rejected)
	}
}

func (r *rd) record() TxnRecord {
	t := TxnRecord{ID: r.id(), State: TxnState(r.u8()), Error: Code(r.u8()), Amount: r.i64(), Retracted: r.u16()}
	n := int(r.u8())
	for i := 0; i < n && r.err == nil; i++ {
		t.Cassettes = append(t.Cassettes, CassetteCount{r.u8(), r.u16(), r.u16(), r.u16(), r.u16()})
	}
	return t
}

// ---- messages ----

// Capability bits announced in HELLO.
const (
	CapQRText   uint16 = 0x0001
	CapQRBitmap uint16 = 0x0002
	CapPINISO4  uint16 = 0x0004
	CapRetract  uint16 = 0x0008
	CapReject   uint16 = 0x0010
	CapPurge    uint16 = 0x0020
	CapProgress uint16 = 0x0040
)

// ProtocolVersion is the version this package speaks.
const ProtocolVersion = 1

// Hello is the HELLO request.
type Hello struct {
	VersionMin, VersionMax uint8
	HostTimeMs             uint64
}

func (m Hello) Marshal() []byte {
	var w wr
	w.u8(m.VersionMin)
	w.u8(m.VersionMax)
	w.i64(int64(m.HostTimeMs))
	return w
}

func ParseHello(p []byte) (m Hello, err error) {
	r := rd{b: p}
	m = Hello{r.u8(), r.u8(), uint64(r.i64())}
	return m, r.done()
}

// HelloReply is the ATM's answer to HELLO.
type HelloReply struct {
	Version      uint8
	Capabilities uint16
	MaxPayload   uint16
	BootID       [16]byte
	LastEvent    uint32
	Last         *TxnRecord
}

func (m HelloReply) Marshal() []byte {
	var w wr
	w.u8(m.Version)
	w.u16(m.Capabilities)
	w.u16(m.MaxPayload)
	w = append(w, m.BootID[:]...)
	w.u32(m.LastEvent)
	if m.Last != nil {
		w.u8(1)
		w.record(*m.Last)
	} else {
		w.u8(0)
	}
	return w
}

func ParseHelloReply(p []byte) (m HelloReply, err error) {
	r := rd{b: p}
	m.Version, m.Capabilities, m.MaxPayload = r.u8(), r.u16(), r.u16()
	copy(m.BootID[:], r.take(16))
	m.LastEvent = r.u32()
	if r.u8() == 1 {
		rec := r.record()
		m.Last = &rec
	}
	return m, r.done()
}

// Shutter positions.
const (
	ShutterClosed = 0
	ShutterOpen   = 1
	ShutterJammed = 2
)

// Cassette states.
const (
	CassetteOK      = 0
	CassetteLow     = 1
	CassetteEmpty   = 2
	CassetteMissing = 3
	CassetteJammed  = 4
)

// Sensor bits of Status.Sensors.
const (
	SensorTray      = 0x0001
	SensorTransport = 0x0002
	SensorRejectFul = 0x0004
	SensorSafeDoor  = 0x0008
)

// Cassette is one cassette in a status report.
type Cassette struct {
	ID    uint8
	Denom int64 // fen
	Count uint16
	State uint8
}

// Status is the STATUS reply.
type Status struct {
	Device    uint8
	Shutter   uint8
	AtExit    uint16
	Sensors   uint16
	RejectBin uint16
	Cassettes []Cassette
}

func (m Status) Marshal() []byte {
	var w wr
	w.u8(m.Device)
	w.u8(m.Shutter)
	w.u16(m.AtExit)
	w.u16(m.Sensors)
	w.u16(m.RejectBin)
	w.u8(uint8(len(m.Cassettes)))
	for _, c := range m.Cassettes {
		w.u8(c.ID)
		w.i64(c.Denom)
		w.u16(c.Count)
		w.u8(c.State)
	}
	return w
}

func ParseStatus(p []byte) (m Status, err error) {
	r := rd{b: p}
	m.Device, m.Shutter, m.AtExit, m.Sensors, m.RejectBin = r.u8(), r.u8(), r.u16(), r.u16(), r.u16()
	n := int(r.u8())
	for i := 0; i < n && r.err == nil; i++ {
		m.Cassettes = append(m.Cassettes, Cassette{r.u8(), r.i64(), r.u16(), r.u8()})
	}
	return m, r.done()
}

// QR display modes.
const (
	QRModeText   = 1
	QRModeBitmap = 2
)

// ShowQR is the SHOW_QR request.
type ShowQR struct {
	Session TxnID
	TTLSec  uint16
	Mode    uint8
	Text    string
	Size    uint16 // bitmap modules per side
	Bitmap  []byte // packed rows, MSB first
}

func (m ShowQR) Marshal() []byte {
	var w wr
	w.id(m.Session)
	w.u16(m.TTLSec)
	w.u8(m.Mode)
	if m.Mode == QRModeBitmap {
		w.u16(m.Size)
		w = append(w, m.Bitmap...)
	} else {
		w.bytes16([]byte(m.Text))
	}
	return w
}

func ParseShowQR(p []byte) (m ShowQR, err error) {
	r := rd{b: p}
	m.Session, m.TTLSec, m.Mode = r.id(), r.u16(), r.u8()
	switch m.Mode {
	case QRModeText:
		m.Text = string(r.bytes16())
	case QRModeBitmap:
		m.Size = r.u16()
		m.Bitmap = append([]byte(nil), r.take((int(m.Size)*int(m.Size)+7)/8)...)
	default:
		return m, fmt.Errorf("atm: QR mode %d: %w", m.Mode, ErrShort)
	}
	return m, r.done()
}

// PackBitmap packs a square module matrix as SHOW_QR mode 2 wants it.
func PackBitmap(bm [][]bool) (size uint16, packed []byte) {
	n := len(bm)
	packed = make([]byte, (n*n+7)/8)
	for y, row := range bm {
		for x, dark := range row {
			if dark {
				i := y*n + x
				packed[i/8] |= 0x80 >> (i % 8)
			}
		}
	}
	return uint16(n), packed
}

// UnpackBitmap is the inverse of PackBitmap.
func UnpackBitmap(size uint16, packed []byte) [][]bool {
	n := int(size)
	bm := make([][]bool, n)
	for y := range bm {
		bm[y] = make([]bool, n)
		for x := range bm[y] {
			i := y*n + x
			bm[y][x] = packed[i/8]&(0x80>>(i%8)) != 0
		}
	}
	return bm
}

// PINRequest is the PIN request.
type PINRequest struct {
	Session        TxnID
	MinLen, MaxLen uint8
	TimeoutSec     uint16
	PAN            string
}

func (m PINRequest) Marshal() []byte {
	var w wr
	w.id(m.Session)
	w.u8(m.MinLen)
	w.u8(m.MaxLen)
	w.u16(m.TimeoutSec)
	w.u8(uint8(len(m.PAN)))
	w = append(w, m.PAN...)
	return w
}

func ParsePINRequest(p []byte) (m PINRequest, err error) {
	r := rd{b: p}
	m.Session, m.MinLen, m.MaxLen, m.TimeoutSec = r.id(), r.u8(), r.u8(), r.u16()
	m.PAN = string(r.take(int(r.u8())))
	return m, r.done()
}

// PINReply is the PIN reply. Block is an ISO 9564 format 4 PIN block.
type PINReply struct {
	Code   Code
	Format uint8
	KeyID  uint32
	Block  [16]byte
}

func (m PINReply) Marshal() []byte {
	w := wr{byte(m.Code)}
	if m.Code == OK {
		w.u8(m.Format)
		w.u32(m.KeyID)
		w = append(w, m.Block[:]...)
	}
	return w
}

func ParsePINReply(p []byte) (m PINReply, err error) {
	r := rd{b: p}
	m.Code = Code(r.u8())
	if m.Code == OK {
		m.Format, m.KeyID = r.u8(), r.u32()
		copy(m.Block[:], r.take(16))
	}
	return m, r.done()
}

// Dispense is the DISPENSE request.
type Dispense struct {
	ID     TxnID
	Amount int64
	Notes  []Notes
}

func (m Dispense) Marshal() []byte {
	var w wr
	w.id(m.ID)
	w.i64(m.Amount)
	w.u8(uint8(len(m.Notes)))
	for _, n := range m.Notes {
		w.u8(n.Cassette)
		w.u16(n.Count)
	}
	return w
}

func ParseDispense(p []byte) (m Dispense, err error) {
	r := rd{b: p}
	m.ID, m.Amount = r.id(), r.i64()
	n := int(r.u8())
	for i := 0; i < n && r.err == nil; i++ {
		m.Notes = append(m.Notes, Notes{r.u8(), r.u16()})
	}
	return m, r.done()
}

// TxnRequest is the payload of RETRACT, REJECT and TXN_STATUS (and CANCEL_QR).
type TxnRequest struct{ ID TxnID }

func (m TxnRequest) Marshal() []byte { return append([]byte(nil), m.ID[:]...) }

func ParseTxnRequest(p []byte) (m TxnRequest, err error) {
	r := rd{b: p}
	m.ID = r.id()
	return m, r.done()
}

// TxnReply is the reply to DISPENSE, RETRACT, REJECT and TXN_STATUS.
type TxnReply struct {
	Code   Code
	Record TxnRecord
}

func (m TxnReply) Marshal() []byte {
	w := wr{byte(m.Code)}
	w.record(m.Record)
	return w
}

func ParseTxnReply(p []byte) (m TxnReply, err error) {
	r := rd{b: p}
	m.Code = Code(r.u8())
	m.Record = r.record()
	return m, r.done()
}

// Result is a reply that is just a code (SHOW_QR, CANCEL_QR) or a code and a
// count (PURGE).
type Result struct {
	Code  Code
	Notes uint16
}

func ParseResult(p []byte) (Result, error) {
	switch len(p) {
	case 1:
		return Result{Code: Code(p[0])}, nil
	case 3:
		return Result{Code: Code(p[0]), Notes: binary.BigEndian.Uint16(p[1:])}, nil
	}
	return Result{}, ErrShort
}

// Progress stages.
const (
	StagePicking    = 1
	StagePresenting = 2
	StageRetracting = 3
	StagePINEntry   = 4
	StagePurging    = 5
)

// Progress is the PROGRESS frame.
type Progress struct {
	Stage uint8
	Notes uint16
}

func (m Progress) Marshal() []byte { w := wr{m.Stage}; w.u16(m.Notes); return w }

func ParseProgress(p []byte) (m Progress, err error) {
	r := rd{b: p}
	m.Stage, m.Notes = r.u8(), r.u16()
	return m, r.done()
}

// Event kinds.
const (
	EventPresented = 1
	EventTaken     = 2
	EventRetracted = 3
)

// EventMsg is the EVENT frame.
type EventMsg struct {
	No     uint32
	Kind   uint8
	Record TxnRecord
}

func (m EventMsg) Marshal() []byte {
	var w wr
	w.u32(m.No)
	w.u8(m.Kind)
	w.record(m.Record)
	return w
}

func ParseEventMsg(p []byte) (m EventMsg, err error) {
	r := rd{b: p}
	m.No, m.Kind = r.u32(), r.u8()
	m.Record = r.record()
	return m, r.done()
}

// ErrorMsg is the ERROR frame.
type ErrorMsg struct {
	Code Code
	Msg  string
}

func (m ErrorMsg) Marshal() []byte { w := wr{byte(m.Code)}; w.bytes16([]byte(m.Msg)); return w }

func ParseErrorMsg(p []byte) (m ErrorMsg, err error) {
	r := rd{b: p}
	m.Code = Code(r.u8())
	m.Msg = string(r.bytes16())
	return m, r.done()
}
