package pivcard

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
)

// ATR is the answer-to-reset of a YubiKey 5 (USB, CCID): T=1, historical
// bytes "YubiKey". OpenSC and yubico-piv-tool recognise the card by it.
var ATR = []byte{
	0x3b, 0xfd, 0x13, 0x00, 0x00, 0x81, 0x31, 0xfe, 0x15, 0x80, 0x73, 0xc0,
	0x21, 0xc0, 0x57, 0x59, 0x75, 0x62, 0x69, 0x4b, 0x65, 0x79, 0x40,
}

// Config describes a card to open.
type Config struct {
	// Path of the JSON state file. If it does not exist a new card is made
	// and saved there. Empty: the card lives in memory only.
	Path string
	// Vendor signs the attestation certificate of a new card. Required when
	// a new card is made.
	Vendor *Vendor
	// Serial of a new card; 0 picks a random one.
	Serial uint32
	// Version reported by a new card (INS FD); zero means 5.7.1.
	Version [3]byte
	// Touch is asked whenever a key with a touch policy is used; false
	// refuses the operation (the user did not touch). Nil confirms always.
	Touch func(slot byte) bool
	// Rand is the entropy source; nil means crypto/rand.
	Rand io.Reader
	// Trace, if not nil, sees every command APDU and its response (tests
	// use it to tell what reached the card). It must not call the Card.
	Trace func(cmd, resp []byte)
}

// Card is a YubiKey-compatible PIV applet. See the package doc.
type Card struct {
	mu    sync.Mutex
	st    *state
	path  string
	touch func(slot byte) bool
	rand  io.Reader
	trace func(cmd, resp []byte)

	// Volatile security state, cleared by power off and reset.
	selected    bool
	pinVerified bool
	pinFresh    bool // a PIN verification not yet spent by a PIN-always key
	mgmtAuthed  bool
	mgmtPending []byte // expected plaintext of an outstanding management-key challenge
	mgmtMode    byte   // tag of that challenge: 0x80 witness, 0x81 challenge
	touchCached map[byte]bool

	powered chan struct{} // closed once the reader has powered the card and read its ATR
	dirty   bool          // the persistent state changed during this command
	chain   *chainBuf     // command chaining in progress (CLA 0x10)
	pending []byte        // response bytes waiting for GET RESPONSE
}

type chainBuf struct {
	ins, p1, p2 byte
	data        []byte
}

// Open loads the card at cfg.Path, or makes a new one.
func Open(cfg Config) (*Card, error) {
	c := &Card{path: cfg.Path, touch: cfg.Touch, rand: cfg.Rand, trace: cfg.Trace}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if cfg.Path != "" {
		st, err := loadState(cfg.Path)
		if err == nil {
			c.st = st
			return c, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("opening PIV card: %w", err)
		}
	}
	if cfg.Vendor == nil {
		return nil, errors.New("opening PIV card: a new card needs a vendor root to sign its attestation certificate")
	}
	st := &state{Serial: cfg.Serial, Version: cfg.Version, FormFactor: 0x01}
	if st.Serial == 0 {
		var b [4]byte
		if _, err := io.ReadFull(c.rand, b[:]); err != nil {
			return nil, err
		}
		st.Serial = binary.BigEndian.Uint32(b[:])%90_000_000 + 10_000_000
	}
	if st.Version == [3]byte{} {
		st.Version = [3]byte{5, 7, 1}
	}
	st.resetApplet()
	key, certDER, err := newDeviceAttestation(c.rand, cfg.Vendor, st.Serial)
	if err != nil {
		return nil, fmt.Errorf("making attestation key: %w", err)
	}
	der, err := marshalKey(key)
	if err != nil {
		return nil, err
	}
	st.Keys["f9"] = &slotKey{Alg: algECCP256, PINPolicy: pinPolicyNever, TouchPolicy: touchPolicyNever, Origin: originImported, PKCS8: der}
	st.Objects[objAttestation] = certObject(certDER)
	c.st = st
	if cfg.Path != "" {
		if err := st.save(cfg.Path); err != nil {
			return nil, fmt.Errorf("saving new PIV card: %w", err)
		}
	}
	return c, nil
}

// certObject is the content of a certificate data object (SP 800-73-4 Part 1 Table 15).
func certObject(der []byte) []byte {
	b := appendTLV(nil, 0x70, der)
	b = appendTLV(b, 0x71, []byte{0})
	return appendTLV(b, 0xfe, nil)
}

// Serial is the card's serial number.
func (c *Card) Serial() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Serial
}

// ATR returns the answer-to-reset.
func (c *Card) ATR() []byte { return bytes.Clone(ATR) }

// PowerOff, PowerOn and Reset clear the volatile security state, as
// removing the card from the field or a warm reset does.
func (c *Card) PowerOff() { c.clearSession() }
func (c *Card) PowerOn()  { c.clearSession() }
func (c *Card) Reset()    { c.clearSession() }

// Powered returns a channel closed the first time a reader has powered the
// card up and read its ATR: the card is then known to PC/SC.
func (c *Card) Powered() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.powered == nil {
		c.powered = make(chan struct{})
	}
	return c.powered
}

func (c *Card) markPowered() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.powered == nil {
		c.powered = make(chan struct{})
	}
	select {
	case <-c.powered:
	default:
		close(c.powered)
	}
}

func (c *Card) clearSession() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.selected = false
	c.deauth()
	c.chain = nil
	c.pending = nil
}

func (c *Card) deauth() {
	c.pinVerified, c.pinFresh, c.mgmtAuthed = false, false, false
	c.mgmtPending, c.mgmtMode = nil, 0
	c.touchCached = nil
}

const (
	maxChained = 4096 // bytes a chained command may gather (largest object plus framing)
	chunk      = 256  // response bytes per short APDU
)

// Transmit processes one command APDU and returns the response APDU.
func (c *Card) Transmit(apdu []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp := c.transmit(apdu)
	if c.trace != nil {
		c.trace(bytes.Clone(apdu), bytes.Clone(resp))
	}
	return resp
}

func (c *Card) transmit(apdu []byte) []byte {
	cmd, sw := parseCommand(apdu)
	if sw != swOK {
		c.chain, c.pending = nil, nil
		return appendSW(nil, sw)
	}
	if cmd.cla&^0x10 != 0 {
		c.chain, c.pending = nil, nil
		return appendSW(nil, swClaNotSupported)
	}
	if cmd.ins == 0xc0 && cmd.cla == 0 { // GET RESPONSE
		if cmd.p1 != 0 || cmd.p2 != 0 {
			return appendSW(nil, swIncorrectP1P2)
		}
		if len(c.pending) == 0 {
			return appendSW(nil, swConditionsNotMet)
		}
		le := cmd.le
		if le == 0 {
			le = chunk
		}
		return c.emit(le)
	}
	c.pending = nil

	if cmd.cla&0x10 != 0 {
		if c.chain == nil || c.chain.ins != cmd.ins || c.chain.p1 != cmd.p1 || c.chain.p2 != cmd.p2 {
			c.chain = &chainBuf{ins: cmd.ins, p1: cmd.p1, p2: cmd.p2}
		}
		if len(c.chain.data)+len(cmd.data) > maxChained {
			c.chain = nil
			return appendSW(nil, swWrongLength)
		}
		c.chain.data = append(c.chain.data, cmd.data...)
		return appendSW(nil, swOK)
	}
	if ch := c.chain; ch != nil {
		c.chain = nil
		// A chain broken off by a different command is dropped; the new
		// command stands on its own.
		if ch.ins == cmd.ins && ch.p1 == cmd.p1 && ch.p2 == cmd.p2 {
			cmd.data = append(ch.data, cmd.data...)
		}
	}

	c.dirty = false
	resp, sw := c.dispatch(cmd)
	if c.dirty && c.path != "" {
		if err := c.st.save(c.path); err != nil {
			return appendSW(nil, swMemoryFailure)
		}
	}
	if sw != swOK {
		return appendSW(nil, sw)
	}
	max := chunk
	if cmd.extended {
		max = cmd.le
		if max == 0 {
			max = 65536
		}
	}
	c.pending = resp
	return c.emit(max)
}

// emit returns up to n pending bytes, with 61xx when more remain.
func (c *Card) emit(n int) []byte {
	if n > len(c.pending) {
		n = len(c.pending)
	}
	out := bytes.Clone(c.pending[:n])
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.pending = nil
		return appendSW(out, swOK)
	}
	left := len(c.pending)
	if left > 0xff {
		left = 0
	}
	return appendSW(out, swBytesRemaining|uint16(left))
}
