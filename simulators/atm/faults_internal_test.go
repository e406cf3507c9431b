package simatm

import (
	"bytes"
	"testing"

	"github.com/egate-bank/egate/atm"
)

// TestCorruptFramesEveryFrameOfARead: a NAK-storm read lets no frame
// through, however many it holds or where it is cut, and each whole frame
// is still seen (and NAKed) as a CRC failure.
func TestCorruptFramesEveryFrameOfARead(t *testing.T) {
	t.Parallel()
	frame := func(seq uint8, typ atm.MsgType, payload []byte) []byte {
		b, err := atm.EncodeFrame(atm.Frame{Seq: seq, Type: typ, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	status, ack := frame(2, atm.TypeStatus, nil), frame(2, atm.TypeACK, nil)
	stx := frame(7, atm.TypeDispense, []byte{atm.STX, 0x00, 0x05, atm.STX, atm.STX}) // 0x02 inside the payload
	for _, tc := range []struct {
		name   string
		reads  [][]byte // what the ATM reads; every read is corrupted
		frames int      // whole frames in them
	}{
		{"one frame", [][]byte{status}, 1},
		{"two frames", [][]byte{cat(status, ack)}, 2},
		{"three retransmissions", [][]byte{cat(status, status, status)}, 3},
		{"start bytes inside a payload", [][]byte{cat(stx, status, stx)}, 3},
		{"frame cut across reads", [][]byte{cat(status, stx[:5]), cat(stx[5:], status)}, 3},
		{"cut inside LEN", [][]byte{cat(status, stx[:2]), cat(stx[2:], ack)}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d atm.Decoder
			bad := false
			for _, r := range tc.reads {
				r = bytes.Clone(r)
				corruptFrames(r)
				d.Feed(r)
				for {
					f, ok, b := d.Next()
					bad = bad || b
					if !ok {
						break
					}
					t.Fatalf("frame accepted through the storm: %v", f)
				}
			}
			frames, b := d.Expire()
			if len(frames) != 0 {
				t.Fatalf("frames accepted through the storm: %v", frames)
			}
			if !(bad || b) || d.BadCRC < 1 {
				t.Fatalf("no CRC failure to NAK (bad CRC %d)", d.BadCRC)
			}
		})
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
