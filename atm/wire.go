package atm

// The payload encoding of PROTOCOL.md §6, in one place: big-endian
// integers, 16-bit length-prefixed bytes, and the TxnRecord layout. Every
// message's Marshal and Parse is built from these, so host and simulator
// cannot disagree on a byte.

import (
	"encoding/binary"
	"errors"
)

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
