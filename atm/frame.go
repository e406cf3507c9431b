package atm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Framing constants (PROTOCOL.md §2).
const (
	STX        = 0x02
	MaxPayload = 2048
	headerLen  = 6 // STX, LEN(2), SEQ, REF, TYPE
	minLEN     = 3
	maxLEN     = 3 + MaxPayload
	// MaxFrame is the largest frame on the wire.
	MaxFrame = headerLen + MaxPayload + 2
)

// Frame is one link frame. Seq is the sender's sequence number, Ref the
// sequence number of the request a reply answers.
type Frame struct {
	Seq     uint8
	Ref     uint8
	Type    MsgType
	Payload []byte
}

func (f Frame) String() string {
	return fmt.Sprintf("%s seq=%d ref=%d len=%d", f.Type, f.Seq, f.Ref, len(f.Payload))
}

// Errors of the frame decoder.
var (
	ErrBadCRC     = errors.New("atm: frame CRC mismatch")
	ErrBadLength  = errors.New("atm: frame length out of range")
	ErrTooLarge   = errors.New("atm: payload exceeds maximum")
	errIncomplete = errors.New("atm: incomplete frame")
	errNoStart    = errors.New("atm: no start byte")
)

// AppendFrame appends the wire encoding of f to dst.
func AppendFrame(dst []byte, f Frame) ([]byte, error) {
	if len(f.Payload) > MaxPayload {
		return dst, fmt.Errorf("encoding %s: %w", f.Type, ErrTooLarge)
	}
	start := len(dst)
	dst = append(dst, STX, 0, 0, f.Seq, f.Ref, byte(f.Type))
	binary.BigEndian.PutUint16(dst[start+1:], uint16(3+len(f.Payload)))
	dst = append(dst, f.Payload...)
	return binary.BigEndian.AppendUint16(dst, CRC16(dst[start+1:])), nil
}

// EncodeFrame returns the wire encoding of f.
func EncodeFrame(f Frame) ([]byte, error) { return AppendFrame(nil, f) }

// DecodeFrame decodes the frame that starts at b[0] (which must be STX). It
// returns the frame and the bytes it used. The payload aliases b.
// errIncomplete means more bytes are needed; ErrBadLength and ErrBadCRC mean
// the STX at b[0] does not start a valid frame.
func DecodeFrame(b []byte) (Frame, int, error) {
	if len(b) == 0 {
		return Frame{}, 0, errIncomplete
	}
	if b[0] != STX {
		return Frame{}, 0, errNoStart
	}
	if len(b) < 3 {
		return Frame{}, 0, errIncomplete
	}
	n := int(binary.BigEndian.Uint16(b[1:3]))
	if n < minLEN || n > maxLEN {
		return Frame{}, 0, ErrBadLength
	}
	total := 3 + n + 2
	if len(b) < total {
		return Frame{}, 0, errIncomplete
	}
	if CRC16(b[1:3+n]) != binary.BigEndian.Uint16(b[3+n:total]) {
		return Frame{}, 0, ErrBadCRC
	}
	return Frame{Seq: b[3], Ref: b[4], Type: MsgType(b[5]), Payload: b[6 : 3+n]}, total, nil
}

// Decoder turns a byte stream into frames, hunting for STX and resynchronising
// after garbage, bad lengths, bad CRCs and truncated frames (PROTOCOL.md §2.1).
// It is not safe for concurrent use.
type Decoder struct {
	buf     []byte
	Garbage int // bytes discarded while hunting
	BadCRC  int // frames discarded for a CRC mismatch
}

// Feed appends received bytes.
func (d *Decoder) Feed(p []byte) { d.buf = append(d.buf, p...) }

// Buffered reports how many bytes wait in the decoder.
func (d *Decoder) Buffered() int { return len(d.buf) }

// Next returns the next complete frame. ok is false when more bytes are
// needed. badCRC is true when a frame with a CRC mismatch was dropped on the
// way (the caller NAKs it). The returned payload is a copy.
func (d *Decoder) Next() (f Frame, ok bool, badCRC bool) {
	for {
		i := 0
		for i < len(d.buf) && d.buf[i] != STX {
			i++
		}
		d.Garbage += i
		d.buf = d.buf[i:]
		if len(d.buf) == 0 {
			d.compact()
			return Frame{}, false, badCRC
		}
		fr, n, err := DecodeFrame(d.buf)
		switch {
		case err == nil:
			fr.Payload = append([]byte(nil), fr.Payload...)
			d.buf = d.buf[n:]
			d.compact()
			return fr, true, badCRC
		case errors.Is(err, errIncomplete):
			return Frame{}, false, badCRC
		case errors.Is(err, ErrBadCRC):
			badCRC = true
			d.BadCRC++
			d.Garbage++
			d.buf = d.buf[1:]
		default: // bad length: this STX was noise
			d.Garbage++
			d.buf = d.buf[1:]
		}
	}
}

// Expire is called when the line was silent for T_interbyte while a partial
// frame waited. Every byte buffered now is stale: the STX that started the
// partial frame is dropped and hunting resumes behind it, so a complete frame
// that followed a truncated one is still returned; whatever remains incomplete
// is discarded.
func (d *Decoder) Expire() (frames []Frame, badCRC bool) {
	for len(d.buf) > 0 {
		d.Garbage++
		d.buf = d.buf[1:]
		for {
			f, ok, bad := d.Next()
			badCRC = badCRC || bad
			if !ok {
				break
			}
			frames = append(frames, f)
		}
	}
	d.compact()
	return frames, badCRC
}

func (d *Decoder) compact() {
	if cap(d.buf) > 4*MaxFrame && len(d.buf) < MaxFrame {
		d.buf = append([]byte(nil), d.buf...)
	}
}
