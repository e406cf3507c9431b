package hsm

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"

	"github.com/miekg/pkcs11"
)

// DefaultLiveSeeds is the number of unwrapped seeds each pooled session
// keeps when Config.LiveSeeds is 0.
const DefaultLiveSeeds = 256

// MaxLiveSeeds bounds Config.LiveSeeds.
const MaxLiveSeeds = 65536

// liveKey names an unwrapped seed by what it was made from: the wrap key's
// reference and object handle and the wrapped blob. No seed, and nothing
// the seed could be recomputed from without the HSM, is kept in Go memory.
type liveKey [sha256.Size]byte

func liveKeyOf(wrapKeyRef string, wk pkcs11.ObjectHandle, wrapped []byte) liveKey {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(wrapKeyRef)))
	h.Write(n[:])
	h.Write([]byte(wrapKeyRef))
	binary.BigEndian.PutUint64(n[:], uint64(wk))
	h.Write(n[:])
	h.Write(wrapped)
	var k liveKey
	h.Sum(k[:0])
	return k
}

type liveEntry struct {
	key liveKey
	obj pkcs11.ObjectHandle
}

// liveSeeds is one session's least-recently-used set of unwrapped seeds:
// session objects (CKA_TOKEN false) made by C_UnwrapKey with the seed-wrap
// key's unwrap template, so sensitive, never extractable and sign-only. It
// is used only by the goroutine that holds the session, and forgotten
// (the module destroys the objects) when the session is closed.
type liveSeeds struct {
	max   int
	order *list.List // of *liveEntry, most recently used first
	byKey map[liveKey]*list.Element
}

func newLiveSeeds(max int) *liveSeeds {
	return &liveSeeds{max: max, order: list.New(), byKey: make(map[liveKey]*list.Element)}
}

func (l *liveSeeds) get(k liveKey) (pkcs11.ObjectHandle, bool) {
	e, ok := l.byKey[k]
	if !ok {
		return 0, false
	}
	l.order.MoveToFront(e)
	return e.Value.(*liveEntry).obj, true
}

// add records obj under k and returns the objects evicted to keep the
// bound; the caller destroys them.
func (l *liveSeeds) add(k liveKey, obj pkcs11.ObjectHandle) []pkcs11.ObjectHandle {
	l.byKey[k] = l.order.PushFront(&liveEntry{k, obj})
	var out []pkcs11.ObjectHandle
	for l.order.Len() > l.max {
		e := l.order.Back()
		l.order.Remove(e)
		le := e.Value.(*liveEntry)
		delete(l.byKey, le.key)
		out = append(out, le.obj)
	}
	return out
}

// remove forgets k (its object is stale or being destroyed).
func (l *liveSeeds) remove(k liveKey) {
	if e, ok := l.byKey[k]; ok {
		l.order.Remove(e)
		delete(l.byKey, k)
	}
}

func (l *liveSeeds) len() int { return l.order.Len() }

// liveFor returns the live-seed set of session sh, creating it.
func (s *Service) liveFor(sh pkcs11.SessionHandle) *liveSeeds {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	l, ok := s.live[sh]
	if !ok {
		l = newLiveSeeds(s.cfg.liveSeeds())
		s.live[sh] = l
	}
	return l
}

// forgetLive drops the live-seed set of a session that is being closed or
// is dead: its objects go with the session, and the module may hand the
// same handle to a new session.
func (s *Service) forgetLive(sh pkcs11.SessionHandle) {
	s.liveMu.Lock()
	delete(s.live, sh)
	s.liveMu.Unlock()
}

// closeSession closes a pooled session and forgets its live seeds.
func (s *Service) closeSession(sh pkcs11.SessionHandle) {
	s.forgetLive(sh)
	_ = s.p.CloseSession(sh)
}
