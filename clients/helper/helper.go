package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/devices/pin"
)

// Errors.
var (
	ErrDeclined     = errors.New("you declined the order")
	ErrNoTool       = errors.New("no token that can answer this order was found")
	ErrPINBlocked   = errors.New("the token's PIN is blocked")
	ErrTokenRemoved = errors.New("the token was removed during the signature")
	ErrServer       = errors.New("the order link names another server than this helper's bank")
)

// WrongPINError is a refused PIN with what the token says is left
// (Retries < 0: the token does not count, only says Status).
type WrongPINError struct {
	Retries int
	Status  string
}

func (e *WrongPINError) Error() string {
	switch {
	case e.Retries == 1:
		return "wrong PIN: 1 try left before the PIN is blocked"
	case e.Retries > 1:
		return fmt.Sprintf("wrong PIN: %d tries left before the PIN is blocked", e.Retries)
	case e.Status != "":
		return "wrong PIN (" + e.Status + ")"
	}
	return "wrong PIN"
}

// pinErr turns a device's refused PIN (*pin.Error, the same for a
// U-shield and a PIV card) into WrongPINError or ErrPINBlocked; nil when
// err is no PIN error.
func pinErr(err error) error {
	var pe *pin.Error
	if !errors.As(err, &pe) {
		return nil
	}
	if pe.Locked {
		return fmt.Errorf("%w (%s)", ErrPINBlocked, pe.Device)
	}
	w := &WrongPINError{Retries: pe.Retries}
	if pe.Low {
		w.Status = "few tries are left"
	}
	return w
}

// PINFunc asks the customer for the token PIN; retries is what the token
// has left (-1 when it does not say). The caller wipes the PIN after use.
type PINFunc func(ctx context.Context, tool string, retries int) ([]byte, error)

// Tool is a customer token the helper can sign with.
type Tool interface {
	// Describe names the token for the customer ("U-shield \"alice-key\"").
	Describe() string
	// Answers reports whether the token can answer an order for factor.
	Answers(factor string) bool
	// Sign signs exactly data and returns the EGP1 proof; it asks pin when
	// the token needs its PIN. Errors: *WrongPINError, ErrPINBlocked,
	// ErrTokenRemoved, or another device error.
	Sign(ctx context.Context, data []byte, pin PINFunc) ([]byte, error)
}

// UI is how the helper talks to the customer.
type UI interface {
	// Show displays the order's text (exactly what will be signed, with
	// the challenge line) and the tool that will sign.
	Show(o *orders.Opened, data []byte, tool string)
	// Confirm asks whether to sign.
	Confirm(ctx context.Context) (bool, error)
	// PIN asks for the token PIN.
	PIN(ctx context.Context, tool string, retries int) ([]byte, error)
	// Say tells the customer how it went.
	Say(msg string)
}

// Helper answers orders with the customer's tools.
type Helper struct {
	Client *orders.Client
	Tools  []Tool
	UI     UI
}

// Result is how an order ended on this device.
type Result struct {
	Ref   string
	Tool  string
	State orders.State
}

// Run opens the order, shows it, has the customer confirm and sign, and
// posts the proof. Any failure after opening cancels the order with the
// reason (the page then offers a new one).
func (h *Helper) Run(ctx context.Context, req orders.OpenRequest) (*Result, error) {
	op, err := h.Client.Open(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("opening the order: %w", err)
	}
	res := &Result{Ref: op.Ref, State: orders.UserSign}
	cancel := func(reason string, err error) (*Result, error) {
		if cerr := h.Client.Cancel(context.WithoutCancel(ctx), op.Ref, op.DeviceToken, reason); cerr == nil {
			res.State = orders.Cancelled
		}
		return res, err
	}
	data, err := op.SignedData()
	if err != nil {
		return cancel("declined", err)
	}
	if op.Kind == orders.KindEnrol {
		return h.enrol(ctx, op, data, res, cancel)
	}
	i := slices.IndexFunc(h.Tools, func(t Tool) bool { return t.Answers(op.Factor) })
	if i < 0 {
		h.UI.Say("This order needs a " + factorName(op.Factor) + "; none is connected.")
		return cancel("no_token", fmt.Errorf("%w (%s)", ErrNoTool, factorName(op.Factor)))
	}
	tool := h.Tools[i]
	res.Tool = tool.Describe()
	h.UI.Show(op, data, tool.Describe())
	ok, err := h.UI.Confirm(ctx)
	if err != nil || !ok {
		h.UI.Say("Declined: the order is cancelled.")
		return cancel("declined", ErrDeclined)
	}
	proof, err := tool.Sign(ctx, data, h.UI.PIN)
	var wp *WrongPINError
	switch {
	case errors.As(err, &wp):
		h.UI.Say(wp.Error() + ". The order is cancelled; start again on the page.")
		return cancel("wrong_pin", err)
	case errors.Is(err, ErrPINBlocked):
		h.UI.Say("The token's PIN is blocked. Unblock it with its PUK (PIV: egate helper unblock, or yubico-piv-tool -a unblock-pin), or ask the bank's service desk to unblock or replace the token.")
		return cancel("pin_blocked", err)
	case errors.Is(err, ErrTokenRemoved):
		h.UI.Say("The token was removed before it signed. The order is cancelled; insert the token and start again on the page.")
		return cancel("token_removed", err)
	case errors.Is(err, ErrDeclined):
		h.UI.Say("Cancelled on the token: the order is cancelled.")
		return cancel("declined", err)
	case err != nil:
		h.UI.Say("The token could not sign. The order is cancelled.")
		return cancel("declined", fmt.Errorf("signing with %s: %w", tool.Describe(), err))
	}
	if err := h.Client.Sign(ctx, op.Ref, op.DeviceToken, proof); err != nil {
		h.UI.Say("The bank refused the signature: " + err.Error())
		res.State = orders.Failed
		return res, err
	}
	res.State = orders.Complete
	h.UI.Say("Signed. Go back to the page: it goes on by itself.")
	return res, nil
}

// enrol answers an enrolment order: the key made on the token, its CSR
// (naming the order's challenge) certified by the bank, the certificate
// written back.
func (h *Helper) enrol(ctx context.Context, op *orders.Opened, data []byte, res *Result, cancel func(string, error) (*Result, error)) (*Result, error) {
	// The enroller of the order's tool; a 2nd-generation U-shield's key is
	// made through its PKCS#11 side, as a 1st-generation one's.
	pick := func(factor string) Enroller {
		for _, t := range h.Tools {
			if e, ok := t.(Enroller); ok && e.Answers(factor) {
				return e
			}
		}
		return nil
	}
	en := pick(op.Factor)
	if en == nil && op.Factor == "ushield2" {
		en = pick("ushield")
	}
	if en == nil {
		h.UI.Say("Enrolling a " + factorName(op.Factor) + " needs it connected (U-shield: its PKCS#11 module, --module; PIV card: --piv); none is.")
		return cancel("no_token", ErrNoTool)
	}
	res.Tool = en.Describe()
	h.UI.Show(op, data, en.Describe())
	ok, err := h.UI.Confirm(ctx)
	if err != nil || !ok {
		h.UI.Say("Declined: the order is cancelled.")
		return cancel("declined", ErrDeclined)
	}
	var refused error
	err = en.Enrol(ctx, op, data, h.UI.PIN, func(ctx context.Context, answer orders.EnrolAnswer) ([]byte, error) {
		body, _ := json.Marshal(answer)
		der, err := h.Client.SignData(ctx, op.Ref, op.DeviceToken, body)
		if err != nil {
			refused = err
		}
		return der, err
	})
	var wp *WrongPINError
	switch {
	case refused != nil:
		h.UI.Say("The bank refused the enrolment: " + refused.Error())
		res.State = orders.Failed
		return res, refused
	case errors.As(err, &wp):
		h.UI.Say(wp.Error() + ". The order is cancelled; start again on the page.")
		return cancel("wrong_pin", err)
	case errors.Is(err, ErrPINBlocked):
		h.UI.Say("The token's PIN is blocked; ask the bank's service desk to unblock or replace the token.")
		return cancel("pin_blocked", err)
	case errors.Is(err, ErrTokenRemoved):
		h.UI.Say("The token was removed during the enrolment. The order is cancelled; insert it and start again.")
		return cancel("token_removed", err)
	case err != nil:
		// The bank certified the key but it could not be written back: the
		// order is complete at the bank; say what to do.
		h.UI.Say("The certificate could not be written to the token: " + err.Error() + ". Report the token lost on your tools list and enrol again.")
		res.State = orders.Complete
		return res, err
	}
	res.State = orders.Complete
	h.UI.Say("Enrolled: the token holds its key and the bank's certificate. Go back to the page: it goes on by itself.")
	return res, nil
}

// CheckServer refuses a link naming another server than the helper's bank
// (the link comes from a web page; the bank is the helper's config).
func CheckServer(link orders.Link, server string) error {
	if link.Server != "" && link.Server != server {
		return fmt.Errorf("%w: the link names %q, the helper is set up for %q", ErrServer, link.Server, server)
	}
	return nil
}

func factorName(f string) string {
	switch f {
	case "ushield":
		return "U-shield"
	case "ushield2":
		return "U-shield with display"
	case "piv":
		return "PIV card"
	case "phone":
		return "phone app"
	}
	return f
}
