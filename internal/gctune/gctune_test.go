package gctune

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestApply: the configuration sets GOGC and GOMEMLIMIT unless the
// environment set them, and restore puts back what was.
func TestApply(t *testing.T) {
	was := debug.SetGCPercent(100)
	wasLimit := debug.SetMemoryLimit(math.MaxInt64)
	defer func() { debug.SetGCPercent(was); debug.SetMemoryLimit(wasLimit) }()
	for _, c := range []struct {
		name  string
		env   map[string]string
		cfg   Config
		gc    int
		limit int64
	}{
		{"the default", nil, Default(), DefaultGCPercent, math.MaxInt64},
		{"a limit too", nil, Config{GCPercent: 200, MemoryLimitMiB: 512}, 200, 512 << 20},
		{"GOGC in the environment wins", map[string]string{"GOGC": "100"}, Default(), 100, math.MaxInt64},
		{"GOMEMLIMIT in the environment wins", map[string]string{"GOMEMLIMIT": "1GiB"}, Config{GCPercent: 300, MemoryLimitMiB: 64}, 300, math.MaxInt64},
	} {
		t.Run(c.name, func(t *testing.T) {
			restore := apply(c.cfg, func(k string) string { return c.env[k] })
			gc, limit := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
			debug.SetGCPercent(gc)
			if gc != c.gc || limit != c.limit {
				t.Errorf("GOGC %d, limit %d; want %d, %d", gc, limit, c.gc, c.limit)
			}
			restore()
			if gc := debug.SetGCPercent(100); gc != 100 {
				t.Errorf("after restore GOGC %d, want 100", gc)
			}
			if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
				t.Errorf("after restore the limit is %d", l)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default", Default(), true},
		{"Go's own", Config{GCPercent: 100}, true},
		{"with a limit", Config{GCPercent: 400, MemoryLimitMiB: 1024}, true},
		{"zero", Config{}, false},
		{"off", Config{GCPercent: -1}, false},
		{"too low", Config{GCPercent: 10}, false},
		{"negative limit", Config{GCPercent: 100, MemoryLimitMiB: -1}, false},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
