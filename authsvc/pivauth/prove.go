package pivauth

import (
	"context"
	"fmt"

	gopiv "github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/devices/piv"
	"github.com/egate-bank/egate/devices/pkcs11token"
)

// Prove is the customer's side: it signs a challenge's Data with the key
// in slot of card and returns the proof Verify takes (EGP1, with the
// certificate stored in the slot). prompt is asked for the PIN when the
// key's policy wants it; a wrong PIN returns a *pin.Error (matching
// piv.ErrPINBlocked when none are left) with the tries left and is never retried.
func Prove(ctx context.Context, card *piv.Card, slot gopiv.Slot, prompt piv.PINPrompt, data []byte) ([]byte, error) {
	cert, err := card.Certificate(ctx, slot)
	if err != nil {
		return nil, err
	}
	signer, err := card.Signer(ctx, slot, prompt)
	if err != nil {
		return nil, err
	}
	p, err := pkcs11token.SignProof(signer, cert, data, false)
	if err != nil {
		return nil, fmt.Errorf("PIV proof: %w", err)
	}
	return p, nil
}
