package simatm

import (
	"fmt"
	"io"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/egate-bank/egate/atm"
)

// Faults are the injectable faults of DESIGN.md §5. Counters mean "the next
// N times". Every random choice comes from one generator seeded with Seed, so
// a failing run can be replayed with the same seed and fault list.
//
// Set them by name (flag --fault name=value, or POST /faults): see FaultNames.
type Faults struct {
	mu  sync.Mutex
	rng *rand.Rand

	// line faults, applied to the simulator's own writes and reads
	FlipOut     int     // flip one byte of the next N outgoing data frames
	GarbageOut  int     // write garbage (with STX bytes in it) before the next N frames
	TruncateOut int     // cut the next N outgoing data frames short
	DropACK     int     // drop the next N ACKs we send (the host retransmits)
	DropReply   int     // drop the next N transmissions of replies
	FlipIn      int     // corrupt the next N incoming reads: we NAK them (a NAK storm)
	LineNoise   float64 // probability per outgoing frame of a random line fault

	// device faults
	JamAfter         int           // jam after N notes of the next dispense (-1 off; 0 = nothing out)
	RejectEvery      int           // reject every Nth pick of the next dispense (1 = all: too many rejects)
	MissingCassette  int           // cassette id reported missing (0 off)
	EmptyCassette    int           // cassette id emptied (0 off)
	CustomerTakes    bool          // the customer takes presented cash (else it is retracted)
	TakeDuringRetr   int           // the customer grabs the cash as the next N retracts start
	RetractUnknown   int           // the next N retracts cannot count the notes
	CrashAfterPick   int           // kill -9 ourselves after picking N notes of the next dispense (0 off)
	LineDownMid      time.Duration // the line goes dead for this long in the middle of the next dispense or host retract
	ResetTwice       int           // answer the next N HELLOs twice
	EventsReversed   int           // send the next N event pairs out of order
	EventsDuplicated int           // send the next N events twice (as distinct frames)
	PickDelay        time.Duration // extra mechanical time per note (slow dispense)

	lineDownUntil time.Time
}

// NewFaults returns an empty fault set whose randomness comes from seed.
func NewFaults(seed int64) *Faults {
	return &Faults{rng: rand.New(rand.NewSource(seed)), JamAfter: -1, CustomerTakes: true}
}

// FaultNames lists the names Set accepts.
func FaultNames() []string {
	n := make([]string, 0, len(faultSetters))
	for k := range faultSetters {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

var faultSetters = map[string]func(f *Faults, v string) error{
	"flip-out":            intField(func(f *Faults) *int { return &f.FlipOut }),
	"garbage-out":         intField(func(f *Faults) *int { return &f.GarbageOut }),
	"truncate-out":        intField(func(f *Faults) *int { return &f.TruncateOut }),
	"drop-ack":            intField(func(f *Faults) *int { return &f.DropACK }),
	"drop-reply":          intField(func(f *Faults) *int { return &f.DropReply }),
	"nak-storm":           intField(func(f *Faults) *int { return &f.FlipIn }),
	"flip-in":             intField(func(f *Faults) *int { return &f.FlipIn }),
	"jam-after":           intField(func(f *Faults) *int { return &f.JamAfter }),
	"reject-every":        intField(func(f *Faults) *int { return &f.RejectEvery }),
	"missing-cassette":    intField(func(f *Faults) *int { return &f.MissingCassette }),
	"empty-cassette":      intField(func(f *Faults) *int { return &f.EmptyCassette }),
	"take-during-retract": intField(func(f *Faults) *int { return &f.TakeDuringRetr }),
	"retract-unknown":     intField(func(f *Faults) *int { return &f.RetractUnknown }),
	"crash-after-pick":    intField(func(f *Faults) *int { return &f.CrashAfterPick }),
	"reset-twice":         intField(func(f *Faults) *int { return &f.ResetTwice }),
	"events-reversed":     intField(func(f *Faults) *int { return &f.EventsReversed }),
	"events-duplicated":   intField(func(f *Faults) *int { return &f.EventsDuplicated }),
	"line-noise": func(f *Faults, v string) error {
		p, err := strconv.ParseFloat(v, 64)
		if err != nil || p < 0 || p > 1 {
			return fmt.Errorf("line-noise %q: want a probability 0..1", v)
		}
		f.LineNoise = p
		return nil
	},
	"customer-takes": func(f *Faults, v string) error {
		b, err := strconv.ParseBool(v)
		f.CustomerTakes = b
		return err
	},
	"line-down-mid": durField(func(f *Faults) *time.Duration { return &f.LineDownMid }),
	"pick-delay":    durField(func(f *Faults) *time.Duration { return &f.PickDelay }),
}

func intField(p func(*Faults) *int) func(*Faults, string) error {
	return func(f *Faults, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q: want an integer", v)
		}
		*p(f) = n
		return nil
	}
}

func durField(p func(*Faults) *time.Duration) func(*Faults, string) error {
	return func(f *Faults, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q: want a duration", v)
		}
		*p(f) = d
		return nil
	}
}

// Set sets one fault from "name=value" (or "name", meaning 1 / true).
func (f *Faults) Set(spec string) error {
	name, val, ok := strings.Cut(strings.TrimSpace(spec), "=")
	if !ok {
		val = "1"
		if name == "customer-takes" {
			val = "true"
		}
	}
	set, found := faultSetters[name]
	if !found {
		return fmt.Errorf("unknown fault %q (known: %s)", name, strings.Join(FaultNames(), ", "))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := set(f, val); err != nil {
		return fmt.Errorf("fault %s: %w", name, err)
	}
	return nil
}

// take consumes one occurrence of a counted fault.
func (f *Faults) take(p *int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *p > 0 {
		*p--
		return true
	}
	return false
}

func (f *Faults) get(fn func(*Faults) int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fn(f)
}

func (f *Faults) intn(n int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rng.Intn(n)
}

func (f *Faults) setLineDown(d time.Duration) {
	f.mu.Lock()
	f.lineDownUntil = time.Now().Add(d)
	f.mu.Unlock()
}

func (f *Faults) lineDown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Now().Before(f.lineDownUntil)
}

// faultLine applies the line faults to a line. The link writes exactly one
// whole frame per Write, so a Write can be looked at as a frame.
type faultLine struct {
	rwc io.ReadWriteCloser
	f   *Faults
	c   corrupter // used by Read only (one reader)
}

func (l *faultLine) Read(p []byte) (int, error) {
	for {
		n, err := l.rwc.Read(p)
		if n > 0 && l.f.lineDown() {
			continue // the line is dead: nothing arrives
		}
		// A frame whose header the last corrupted read cut is broken in
		// this read even if the storm has just ended.
		switch {
		case n == 0:
		case l.f.take(&l.f.FlipIn):
			l.c.corrupt(p[:n])
		case l.c.pending():
			l.c.corruptHead(p[:n])
		}
		return n, err
	}
}

// corrupter makes every frame of a NAK storm fail its CRC, following
// frames across reads.
//
// Every frame that starts in a corrupted read is broken, however many the
// read holds: a host whose retransmissions pile up while this side is slow
// to read delivers three or more in one read. (Corrupting only the first
// and the last frame of a read let a middle one through, and a "NAK storm"
// then let a request in.) STX and LEN are never touched, so that each frame
// is recognised and fails its CRC (and is NAKed) rather than vanishing as
// garbage: the frame's last byte is flipped, or the read's last byte when
// the frame goes on in the next read. A frame whose header (STX, LEN) ends
// a read is remembered and its last byte is flipped in the next read.
// Every 0x02 is taken for a possible start, so a real frame is never
// skipped; a 0x02 inside a payload may make a second byte of that frame
// flip, which breaks nothing more.
type corrupter struct {
	head []byte // STX and the part of LEN that ended the last corrupted read (at most 3 bytes)
}

func (c *corrupter) pending() bool { return len(c.head) > 0 }

// corrupt corrupts a read of the storm: every frame that starts in it.
func (c *corrupter) corrupt(p []byte) { c.corruptFrom(p, true) }

// corruptHead corrupts a read after the storm only for the frame whose
// header the last corrupted read cut. A 0x02 near the end of a frame is
// taken for such a header too; were every frame of the next read broken,
// a frame with a 0x02 among its last bytes would be broken again in each
// of its retransmissions, the storm never ending (a host out of retries
// after one corrupted read).
func (c *corrupter) corruptHead(p []byte) { c.corruptFrom(p, false) }

func (c *corrupter) corruptFrom(p []byte, storm bool) {
	full := append(append([]byte(nil), c.head...), p...)
	off := len(c.head) // full[off:] is p
	c.head = nil
	flip := map[int]bool{}
	for i := range full {
		if full[i] != atm.STX || !storm && i > 0 {
			continue
		}
		if i+4 > len(full) { // the read ends within STX and LEN
			c.head = append([]byte(nil), full[i:]...)
			continue
		}
		n := int(full[i+1])<<8 | int(full[i+2])
		if n < 3 || n > 3+atm.MaxPayload {
			continue // not a start: the length is out of range
		}
		if last := min(i+3+n+2, len(full)) - 1; last >= off {
			flip[last-off] = true
		}
	}
	if storm && len(flip) == 0 && c.head == nil {
		flip[len(p)-1] = true // the middle of a frame begun in an earlier read
	}
	for i := range flip {
		p[i] ^= 0x5A
	}
}

func (l *faultLine) Write(p []byte) (int, error) {
	if l.f.lineDown() {
		return len(p), nil
	}
	fr, _, err := atm.DecodeFrame(p)
	if err != nil {
		return l.rwc.Write(p)
	}
	f := l.f
	data := fr.Type != atm.TypeACK && fr.Type != atm.TypeNAK
	if !data && fr.Type == atm.TypeACK && f.take(&f.DropACK) {
		return len(p), nil
	}
	if data && fr.Ref != 0 && f.take(&f.DropReply) {
		return len(p), nil
	}
	out := p
	if data && f.LineNoise > 0 {
		f.mu.Lock()
		hit := f.rng.Float64() < f.LineNoise
		kind := f.rng.Intn(4)
		f.mu.Unlock()
		if hit {
			switch kind {
			case 0:
				f.mu.Lock()
				f.FlipOut++
				f.mu.Unlock()
			case 1:
				f.mu.Lock()
				f.GarbageOut++
				f.mu.Unlock()
			case 2:
				f.mu.Lock()
				f.TruncateOut++
				f.mu.Unlock()
			case 3:
				return len(p), nil // lost frame
			}
		}
	}
	if data && f.take(&f.TruncateOut) {
		out = p[:1+f.intn(len(p)-1)]
	}
	if data && f.take(&f.FlipOut) {
		out = append([]byte(nil), out...)
		out[1+f.intn(len(out)-1)] ^= 1 << f.intn(8)
	}
	if f.take(&f.GarbageOut) {
		g := make([]byte, 1+f.intn(12))
		for i := range g {
			g[i] = byte(f.intn(256))
		}
		g[0] = atm.STX
		out = append(g, out...)
	}
	if _, err := l.rwc.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (l *faultLine) Close() error { return l.rwc.Close() }

// SelfPaced passes on whether the line underneath paces itself (a real
// UART opened with atm.OpenSerial), so the link does not pace it again.
func (l *faultLine) SelfPaced() bool {
	sp, ok := l.rwc.(atm.SelfPacedLine)
	return ok && sp.SelfPaced()
}
