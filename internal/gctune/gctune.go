// Package gctune sets the Go garbage collector of an egate process from
// its configuration: how much the heap may grow between collections
// (GOGC) and a soft limit on the memory the Go runtime uses (GOMEMLIMIT).
//
// egate's servers allocate a few hundred short-lived bytes per statement
// and per HTTP header and keep little: with Go's default (GOGC 100, a
// collection each time the heap doubles) the collector took ~8 % of the
// CPU of a money movement (BenchmarkTxRoundTrip). At 400 the heap may grow
// to five times what is live between collections; egate's live heap is
// tens of MiB, so that costs tens to a hundred MiB more and buys that CPU
// back. An operator who sets GOGC or GOMEMLIMIT in the environment keeps
// them: the environment wins over the configuration.
package gctune

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
)

// Config is the runtime section of egate's configuration.
type Config struct {
	// GCPercent is GOGC: the heap's growth over what is live, in percent,
	// that starts a collection (Go's own default is 100).
	GCPercent int `yaml:"gc-percent"`
	// MemoryLimitMiB is GOMEMLIMIT in MiB: past it the collector runs
	// more often whatever GCPercent says; 0 sets none.
	MemoryLimitMiB int64 `yaml:"memory-limit-mib"`
}

// DefaultGCPercent is egate's GOGC.
const DefaultGCPercent = 400

// Default is the configuration's default.
func Default() Config { return Config{GCPercent: DefaultGCPercent} }

// Validate checks the section.
func (c Config) Validate() error {
	if c.GCPercent < 25 || c.GCPercent > 10000 {
		return fmt.Errorf("runtime.gc-percent %d: use 25 to 10000 (Go's own default is 100, egate's %d)", c.GCPercent, DefaultGCPercent)
	}
	if c.MemoryLimitMiB < 0 || c.MemoryLimitMiB > math.MaxInt64>>20 {
		return errors.New("runtime.memory-limit-mib must be 0 (no limit) or a positive number of MiB")
	}
	return nil
}

// Apply sets the collector as c says, but for what GOGC and GOMEMLIMIT in
// the environment set, and returns what puts it back as it was.
func Apply(c Config) (restore func()) {
	return apply(c, os.Getenv)
}

func apply(c Config, getenv func(string) string) (restore func()) {
	oldGC, oldLimit := -2, int64(-1) // -2, -1: left alone
	if getenv("GOGC") == "" && c.GCPercent > 0 {
		oldGC = debug.SetGCPercent(c.GCPercent)
	}
	if getenv("GOMEMLIMIT") == "" && c.MemoryLimitMiB > 0 {
		oldLimit = debug.SetMemoryLimit(c.MemoryLimitMiB << 20)
	}
	return func() {
		if oldGC != -2 {
			debug.SetGCPercent(oldGC)
		}
		if oldLimit >= 0 {
			debug.SetMemoryLimit(oldLimit)
		}
	}
}
