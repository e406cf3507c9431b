//go:build !linux

package atm

import "time"

// pacer is time.Sleep where there is no timerfd (pace_linux.go).
type pacer struct{}

func newPacer() *pacer { return nil }

func (p *pacer) sleep(d time.Duration) { time.Sleep(d) }

func (p *pacer) close() {}
