package otp

import (
	"context"
	"crypto"
	"fmt"
	"time"
)

// TOTP holds the RFC 6238 parameters of a time-based token.
type TOTP struct {
	Hash   crypto.Hash   // SHA1, SHA256 or SHA512
	Digits int           // 6 to 8 in practice; 4 to 10 accepted
	Period time.Duration // time step X, default 30 s; whole seconds
	T0     int64         // Unix seconds at which step 0 starts, default 0
}

// Validate checks the parameters.
func (p TOTP) Validate() error {
	if err := checkHash(p.Hash); err != nil {
		return err
	}
	if p.Digits < 4 || p.Digits > 10 {
		return fmt.Errorf("%w: %d digits (want 4 to 10)", ErrUnsupported, p.Digits)
	}
	if p.Period < time.Second || p.Period%time.Second != 0 {
		return fmt.Errorf("%w: period %v (want whole seconds, at least 1)", ErrUnsupported, p.Period)
	}
	return nil
}

// Step is the time-step number T for t; steps before T0 are clamped to 0.
func (p TOTP) Step(t time.Time) uint64 {
	sec := t.Unix() - p.T0
	if sec < 0 {
		return 0
	}
	return uint64(sec / int64(p.Period/time.Second))
}

// StepStart is the time at which step s begins.
func (p TOTP) StepStart(s uint64) time.Time {
	return time.Unix(p.T0+int64(s)*int64(p.Period/time.Second), 0)
}

// Code computes the code for time t.
func (p TOTP) Code(ctx context.Context, m MAC, t time.Time) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	return HOTP(ctx, m, p.Hash, p.Step(t), p.Digits)
}

// Codes computes the codes for steps from … from+n-1 in one MAC call.
func (p TOTP) Codes(ctx context.Context, m MAC, from uint64, n int) ([]string, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return HOTPWindow(ctx, m, p.Hash, from, n, p.Digits)
}
