package authntest

import (
	"testing"
	"time"
)

func TestClearOfHour(t *testing.T) {
	hour := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		at    time.Duration // into the hour
		start time.Duration // where the clock starts, from hour
	}{
		{"on the hour", 0, 0},
		{"ten minutes in", 10 * time.Minute, 10 * time.Minute},
		{"just before the last quarter", 45*time.Minute - time.Nanosecond, 45*time.Minute - time.Nanosecond},
		{"the last quarter begins", 45 * time.Minute, 61 * time.Minute},
		{"a tick before the hour", time.Hour - time.Millisecond, 61 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := hour.Add(tc.at)
			got := now.Add(clearOfHour(now))
			if want := hour.Add(tc.start); !got.Equal(want) {
				t.Fatalf("start %v, want %v", got, want)
			}
			if left := got.Truncate(time.Hour).Add(time.Hour).Sub(got); left < 15*time.Minute {
				t.Fatalf("only %v left in the hour", left)
			}
		})
	}
}

func TestClockAdvance(t *testing.T) {
	var c Clock
	a := c.Now()
	c.Advance(time.Hour)
	b := c.Now()
	if d := b.Sub(a); d < time.Hour || d > time.Hour+time.Minute {
		t.Fatalf("Advance(1h) moved the clock by %v", d)
	}
	c.Advance(-time.Hour)
	if d := c.Now().Sub(a); d < 0 || d > time.Minute {
		t.Fatalf("back again: %v from the start", d)
	}
}
