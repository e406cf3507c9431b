package txauth

import (
	"context"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/factors"
)

// Tools is what transaction authorization needs of the customer's
// authentication tools: which there are and at which level, whether a
// customer has one, beginning a challenge bound to an intent, and checking
// an answer for exactly that intent. FromFactors adapts the factors.Set of
// egate authsvc; when the challenge stores are unified this seam is the
// one place to change.
type Tools interface {
	// Names lists the tools, in level order.
	Names() []string
	// Level is the level a tool proves; ok false for an unknown tool.
	Level(name string) (level int, ok bool)
	Enrolled(ctx context.Context, customer, name string) (bool, error)
	Begin(ctx context.Context, name string, req authn.BeginRequest) (authn.Challenge, error)
	VerifyTransaction(ctx context.Context, name string, txHash []byte, req authn.VerifyRequest) (authn.Result, error)
}

// FromFactors adapts a factors.Set.
func FromFactors(s *factors.Set) Tools { return factorTools{s} }

type factorTools struct{ s *factors.Set }

func (t factorTools) Names() []string {
	out := make([]string, 0, len(t.s.Factors))
	for _, f := range t.s.Factors {
		out = append(out, f.Name())
	}
	return out
}

func (t factorTools) Level(name string) (int, bool) {
	f := t.s.Factor(name)
	if f == nil {
		return 0, false
	}
	return int(f.Level()), true
}

func (t factorTools) Enrolled(ctx context.Context, customer, name string) (bool, error) {
	f := t.s.Factor(name)
	if f == nil {
		return false, nil
	}
	return f.Enrolled(ctx, customer)
}

func (t factorTools) Begin(ctx context.Context, name string, req authn.BeginRequest) (authn.Challenge, error) {
	f := t.s.Factor(name)
	if f == nil {
		return authn.Challenge{}, authn.ErrNotEnrolled
	}
	return f.Begin(ctx, req)
}

func (t factorTools) VerifyTransaction(ctx context.Context, name string, txHash []byte, req authn.VerifyRequest) (authn.Result, error) {
	return t.s.VerifyTransaction(ctx, name, txHash, req)
}

// noTools is no tool at all.
type noTools struct{}

func (noTools) Names() []string                                        { return nil }
func (noTools) Level(string) (int, bool)                               { return 0, false }
func (noTools) Enrolled(context.Context, string, string) (bool, error) { return false, nil }
func (noTools) Begin(context.Context, string, authn.BeginRequest) (authn.Challenge, error) {
	return authn.Challenge{}, authn.ErrNotEnrolled
}
func (noTools) VerifyTransaction(context.Context, string, []byte, authn.VerifyRequest) (authn.Result, error) {
	return authn.Result{}, authn.ErrNotEnrolled
}
