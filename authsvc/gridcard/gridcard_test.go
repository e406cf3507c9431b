package gridcard

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/authn/authntest"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// gcmSealer stands in for the HSM in the table tests (TestWithHSM uses SoftHSM).
type gcmSealer struct {
	aead cipher.AEAD
	// barrier, when set, holds every Unseal until barrier's count of them
	// have arrived: answers in parallel all pass their checks before any
	// counts its use.
	barrier *sync.WaitGroup
}

func newSealer() *gcmSealer {
	k := make([]byte, 32)
	rand.Read(k)
	b, _ := aes.NewCipher(k)
	a, _ := cipher.NewGCM(b)
	return &gcmSealer{aead: a}
}

func (g *gcmSealer) Seal(_ context.Context, label string, pt, aad []byte) ([]byte, error) {
	n := make([]byte, g.aead.NonceSize())
	rand.Read(n)
	return g.aead.Seal(n, n, pt, append([]byte(label), aad...)), nil
}

func (g *gcmSealer) Unseal(_ context.Context, label string, s, aad []byte) ([]byte, error) {
	if g.barrier != nil {
		g.barrier.Done()
		g.barrier.Wait()
	}
	ns := g.aead.NonceSize()
	return g.aead.Open(nil, s[:ns], s[ns:], append([]byte(label), aad...))
}

// clock is the tests' movable wall clock.
type clock = authntest.Clock

func answer(t testing.TB, card *Card, ch authn.Challenge) []byte {
	t.Helper()
	var out []string
	for _, cell := range strings.Split(string(ch.Data), ",") {
		code, ok := card.Code(cell)
		if !ok {
			t.Fatalf("cell %q not on the card", cell)
		}
		out = append(out, code)
	}
	return []byte(strings.Join(out, " "))
}

func wrong(ans []byte) []byte {
	w := bytes.Clone(ans)
	w[0] = '0' + (w[0]-'0'+1)%10
	return w
}

func TestVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &clock{}
		s, err := New(db, newSealer(), Config{MaxUses: 1000}, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		f := s.Factor()
		begin := func(t *testing.T, who string) authn.Challenge {
			ch, err := f.Begin(ctx, authn.BeginRequest{PassportID: who, Purpose: authn.PurposeLogin})
			if err != nil {
				t.Fatal(err)
			}
			cells := strings.Split(string(ch.Data), ",")
			if len(cells) != 3 || cells[0] == cells[1] || cells[1] == cells[2] || cells[0] == cells[2] {
				t.Fatalf("cells %v: want 3 distinct", cells)
			}
			return ch
		}
		card, err := s.Issue(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if len(card.Codes) != 80 || len(card.Serial) != 12 {
			t.Fatalf("card %d codes serial %q", len(card.Codes), card.Serial)
		}
		cases := []struct {
			name   string
			answer func(ch, other authn.Challenge) []byte
			id     func(ch, other authn.Challenge) string
			who    string
			want   error
		}{
			{name: "right", answer: func(ch, _ authn.Challenge) []byte { return answer(t, card, ch) }},
			{name: "right with commas", answer: func(ch, _ authn.Challenge) []byte {
				return bytes.ReplaceAll(answer(t, card, ch), []byte(" "), []byte(","))
			}},
			{name: "wrong digit", answer: func(ch, _ authn.Challenge) []byte { return wrong(answer(t, card, ch)) }, want: authn.ErrWrongAnswer},
			{name: "answer for another challenge", answer: func(_, other authn.Challenge) []byte { return answer(t, card, other) }, want: authn.ErrWrongAnswer},
			{name: "too few digits", answer: func(ch, _ authn.Challenge) []byte { return answer(t, card, ch)[:5] }, want: authn.ErrBadResponse},
			{name: "letters", answer: func(ch, _ authn.Challenge) []byte { return []byte("12a 456 789") }, want: authn.ErrBadResponse},
			{name: "unknown challenge", answer: func(ch, _ authn.Challenge) []byte { return answer(t, card, ch) },
				id: func(_, _ authn.Challenge) string { return "nope" }, want: authn.ErrUnknown},
			{name: "someone else's challenge", who: "bob", answer: func(ch, _ authn.Challenge) []byte { return answer(t, card, ch) }, want: authn.ErrUnknown},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ch := begin(t, "alice")
				// Another challenge whose right answer differs from ch's: two
				// cell sets can differ yet read the same digits off the card.
				other := begin(t, "alice")
				for string(other.Data) == string(ch.Data) || bytes.Equal(answer(t, card, other), answer(t, card, ch)) {
					other = begin(t, "alice")
				}
				id := ch.ID
				if tc.id != nil {
					id = tc.id(ch, other)
				}
				who := "alice"
				if tc.who != "" {
					who = tc.who
				}
				usesBefore := uses(t, db, card.Serial)
				res, err := f.Verify(ctx, authn.VerifyRequest{PassportID: who, ChallengeID: id, Response: tc.answer(ch, other)})
				if !errors.Is(err, tc.want) {
					t.Fatalf("Verify = %v, want %v", err, tc.want)
				}
				if err != nil {
					if uses(t, db, card.Serial) != usesBefore {
						t.Fatal("a refused answer counted a use")
					}
					// The challenge is still there for the right answer.
					if _, err := f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: answer(t, card, ch)}); err != nil {
						t.Fatalf("right answer after a refused one: %v", err)
					}
					return
				}
				if res.Level != 2 || res.Factor != Name {
					t.Fatalf("result %+v", res)
				}
				if _, err := f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: tc.answer(ch, other)}); !errors.Is(err, authn.ErrUsed) {
					t.Fatalf("reuse: %v, want ErrUsed", err)
				}
			})
		}
		t.Run("expired challenge", func(t *testing.T) {
			ch := begin(t, "alice")
			clk.Advance(4 * time.Minute)
			defer clk.Advance(-4 * time.Minute)
			if _, err := f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: answer(t, card, ch)}); !errors.Is(err, authn.ErrExpired) {
				t.Fatalf("Verify = %v, want ErrExpired", err)
			}
		})
		t.Run("reissue replaces the card", func(t *testing.T) {
			ch := begin(t, "alice")
			card2, err := s.Issue(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: answer(t, card, ch)}); !errors.Is(err, authn.ErrRevoked) {
				t.Fatalf("answer from the old card = %v, want ErrRevoked", err)
			}
			card = card2
		})
	})
}

func uses(t *testing.T, db *store.DB, serial string) int {
	var n int
	if err := db.QueryRow(context.Background(), `SELECT uses FROM gridcards WHERE serial = ?`, serial).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestExpiresAfterUses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := New(db, newSealer(), Config{MaxUses: 2}, nil)
		f := s.Factor()
		card, _ := s.Issue(ctx, "alice")
		for i := range 2 {
			ch, err := f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: answer(t, card, ch)}); err != nil {
				t.Fatalf("use %d: %v", i+1, err)
			}
		}
		if _, err := f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin}); !errors.Is(err, ErrExhausted) {
			t.Fatalf("Begin after MaxUses = %v, want ErrExhausted", err)
		}
		if ok, _ := f.Enrolled(ctx, "alice"); ok {
			t.Fatal("an exhausted card counts as enrolled")
		}
	})
}

// TestLastUseParallel answers many challenges rightly at once when the card
// has one use left: exactly one is accepted, the others are refused as
// exhausted, and the card never counts past MaxUses.
func TestLastUseParallel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const maxUses, n = 3, 12
		sealer := newSealer()
		s, _ := New(db, sealer, Config{MaxUses: maxUses, MaxAttempts: 20}, nil)
		f := s.Factor()
		card, _ := s.Issue(ctx, "alice")
		for i := range maxUses - 1 {
			ch, _ := f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
			if _, err := f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: answer(t, card, ch)}); err != nil {
				t.Fatalf("use %d: %v", i+1, err)
			}
		}
		reqs := make([]authn.VerifyRequest, n)
		for i := range reqs {
			ch, err := f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
			if err != nil {
				t.Fatal(err)
			}
			reqs[i] = authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: answer(t, card, ch)}
		}
		sealer.barrier = new(sync.WaitGroup)
		sealer.barrier.Add(n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range reqs {
			wg.Go(func() { _, errs[i] = f.Verify(ctx, reqs[i]) })
		}
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrExhausted):
			default:
				t.Errorf("answer %d: %v, want success or ErrExhausted", i, err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d right answers accepted with one use left, want 1", ok)
		}
		var uses, attempts int
		if err := db.QueryRow(ctx, `SELECT uses, attempts FROM gridcards WHERE passport_id = ?`, "alice").Scan(&uses, &attempts); err != nil {
			t.Fatal(err)
		}
		if uses != maxUses || attempts != 0 {
			t.Fatalf("card uses %d attempts %d, want %d and 0", uses, attempts, maxUses)
		}
	})
}

// TestLockoutParallel sends many wrong answers at once: exactly MaxAttempts
// of them are compared (and refused as wrong), the rest are refused as
// locked, and then even the right answer is refused.
func TestLockoutParallel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := New(db, newSealer(), Config{MaxAttempts: 5}, nil)
		f := s.Factor()
		card, _ := s.Issue(ctx, "alice")
		const n = 20
		var chs []authn.Challenge
		for range n {
			ch, err := f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
			if err != nil {
				t.Fatal(err)
			}
			chs = append(chs, ch)
		}
		ch := chs[0]
		var reqs []authn.VerifyRequest
		for i := range n {
			reqs = append(reqs, authn.VerifyRequest{PassportID: "alice", ChallengeID: chs[i].ID, Response: wrong(answer(t, card, chs[i]))})
		}
		wrongN, lockedN := authntest.WrongConcurrently(ctx, t, f, reqs)
		if wrongN != 5 || lockedN != n-5 {
			t.Fatalf("%d wrong, %d locked; want 5 and %d", wrongN, lockedN, n-5)
		}
		_, err := f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: answer(t, card, ch)})
		var le *authn.LockedError
		if !errors.As(err, &le) {
			t.Fatalf("right answer on a locked card = %v, want LockedError", err)
		}
	})
}

func TestSingleUseParallel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := New(db, newSealer(), Config{}, nil)
		f := s.Factor()
		card, _ := s.Issue(ctx, "alice")
		ch, _ := f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
		good := answer(t, card, ch)
		ok, used := authntest.VerifyConcurrently(ctx, t, f, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: good}, 12)
		if ok != 1 || used != 11 {
			t.Fatalf("%d ok, %d used; want 1 and 11", ok, used)
		}
		if uses(t, db, card.Serial) != 1 {
			t.Fatalf("uses = %d", uses(t, db, card.Serial))
		}
	})
}

func TestRenderPNG(t *testing.T) {
	s, _ := New(storetest.SQLite(t), newSealer(), Config{}, nil)
	card, err := s.Issue(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := RenderPNG(&buf, card); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if b.Dx() < 900 || b.Dy() < 600 {
		t.Fatalf("image %v too small to print", b)
	}
	var dark int
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			if r, _, _, _ := img.At(x, y).RGBA(); r < 0x8000 {
				dark++
			}
		}
	}
	if dark < 1000 {
		t.Fatalf("image nearly blank: %d dark samples", dark)
	}
}

// TestWithHSM seals the card with the real HSM service on SoftHSM2.
func TestWithHSM(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	s, _ := New(db, hsmtest.Open(t), Config{}, nil)
	card, err := s.Issue(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var sealed []byte
	db.QueryRow(ctx, `SELECT sealed FROM gridcards WHERE serial = ?`, card.Serial).Scan(&sealed)
	if bytes.Contains(sealed, []byte(strings.Join(card.Codes[:4], ""))) {
		t.Fatal("codes stored in clear")
	}
	f := s.Factor()
	ch, _ := f.Begin(ctx, authn.BeginRequest{PassportID: "alice", Purpose: authn.PurposeLogin})
	if _, err := f.Verify(ctx, authn.VerifyRequest{PassportID: "alice", ChallengeID: ch.ID, Response: answer(t, card, ch)}); err != nil {
		t.Fatal(err)
	}
}

func TestMain(m *testing.M) { hsmtest.Main(m) }
