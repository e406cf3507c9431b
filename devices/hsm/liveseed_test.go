package hsm

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"testing"

	"github.com/egate-bank/egate/devices/p11"
	"github.com/egate-bank/egate/devices/p11/p11test"
	"github.com/miekg/pkcs11"
)

// openLive opens a one-session Service with at most live seeds kept per
// session, its calls going through a p11test.Faulty, and a seed-wrap key.
func openLive(t *testing.T, live int) (*Service, *p11test.Faulty) {
	t.Helper()
	need(t)
	cfg := testConfig(testToken)
	cfg.Pool, cfg.LiveSeeds = 1, live
	var f *p11test.Faulty
	s, err := OpenWrapped(context.Background(), cfg, func(c p11.Ctx) p11.Ctx { f = p11test.New(c); return f })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, _, err := s.EnsureKey(context.Background(), KeySpec{LabelSeedWrap, KeySeedWrap}); err != nil {
		t.Fatal(err)
	}
	return s, f
}

// liveHandles returns the object handles the Service keeps live now.
func liveHandles(s *Service) map[pkcs11.ObjectHandle]bool {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	out := map[pkcs11.ObjectHandle]bool{}
	for _, l := range s.live {
		for e := l.order.Front(); e != nil; e = e.Next() {
			out[e.Value.(*liveEntry).obj] = true
		}
	}
	return out
}

// sessionKeysAmong counts the session secret keys the module still has
// (C_FindObjects on the Service's own session) among the handles seen.
func sessionKeysAmong(t *testing.T, s *Service, seen map[pkcs11.ObjectHandle]bool) int {
	t.Helper()
	sh, err := s.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.put(sh)
	hs, err := p11.FindObjects(s.p, sh, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
	}, 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, h := range hs {
		if seen[h] {
			n++
		}
	}
	return n
}

func refMAC(newHash func() hash.Hash, seed, msg []byte) []byte {
	m := hmac.New(newHash, seed)
	m.Write(msg)
	return m.Sum(nil)
}

// TestLiveSeedsSameMACs: a seed kept live gives the same MACs as one
// unwrapped for each call (LiveSeeds -1) and as crypto/hmac, for the RFC
// 4226 seed (HMAC-SHA-1) and the RFC 6238 SHA-256 seed; the second call
// with a blob does not unwrap it again.
func TestLiveSeedsSameMACs(t *testing.T) {
	ctx := context.Background()
	cached, fc := openLive(t, 0)
	uncached, fu := openLive(t, -1)
	rfc6238Seed := []byte("12345678901234567890123456789012")
	for _, tc := range []struct {
		name    string
		seed    []byte
		h       crypto.Hash
		newHash func() hash.Hash
	}{
		{"RFC 4226 SHA-1", rfc4226Seed, crypto.SHA1, sha1.New},
		{"RFC 6238 SHA-256", rfc6238Seed, crypto.SHA256, sha256.New},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blob, err := cached.WrapSeed(ctx, tc.seed)
			if err != nil {
				t.Fatal(err)
			}
			var msgs [][]byte
			for c := range uint64(10) {
				msgs = append(msgs, binary.BigEndian.AppendUint64(nil, c))
			}
			msgs = append(msgs, binary.BigEndian.AppendUint64(nil, 59/30)) // RFC 6238 T = 59
			for round := range 3 {
				u0, c0 := fu.Calls("UnwrapKey"), fc.Calls("UnwrapKey")
				got, err := cached.HMACWrapped(ctx, LabelSeedWrap, blob, tc.h, msgs)
				if err != nil {
					t.Fatal(err)
				}
				want, err := uncached.HMACWrapped(ctx, LabelSeedWrap, blob, tc.h, msgs)
				if err != nil {
					t.Fatal(err)
				}
				for i, msg := range msgs {
					if !hmac.Equal(got[i], want[i]) || !hmac.Equal(got[i], refMAC(tc.newHash, tc.seed, msg)) {
						t.Fatalf("round %d, msg %d: live %x, unwrapped %x, crypto/hmac %x", round, i, got[i], want[i], refMAC(tc.newHash, tc.seed, msg))
					}
				}
				if n := fu.Calls("UnwrapKey") - u0; n != 1 {
					t.Errorf("round %d: LiveSeeds -1 unwrapped %d times, want 1", round, n)
				}
				wantUnwraps := 0
				if round == 0 {
					wantUnwraps = 1
				}
				if n := fc.Calls("UnwrapKey") - c0; n != wantUnwraps {
					t.Errorf("round %d: the live cache unwrapped %d times, want %d", round, n, wantUnwraps)
				}
			}
			if n := len(liveHandles(uncached)); n != 0 {
				t.Errorf("LiveSeeds -1 keeps %d seeds live", n)
			}
		})
	}
}

// TestLiveSeedsLRU: with LiveSeeds 2 on one session, a third seed evicts
// the least recently used one, whose object is destroyed (C_FindObjects on
// the session finds only two of the seeds' objects), and which is
// unwrapped again when next used; the recently used one is not.
func TestLiveSeedsLRU(t *testing.T) {
	ctx := context.Background()
	s, f := openLive(t, 2)
	msg := [][]byte{make([]byte, 8)}
	blobs := map[string][]byte{}
	for _, name := range []string{"a", "b", "c"} {
		seed := []byte("seed " + name + " 0123456789abcdef")
		b, err := s.WrapSeed(ctx, seed)
		if err != nil {
			t.Fatal(err)
		}
		blobs[name] = b
	}
	seen := map[pkcs11.ObjectHandle]bool{}
	for _, step := range []struct {
		use     string
		unwraps int
	}{
		{"a", 1}, {"b", 1}, {"a", 0}, {"c", 1}, // c evicts b, the least recently used
		{"a", 0}, {"b", 1}, {"c", 1}, // b evicts c, then c evicts a
	} {
		before := f.Calls("UnwrapKey")
		if _, err := s.HMACWrapped(ctx, LabelSeedWrap, blobs[step.use], crypto.SHA1, msg); err != nil {
			t.Fatalf("HMAC with %s: %v", step.use, err)
		}
		if n := f.Calls("UnwrapKey") - before; n != step.unwraps {
			t.Fatalf("HMAC with %s unwrapped %d times, want %d", step.use, n, step.unwraps)
		}
		for h := range liveHandles(s) {
			seen[h] = true
		}
		if n := len(liveHandles(s)); n > 2 {
			t.Fatalf("%d seeds live, want at most 2", n)
		}
		if n := sessionKeysAmong(t, s, seen); n != len(liveHandles(s)) {
			t.Fatalf("the module holds %d of the seeds' objects, the cache %d: evicted objects must be destroyed", n, len(liveHandles(s)))
		}
	}
	if len(seen) != 5 {
		t.Errorf("%d distinct objects, want 5 unwraps", len(seen))
	}
}

// TestLiveSeedsSessionLoss: a seed kept in a session that died, or whose
// object vanished, or whose module was reopened after a device fault, is
// unwrapped again on a fresh session; the call succeeds with the right MAC.
func TestLiveSeedsSessionLoss(t *testing.T) {
	ctx := context.Background()
	msg := [][]byte{make([]byte, 8)}
	want := refMAC(sha1.New, rfc4226Seed, msg[0])
	for _, tc := range []struct {
		name       string
		break_     func(t *testing.T, s *Service, f *p11test.Faulty)
		wantReopen int64
	}{
		{"session handle invalid at C_Sign", func(t *testing.T, s *Service, f *p11test.Faulty) {
			f.Inject("SignInit", pkcs11.CKR_SESSION_HANDLE_INVALID, 1)
		}, 0},
		{"object destroyed behind the cache", func(t *testing.T, s *Service, f *p11test.Faulty) {
			sh, err := s.get(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer s.put(sh)
			for h := range liveHandles(s) {
				if err := s.p.DestroyObject(sh, h); err != nil {
					t.Fatal(err)
				}
			}
		}, 0},
		{"module reopened after a general error", func(t *testing.T, s *Service, f *p11test.Faulty) {
			f.Inject("SignInit", pkcs11.CKR_GENERAL_ERROR, 1)
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f := openLive(t, 0)
			blob, err := s.WrapSeed(ctx, rfc4226Seed)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.HMACWrapped(ctx, LabelSeedWrap, blob, crypto.SHA1, msg); err != nil {
				t.Fatal(err)
			}
			old := liveHandles(s)
			if len(old) != 1 {
				t.Fatalf("%d seeds live, want 1", len(old))
			}
			tc.break_(t, s, f)
			before := f.Calls("UnwrapKey")
			got, err := s.HMACWrapped(ctx, LabelSeedWrap, blob, crypto.SHA1, msg)
			if err != nil || !hmac.Equal(got[0], want) {
				t.Fatalf("HMAC after the loss: %x, %v; want %x", got, err, want)
			}
			if n := f.Calls("UnwrapKey") - before; n != 1 {
				t.Errorf("unwrapped %d times after the loss, want 1", n)
			}
			if got := s.Reopened(); got != tc.wantReopen {
				t.Errorf("reopened %d times, want %d", got, tc.wantReopen)
			}
			if n := len(liveHandles(s)); n != 1 {
				t.Errorf("%d seeds live after the loss, want 1 (the dead session's are forgotten)", n)
			}
		})
	}
}

// leftBehind counts the session secret keys the module holds (seen from a
// session of its own) that the Service does not keep live, and those it
// keeps live.
func leftBehind(t *testing.T, s *Service) (left, live int) {
	t.Helper()
	c, sh := rawSession(t, s)
	found, err := p11.FindObjects(c, sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY), pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false)}, 100)
	if err != nil {
		t.Fatal(err)
	}
	lh := liveHandles(s)
	for _, h := range found {
		if !lh[h] {
			left++
		}
	}
	return left, len(lh)
}
