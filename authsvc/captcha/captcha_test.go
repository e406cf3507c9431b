package captcha

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestRenderGlyphs decodes the PNG and checks that ink was drawn where the
// digits are and that different digits give different pictures.
func TestRenderGlyphs(t *testing.T) {
	t.Parallel()
	a := Render("12345", mrand.New(mrand.NewPCG(1, 2)))
	b := Render("67890", mrand.New(mrand.NewPCG(1, 2)))
	if bytes.Equal(a, b) {
		t.Fatal("different digits, same picture")
	}
	img, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != Width || img.Bounds().Dy() != Height {
		t.Fatalf("size %v", img.Bounds())
	}
	dark := 0
	for y := range Height {
		for x := range Width {
			r, g, _, _ := img.At(x, y).RGBA()
			if r>>8 < 100 && g>>8 < 100 {
				dark++
			}
		}
	}
	// Five digits at 6× scale ink well over a thousand pixels.
	if dark < 1000 {
		t.Fatalf("only %d dark pixels", dark)
	}
}

func TestIssueVerify(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
		s := New(db, func() time.Time { return now }, time.Minute, 4)
		// The answer is only known through the stored hash: find it by
		// trying all 10^4 answers against the hash function.
		ch, err := s.Issue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(ch.PNG)); err != nil {
			t.Fatal(err)
		}
		answer := solve(t, db, ch.ID)
		for _, tc := range []struct {
			name string
			id   string
			ans  string
			want error
		}{
			{"unknown", "nope", answer, ErrGone},
			{"right with spaces", ch.ID, " " + answer[:2] + " " + answer[2:], nil},
			{"reused", ch.ID, answer, ErrGone},
		} {
			if err := s.Verify(ctx, tc.id, tc.ans); !errors.Is(err, tc.want) {
				t.Fatalf("%s: got %v want %v", tc.name, err, tc.want)
			}
		}
		ch2, _ := s.Issue(ctx)
		if err := s.Verify(ctx, ch2.ID, "wrong"); !errors.Is(err, ErrWrong) {
			t.Fatalf("wrong: %v", err)
		}
		if err := s.Verify(ctx, ch2.ID, solve(t, db, ch2.ID)); !errors.Is(err, ErrGone) {
			t.Fatalf("a wrong answer must spend the captcha: %v", err)
		}
		ch3, _ := s.Issue(ctx)
		now = now.Add(2 * time.Minute)
		if err := s.Verify(ctx, ch3.ID, solve(t, db, ch3.ID)); !errors.Is(err, ErrGone) {
			t.Fatalf("expired: %v", err)
		}
	})
}

func solve(t *testing.T, db *store.DB, id string) string {
	t.Helper()
	var h string
	if err := db.QueryRow(context.Background(), `SELECT answer_hash FROM captchas WHERE id = ?`, id).Scan(&h); err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		a := []byte{byte('0' + i/1000), byte('0' + i/100%10), byte('0' + i/10%10), byte('0' + i%10)}
		if answerHash(id, string(a)) == h {
			return string(a)
		}
	}
	t.Fatal("no 4-digit answer matches")
	return ""
}

// TestDiscard: a discarded picture can no longer be answered, even rightly;
// discarding an unknown, used or empty id is no error.
func TestDiscard(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		answers := map[string]string{}
		s := New(db, nil, 0, 0).WithIssueHook(func(id, a string) { answers[id] = a })
		ch, err := s.Issue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{ch.ID, ch.ID, "", "unknown"} {
			if err := s.Discard(ctx, id); err != nil {
				t.Fatalf("discard %q: %v", id, err)
			}
		}
		if err := s.Verify(ctx, ch.ID, answers[ch.ID]); !errors.Is(err, ErrGone) {
			t.Fatalf("discarded picture answered: %v", err)
		}
	})
}
