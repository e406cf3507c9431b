package atm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestCRC16Vectors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want uint16
	}{
		{"check value", "123456789", 0x29B1}, // CRC-16/CCITT-FALSE catalogue check
		{"empty", "", 0xFFFF},
		{"A", "A", 0xB915},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CRC16([]byte(tc.in)); got != tc.want {
				t.Fatalf("CRC16(%q) = %#04x, want %#04x", tc.in, got, tc.want)
			}
		})
	}
}

func TestFrameVector(t *testing.T) {
	t.Parallel()
	b, err := EncodeFrame(Frame{Seq: 1, Type: TypeStatus})
	if err != nil {
		t.Fatal(err)
	}
	// 02 | 0003 | 01 00 21 | CRC over 00 03 01 00 21
	want := append([]byte{0x02, 0x00, 0x03, 0x01, 0x00, 0x21}, 0, 0)
	crc := CRC16(want[1:6])
	want[6], want[7] = byte(crc>>8), byte(crc)
	if !bytes.Equal(b, want) {
		t.Fatalf("frame = %x, want %x", b, want)
	}
	if got := hex.EncodeToString(b); got != "02000301002189a3" {
		t.Fatalf("STATUS seq 1 = %s, PROTOCOL.md pins 02000301002189a3", got)
	}
}

func TestDecodeFrameErrors(t *testing.T) {
	t.Parallel()
	good, _ := EncodeFrame(Frame{Seq: 7, Ref: 3, Type: TypeDispense, Payload: []byte("payload")})
	flipped := bytes.Clone(good)
	flipped[8] ^= 0x10
	long := []byte{STX, 0xFF, 0xFF, 1, 0, 0x21}
	short := []byte{STX, 0x00, 0x02, 1, 0, 0x21}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"good", good, nil},
		{"flipped byte", flipped, ErrBadCRC},
		{"length past maximum", long, ErrBadLength},
		{"length below minimum", short, ErrBadLength},
		{"truncated", good[:len(good)-1], errIncomplete},
		{"not at start", good[1:], errNoStart},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, n, err := DecodeFrame(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil && (n != len(good) || f.Seq != 7 || f.Ref != 3 || string(f.Payload) != "payload") {
				t.Fatalf("decoded %v n=%d", f, n)
			}
		})
	}
	if _, err := EncodeFrame(Frame{Payload: make([]byte, MaxPayload+1)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized payload: err = %v", err)
	}
}

func TestDecoderResync(t *testing.T) {
	t.Parallel()
	enc := func(seq uint8) []byte {
		b, _ := EncodeFrame(Frame{Seq: seq, Type: TypeStatus, Payload: []byte{STX, STX, 0xAA}})
		return b
	}
	f1, f2 := enc(1), enc(2)
	bad := bytes.Clone(f1)
	bad[len(bad)-1] ^= 1
	for _, tc := range []struct {
		name    string
		stream  []byte
		expire  bool
		want    []uint8
		wantBad bool
	}{
		{"garbage between frames", cat([]byte("\xff\x00junk"), f1, []byte{STX, 0x01}, []byte("zz"), f2), true, []uint8{1, 2}, false},
		{"bad CRC then good", cat(bad, f2), true, []uint8{2}, true},
		{"byte at a time", f1, false, []uint8{1}, false},
		{"truncated then complete, expired", cat(f1[:5], f2), true, []uint8{2}, true},
		{"bogus huge length", cat([]byte{STX, 0x7F, 0xFF}, f1), false, []uint8{1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d Decoder
			var got []uint8
			sawBad := false
			if tc.name == "byte at a time" {
				for _, c := range tc.stream {
					d.Feed([]byte{c})
					if f, ok, _ := d.Next(); ok {
						got = append(got, f.Seq)
					}
				}
			} else {
				d.Feed(tc.stream)
				for {
					f, ok, bad := d.Next()
					sawBad = sawBad || bad
					if !ok {
						break
					}
					got = append(got, f.Seq)
				}
				if tc.expire {
					fs, bad := d.Expire()
					sawBad = sawBad || bad
					for _, f := range fs {
						got = append(got, f.Seq)
					}
				}
			}
			if !bytes.Equal(got, tc.want) || sawBad != tc.wantBad {
				t.Fatalf("frames %v badCRC %v, want %v %v", got, sawBad, tc.want, tc.wantBad)
			}
		})
	}
}

func cat(bs ...[]byte) (out []byte) {
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func FuzzDecodeFrame(f *testing.F) {
	good, _ := EncodeFrame(Frame{Seq: 1, Ref: 0, Type: TypeDispense, Payload: Dispense{Amount: 10000, Notes: []Notes{{1, 1}}}.Marshal()})
	f.Add(good)
	f.Add([]byte{STX})
	f.Add([]byte{STX, 0xFF, 0xFF})
	f.Add(cat([]byte("garbage"), good, good[:4]))
	f.Add(cat(good[:len(good)-1], []byte{0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := DecodeFrame(b)
		if err == nil {
			if n > len(b) || n > MaxFrame {
				t.Fatalf("used %d of %d bytes", n, len(b))
			}
			re, err := EncodeFrame(fr)
			if err != nil || !bytes.Equal(re, b[:n]) {
				t.Fatalf("re-encoding %v: %x, want %x (%v)", fr, re, b[:n], err)
			}
		}
		var d Decoder
		d.Feed(b)
		total := 0
		for {
			fr, ok, _ := d.Next()
			if !ok {
				break
			}
			if len(fr.Payload) > MaxPayload {
				t.Fatalf("payload %d > max", len(fr.Payload))
			}
			total++
		}
		d.Expire()
		if d.Buffered() != 0 {
			t.Fatalf("%d bytes left after Expire", d.Buffered())
		}
		// Every message parser must survive any payload.
		p := b
		ParseHello(p)
		ParseHelloReply(p)
		ParseStatus(p)
		ParseShowQR(p)
		ParsePINRequest(p)
		ParsePINReply(p)
		ParseDispense(p)
		ParseTxnReply(p)
		ParseEventMsg(p)
		ParseErrorMsg(p)
		ParseResult(p)
		_ = total
	})
}
