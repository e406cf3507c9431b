package withdrawal

import (
	"errors"
	"time"
)

// ProofNeeded is what an Authorizer answers to an approval that carries no
// proof yet: the challenge the customer's tool (the phone app) must sign,
// bound to the withdrawal's intent. The session stays QR_SHOWN; the phone
// posts the approval again with its proof. The API answers it 202 with the
// challenge under "proof_needed".
type ProofNeeded struct {
	ChallengeID string    `json:"challenge_id"`
	Factor      string    `json:"factor"`
	Level       int       `json:"level"`
	Text        string    `json:"text"`
	Data        []byte    `json:"data"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func (p *ProofNeeded) Error() string { return "the customer's proof is needed: " + p.Text }

// Refusal is an Authorizer's refusal with its own HTTP status, stable code
// and message for the phone (over the limit, over the balance, a wrong
// withdrawal PIN …). Err, when set, is the cause (errors.Is reaches it).
type Refusal struct {
	Status  int
	Code    string
	Message string
	Err     error
}

func (r *Refusal) Error() string { return r.Message }
func (r *Refusal) Unwrap() error { return r.Err }

func asProofNeeded(err error) (*ProofNeeded, bool) {
	var p *ProofNeeded
	return p, errors.As(err, &p)
}
