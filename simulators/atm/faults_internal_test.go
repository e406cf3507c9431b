package simatm

import (
	"bytes"
	"io"
	"math/rand"
	"net"
	"testing"

	"github.com/egate-bank/egate/atm"
)

// TestCorruptFramesEveryFrameOfARead: a NAK-storm read lets no frame
// through, however many it holds or where it is cut, and each frame is
// still seen (and NAKed) as exactly one CRC failure.
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
		frames int      // whole frames in them; 0x02 inside a payload makes the decoder
		//                 look for frames inside a broken one, so with stx the
		//                 count of CRC failures is only bounded below
	}{
		{"one frame", [][]byte{status}, 1},
		{"two frames", [][]byte{cat(status, ack)}, 2},
		{"three retransmissions", [][]byte{cat(status, status, status)}, 3},
		{"start bytes inside a payload", [][]byte{cat(stx, status, stx)}, 3},
		{"frame cut across reads", [][]byte{cat(status, stx[:5]), cat(stx[5:], status)}, 3},
		{"cut inside LEN", [][]byte{cat(status, stx[:2]), cat(stx[2:], ack)}, 3},
		{"cut after STX", [][]byte{cat(ack, stx[:1]), cat(stx[1:], status)}, 3},
		{"a read of the header alone", [][]byte{status[:3], status[3:]}, 1},
		{"a long frame over three reads", [][]byte{stx[:2], stx[2:6], stx[6:]}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d atm.Decoder
			var c corrupter
			bad := false
			for _, r := range tc.reads {
				r = bytes.Clone(r)
				c.corrupt(r)
				bad = feedNone(t, &d, r) || bad
			}
			b := expireNone(t, &d)
			// Every frame is recognised and fails its CRC: each is NAKed,
			// none vanishes as garbage.
			withSTX := false
			for _, r := range tc.reads {
				withSTX = withSTX || bytes.Contains(r, stx[6:])
			}
			if !(bad || b) || d.BadCRC < 1 || (!withSTX && d.BadCRC != tc.frames) {
				t.Fatalf("%d CRC failures to NAK, want one per frame (%d)", d.BadCRC, tc.frames)
			}
		})
	}
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// TestCorruptFramesRandomReads: whatever the frames (payloads full of 0x02
// included) and however the line cuts them into reads, a NAK storm lets no
// frame through to the decoder. Fixed seed: a failure replays.
func TestCorruptFramesRandomReads(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(7))
	for iter := 0; iter < 500; iter++ {
		var stream []byte
		for n := 1 + rng.Intn(6); n > 0; n-- {
			payload := make([]byte, rng.Intn(300))
			for i := range payload {
				payload[i] = byte(rng.Intn(4)) // 0x02 often
			}
			b, err := atm.EncodeFrame(atm.Frame{Seq: uint8(rng.Intn(256)), Type: atm.TypeDispense, Payload: payload})
			if err != nil {
				t.Fatal(err)
			}
			stream = append(stream, b...)
		}
		var d atm.Decoder
		cr := &chunks{}
		for len(stream) > 0 {
			k := min(1+rng.Intn(600), len(stream))
			cr.q = append(cr.q, stream[:k])
			stream = stream[k:]
		}
		// Through the simulator's own line: every read is a storm read,
		// however short.
		f := NewFaults(1)
		f.FlipIn = len(cr.q)
		line := &faultLine{rwc: cr, f: f}
		buf := make([]byte, 1024)
		for {
			n, err := line.Read(buf)
			if err != nil {
				break
			}
			feedNone(t, &d, buf[:n])
		}
		expireNone(t, &d)
	}
}

// feedNone feeds p to d and fails the test if a frame comes out through
// the storm; it reports whether a CRC failure was met (the link NAKs it).
func feedNone(t *testing.T, d *atm.Decoder, p []byte) (bad bool) {
	t.Helper()
	d.Feed(p)
	for {
		f, ok, b := d.Next()
		bad = bad || b
		if !ok {
			return bad
		}
		t.Fatalf("frame accepted through the storm: %v", f)
	}
}

// expireNone ends the stream as the link's inter-byte timer does.
func expireNone(t *testing.T, d *atm.Decoder) (bad bool) {
	t.Helper()
	frames, bad := d.Expire()
	if len(frames) != 0 {
		t.Fatalf("frames accepted through the storm: %v", frames)
	}
	return bad
}

// chunks is a line that delivers one queued chunk per Read.
type chunks struct{ q [][]byte }

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.q) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.q[0])
	c.q = c.q[1:]
	return n, nil
}
func (c *chunks) Write(p []byte) (int, error) { return len(p), nil }
func (c *chunks) Close() error                { return nil }

type selfPacing struct {
	io.ReadWriteCloser
	self bool
}

func (s selfPacing) SelfPaced() bool { return s.self }

// TestFaultLineSelfPaced: the fault layer passes on whether the line under
// it paces itself, so the simulator on a real UART is not paced twice.
func TestFaultLineSelfPaced(t *testing.T) {
	t.Parallel()
	plain, other := net.Pipe()
	t.Cleanup(func() { other.Close() })
	for _, tc := range []struct {
		name string
		line io.ReadWriteCloser
		want bool
	}{
		{"UART", selfPacing{plain, true}, true},
		{"pty", selfPacing{plain, false}, false},
		{"pty master", plain, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &faultLine{rwc: tc.line, f: NewFaults(1)}
			if got := l.SelfPaced(); got != tc.want {
				t.Fatalf("SelfPaced() = %v, want %v", got, tc.want)
			}
			lk := atm.NewLink(l, atm.LinkConfig{Baud: 9600})
			paced := lk.Paced()
			lk.Close()
			if paced == tc.want {
				t.Fatalf("link on it: Paced() = %v", paced)
			}
		})
	}
}

// TestCorruptStormEnds: after a one-read storm, the identical
// retransmissions of a frame with a 0x02 among its last bytes get through
// (each was broken again before: the host ran out of retries, seen in the
// withdrawal soak as SHOW_QR with "no ACK after retransmissions" after
// flip-in=1).
func TestCorruptStormEnds(t *testing.T) {
	t.Parallel()
	sticky := 0
	for k := 0; k < 2000; k++ {
		payload := make([]byte, 40)
		for i := range payload {
			payload[i] = byte(k*7 + i*13)
		}
		raw, err := atm.EncodeFrame(atm.Frame{Type: atm.TypeShowQR, Seq: 3, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(raw[len(raw)-3:], []byte{atm.STX}) {
			continue
		}
		sticky++
		// flip-in=1, then the host's retransmissions, one read each
		cr := &chunks{}
		for range 6 {
			cr.q = append(cr.q, raw)
		}
		f := NewFaults(1)
		f.FlipIn = 1
		line := &faultLine{rwc: cr, f: f}
		buf := make([]byte, 1024)
		through := false
		for range 6 {
			n, err := line.Read(buf)
			if err != nil {
				break
			}
			through = through || bytes.Equal(buf[:n], raw)
		}
		if !through {
			t.Fatalf("frame %d (tail % x): every retransmission broken", k, raw[len(raw)-4:])
		}
	}
	if sticky == 0 {
		t.Fatal("no frame with a 0x02 among its last bytes: the test checks nothing")
	}
}
