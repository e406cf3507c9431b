package atm

// The message set of PROTOCOL.md §6: the TYPE byte and, per message, its
// payload as a Go value with Marshal (what the sender writes) and Parse
// (what the receiver accepts). The host (the driver) and the reference ATM
// (simulators/atm) both encode every payload with these, never by hand.

import (
	"encoding/binary"
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

// Marshal encodes a SHOW_QR or CANCEL_QR reply (PROTOCOL.md §6.3, §6.4):
// the code alone; Notes is not sent.
func (m Result) Marshal() []byte { return []byte{byte(m.Code)} }

// MarshalPurge encodes a PURGE reply (PROTOCOL.md §6.9): the code and the
// number of notes purged.
func (m Result) MarshalPurge() []byte { w := wr{byte(m.Code)}; w.u16(m.Notes); return w }

// ParseResult reads either form: a code alone, or a code and a count.
func ParseResult(p []byte) (Result, error) {
	switch len(p) {
	case 1:
		return Result{Code: Code(p[0])}, nil
	case 3:
		return Result{Code: Code(p[0]), Notes: binary.BigEndian.Uint16(p[1:])}, nil
	}
	return Result{}, ErrShort
}

// Boot is the BOOT frame (PROTOCOL.md §6.13) the ATM sends at power-up
// and whenever it resets its link state.
type Boot struct {
	ID [16]byte // the boot id: event numbers restart with each
}

func (m Boot) Marshal() []byte { return append([]byte(nil), m.ID[:]...) }

func ParseBoot(p []byte) (m Boot, err error) {
	r := rd{b: p}
	copy(m.ID[:], r.take(16))
	return m, r.done()
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
