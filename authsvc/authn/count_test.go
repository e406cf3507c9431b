package authn

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// tool is a Factor whose Verify answers err; own says it counts its own
// failures.
type tool struct {
	own      bool
	err      error
	verified int
}

func (t *tool) Name() string                                   { return "tool" }
func (t *tool) Level() Level                                   { return 3 }
func (t *tool) Enrolled(context.Context, string) (bool, error) { return true, nil }
func (t *tool) Begin(context.Context, BeginRequest) (Challenge, error) {
	return Challenge{}, nil
}
func (t *tool) Verify(context.Context, VerifyRequest) (Result, error) {
	t.verified++
	return Result{Factor: "tool"}, t.err
}
func (t *tool) CountsOwnFailures() bool { return t.own }

// attempts records what the passport's side was told.
type attempts struct {
	locked      bool
	begun, kept int // slots reserved; slots kept as failures
	failed      []int
	failedUntil time.Time
}

func (a *attempts) BeginFactor(context.Context, string, string) (func(context.Context, bool, string) error, error) {
	if a.locked {
		return nil, &LockedError{Factor: "tool"}
	}
	a.begun++
	return func(_ context.Context, ok bool, _ string) error {
		if !ok {
			a.kept++
		}
		return nil
	}, nil
}

func (a *attempts) FactorFailed(_ context.Context, _, _, _ string, left int, until time.Time) error {
	a.failed, a.failedUntil = append(a.failed, left), until
	return nil
}

// TestCounted: an answer is counted once, on the tool's one counter: a
// self-counting tool's failure is only reported to the passport (with what
// its counter says is left), any other tool's takes a passport slot; what
// checked no secret counts nothing anywhere.
func TestCounted(t *testing.T) {
	until := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		own    bool
		locked bool
		err    error
		// want: passport slots kept as failures, failures reported, Verify calls
		kept     int
		reported []int
		verified int
	}{
		{name: "own: right", own: true, verified: 1},
		{name: "own: wrong", own: true, err: &WrongAnswerError{Tool: "t", Left: 3}, reported: []int{3}, verified: 1},
		{name: "own: wrong and locked", own: true, err: fmt.Errorf("%w; %w", ErrWrongAnswer, &LockedError{Factor: "t", Until: until}), reported: []int{0}, verified: 1},
		{name: "own: replay", own: true, err: ErrReplay, reported: []int{-1}, verified: 1},
		{name: "own: malformed", own: true, err: ErrBadResponse, verified: 1},
		{name: "own: other transaction", own: true, err: ErrOtherTransaction, verified: 1},
		{name: "own: unavailable", own: true, err: ErrUnavailable, verified: 1},
		{name: "passport: right", verified: 1},
		{name: "passport: wrong", err: ErrWrongAnswer, kept: 1, verified: 1},
		{name: "passport: replay", err: ErrReplay, kept: 1, verified: 1},
		{name: "passport: malformed", err: ErrBadResponse, verified: 1},
		{name: "passport: used", err: ErrUsed, verified: 1},
		{name: "passport: other transaction", err: ErrOtherTransaction, verified: 1},
		{name: "passport: unavailable", err: ErrUnavailable, verified: 1},
		{name: "passport: locked", locked: true, verified: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, a := &tool{own: tc.own, err: tc.err}, &attempts{locked: tc.locked}
			_, err := Counted(context.Background(), f, a, VerifyRequest{PassportID: "P1"})
			if tc.locked {
				if !errors.Is(err, ErrLocked) {
					t.Fatalf("Counted = %v, want locked", err)
				}
			} else if !errors.Is(err, tc.err) {
				t.Fatalf("Counted = %v, want %v", err, tc.err)
			}
			if a.kept != tc.kept || fmt.Sprint(a.failed) != fmt.Sprint(tc.reported) || f.verified != tc.verified {
				t.Fatalf("kept %d reported %v verified %d; want %d %v %d", a.kept, a.failed, f.verified, tc.kept, tc.reported, tc.verified)
			}
			if tc.own && a.begun != 0 {
				t.Fatalf("a self-counting tool took %d passport slots", a.begun)
			}
			if len(tc.reported) == 1 && tc.reported[0] == 0 && !a.failedUntil.Equal(until) {
				t.Fatalf("lock end reported %v, want %v", a.failedUntil, until)
			}
		})
	}
	t.Run("no counter for a passport-counted tool", func(t *testing.T) {
		f := &tool{}
		if _, err := Counted(context.Background(), f, nil, VerifyRequest{}); !errors.Is(err, ErrNoAttempts) || f.verified != 0 {
			t.Fatalf("Counted without attempts = %v (verified %d)", err, f.verified)
		}
	})
}
