package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/atm/withdrawal"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/phone"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/authsvc/wdpin"
	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// PhoneProof is what the phone app puts in a withdrawal approval's proof:
// the customer of its binding and its device, the time (Unix ms) and the
// device key's signature over phone.WithdrawalRequestData (so that only the
// bound phone makes the bank issue a challenge or answer about the
// account); on the second post also the challenge it signed and its
// signature (authsvc/phone's EGPH1 proof).
type PhoneProof struct {
	Customer    string `json:"customer"`
	Device      string `json:"device,omitempty"`
	TS          int64  `json:"ts,omitempty"`
	DeviceSig   []byte `json:"device_sig,omitempty"`
	ChallengeID string `json:"challenge_id,omitempty"`
	Response    string `json:"response,omitempty"`
	// Lang is the app's language, in which the customer confirms and signs
	// the withdrawal's text (intent.LangZH, intent.LangEN; empty: English).
	// Both posts carry the same: it is part of the intent.
	Lang string `json:"lang,omitempty"`
}

// DeviceSigSkew is how far a first post's time may be from the bank's.
const DeviceSigSkew = 2 * time.Minute

// WithdrawalAuthorizer authorizes a QR withdrawal in two factors: the
// phone app's signature over the intent (kind withdrawal, through txauth:
// limits, risk, the level the limit table asks; the phone is level 3), then
// the withdrawal PIN typed on the ATM's PIN pad (the block opened in the HSM
// under the ATM's key, counted on the passport's counter). Only then is the
// grant consumed (txauth Execute) and handed to the ledger's hold. A refusal
// at any step cancels the intent (its limit usage is released) and leaves
// the session as it was: nothing held, nothing dispensed.
type WithdrawalAuthorizer struct {
	// Tx is transaction authorization: LocalTx in the process that runs
	// authsvc (egate demo), a *txclient.Client elsewhere (egate
	// agent-gateway, as a back-end client with tx:authorize and tx:execute).
	Tx     TxAPI
	Ledger *ledger.Ledger
	ATM    withdrawal.Commander
	PIN    *wdpin.Service
	// PINKey names the HSM key of an ATM's PIN pad; hsm.PINKeyLabel when nil.
	PINKey func(atmID string) string
	// PINTimeout is how long the customer has to type the PIN; 60 s when 0.
	PINTimeout time.Duration
	// DB, when set, records each withdrawal's intent (table
	// atm_withdrawal_intents) for WithdrawalSettled to cancel should
	// nothing be paid out.
	DB *store.DB
	// Phones checks the first post's device signature against the
	// customer's bound phones; without it every first post is refused.
	Phones *phone.Service
	// Now is the clock of the device signature's time; time.Now when nil.
	Now func() time.Time
}

var _ withdrawal.Authorizer = (*WithdrawalAuthorizer)(nil)

// TxAPI is what the withdrawal needs of transaction authorization; the
// HTTP client (*txclient.Client) is one, LocalTx the in-process service.
type TxAPI interface {
	Authorize(ctx context.Context, in intent.Intent) (txclient.Decision, error)
	Challenge(ctx context.Context, hash string, r txclient.ChallengeRequest) (txclient.Challenge, error)
	Proof(ctx context.Context, hash string, r txclient.ProofRequest) (txclient.Grant, error)
	Execute(ctx context.Context, grant string, in intent.Intent) (txclient.Executed, error)
	Cancel(ctx context.Context, hash, reason string) (txclient.Cancelled, error)
	Balance(ctx context.Context, a txclient.BalanceAlert) (txclient.AlertPosted, error)
}

var (
	_ TxAPI = (*txclient.Client)(nil)
	_ TxAPI = LocalTx{}
)

// LocalTx is the in-process txauth.Service as a TxAPI.
type LocalTx struct{ *txauth.Service }

// Cancel implements TxAPI: cancelled by the ATM withdrawal.
func (l LocalTx) Cancel(ctx context.Context, hash, reason string) (txclient.Cancelled, error) {
	return l.Service.Cancel(ctx, hash, reason, WithdrawalOrigin)
}

// Balance implements TxAPI.
func (l LocalTx) Balance(ctx context.Context, a txclient.BalanceAlert) (txclient.AlertPosted, error) {
	posted, err := l.Service.Balance(ctx, a)
	return txclient.AlertPosted{Posted: posted}, err
}

func refusal(status int, code, msg string, err error) error {
	return &withdrawal.Refusal{Status: status, Code: code, Message: msg, Err: err}
}

// txRefusal turns txauth's refusal (in process, or over HTTP) into the
// withdrawal's; a fault of the service stays an error (503).
func txRefusal(err error) error {
	var te *txauth.Error
	if errors.As(err, &te) && te.Code != txauth.ErrUnavailable.Code {
		return refusal(te.Status, te.Code, te.Msg, err)
	}
	var ae *txclient.APIError
	guard := map[string]bool{"unauthorized": true, "invalid_client": true, "insufficient_scope": true} // the bank's configuration, not the customer
	if errors.As(err, &ae) && ae.Status < 500 && ae.Code != "" && !guard[ae.Code] {
		return refusal(ae.Status, ae.Code, ae.Message, err)
	}
	return err
}

// Authorize implements withdrawal.Authorizer. Without a challenge in the
// proof it answers *withdrawal.ProofNeeded (the phone's challenge).
func (a *WithdrawalAuthorizer) Authorize(ctx context.Context, in withdrawal.Intent, proof string) (string, error) {
	var p PhoneProof
	if err := json.Unmarshal([]byte(proof), &p); err != nil || p.Customer == "" {
		return "", refusal(http.StatusBadRequest, "bad_proof", "the approval carries no phone proof: approve from the bank's app", nil)
	}
	if p.Lang != "" && !slices.Contains(intent.Langs, p.Lang) {
		return "", refusal(http.StatusBadRequest, "bad_proof", "the app's language must be one of "+strings.Join(intent.Langs, ", ")+", or left out for English", nil)
	}
	// Both posts are the bound phone's: the first makes the bank issue a
	// challenge to it, and either would otherwise answer a stranger
	// whether the account is the customer's and holds the amount. Checked
	// before anything about the account is looked up or answered.
	if err := a.checkDevice(ctx, in, p); err != nil {
		return "", err
	}
	acct, err := a.Ledger.Account(ctx, in.Account)
	if err != nil || acct.Owner != p.Customer {
		return "", refusal(http.StatusForbidden, "not_your_account", "account "+in.Account+" is not one of yours: choose one of your accounts", nil)
	}
	if avail := acct.Available(); avail < in.AmountFen {
		return "", refusal(http.StatusUnprocessableEntity, "insufficient_funds",
			fmt.Sprintf("%s yuan is over what account %s has available (%s yuan): choose a smaller amount", money.Yuan(in.AmountFen), in.Account, money.Yuan(avail)), nil)
	}
	it := intent.Intent{Customer: p.Customer, Channel: intent.ATM, Kind: intent.Withdrawal, Payer: in.Account, Payee: in.ATM,
		Amount: in.AmountFen, Currency: "CNY", Device: p.Device, Lang: p.Lang,
		IdempotencyKey: fmt.Sprintf("atm-wd:%s:%s:%d", in.Session, in.Account, in.AmountFen)}
	d, err := a.Tx.Authorize(ctx, it)
	if err != nil {
		return "", txRefusal(err)
	}
	switch d.Decision {
	case "allow":
	case "review":
		return "", refusal(http.StatusForbidden, "under_review", d.Message, nil)
	default:
		return "", refusal(http.StatusForbidden, "denied", d.Message, nil)
	}
	if p.ChallengeID == "" {
		ch, err := a.Tx.Challenge(ctx, d.Intent, txclient.ChallengeRequest{Factor: "phone"})
		if err != nil {
			return "", txRefusal(err)
		}
		return "", &withdrawal.ProofNeeded{ChallengeID: ch.ID, Factor: ch.Factor, Level: d.Level, Text: ch.Text, Data: ch.Data, ExpiresAt: ch.ExpiresAt}
	}
	g, err := a.Tx.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: p.ChallengeID, Response: p.Response, Intent: &it})
	if err != nil {
		return "", txRefusal(err)
	}
	cancel := func(why string) {
		a.Tx.Cancel(context.WithoutCancel(ctx), d.Intent, why)
	}
	if err := a.checkPIN(ctx, in, p.Customer); err != nil {
		cancel("withdrawal PIN not confirmed")
		return "", err
	}
	if a.DB != nil {
		if _, err := a.DB.Exec(ctx, `INSERT INTO atm_withdrawal_intents (session, intent_hash, created_ms) VALUES (?, ?, ?)
			ON CONFLICT (session) DO UPDATE SET intent_hash = excluded.intent_hash`, in.Session, d.Intent, time.Now().UnixMilli()); err != nil {
			cancel("the withdrawal's intent could not be recorded")
			return "", fmt.Errorf("recording the withdrawal's intent: %w", err)
		}
	}
	if _, err := a.Tx.Execute(ctx, g.Token, it); err != nil {
		cancel("grant not executed")
		return "", txRefusal(err)
	}
	return g.Token, nil
}

// checkDevice checks a post's device signature: a bound, active
// phone of p.Customer signed phone.WithdrawalRequestData for this very
// approval within DeviceSigSkew of now. A refusal is 401
// device_unverified and counts nothing (no challenge was answered).
func (a *WithdrawalAuthorizer) checkDevice(ctx context.Context, in withdrawal.Intent, p PhoneProof) error {
	const code = "device_unverified"
	if p.Device == "" || len(p.DeviceSig) == 0 || p.TS == 0 {
		return refusal(http.StatusUnauthorized, code, "the approval must be signed by the customer's bound phone (device, ts, device_sig): approve from the bank's app", nil)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	if d := now().Sub(time.UnixMilli(p.TS)); d > DeviceSigSkew || d < -DeviceSigSkew {
		return refusal(http.StatusUnauthorized, code, "the phone's signature is not from now: set the phone's clock and scan the QR again", nil)
	}
	if a.Phones == nil {
		return refusal(http.StatusUnauthorized, code, "this server cannot check the phone's signature: nothing was issued", nil)
	}
	err := a.Phones.VerifyDevice(ctx, p.Customer, p.Device, phone.WithdrawalRequestData(p.Customer, in.Session, in.Account, in.AmountFen, p.TS), p.DeviceSig)
	if errors.Is(err, phone.ErrDeviceRefused) {
		return refusal(http.StatusUnauthorized, code, "the approval is not signed by a phone bound to this customer: nothing was issued; approve from your bound phone", err)
	}
	return err
}

// checkPIN asks the ATM's PIN pad for the withdrawal PIN and checks it.
func (a *WithdrawalAuthorizer) checkPIN(ctx context.Context, in withdrawal.Intent, customer string) error {
	to := a.PINTimeout
	if to <= 0 {
		to = 60 * time.Second
	}
	cmd, err := gateway.NewCommand(in.ATM, dclink.OpPIN, dclink.PINArgs{Session: in.Session, PAN: in.Account, MinLen: 4, MaxLen: 12, TimeoutSec: uint16(to / time.Second)})
	if err != nil {
		return err
	}
	cctx, stop := context.WithTimeout(ctx, to+15*time.Second)
	defer stop()
	raw, err := a.ATM.Send(cctx, cmd)
	var ce *gateway.CommandError
	switch {
	case errors.As(err, &ce) && ce.Err.Device == "CANCELLED":
		return refusal(http.StatusForbidden, "pin_cancelled", "the PIN entry was cancelled at the ATM: nothing was paid out", err)
	case errors.As(err, &ce) && ce.Err.Device == "TIMEOUT":
		return refusal(http.StatusForbidden, "pin_timeout", "no withdrawal PIN was typed at the ATM in time: nothing was paid out", err)
	case err != nil:
		return fmt.Errorf("ATM %s: the PIN pad: %w", in.ATM, err)
	}
	var r dclink.PINResult
	if err := json.Unmarshal(raw, &r); err != nil || r.Format != 4 || len(r.Block) != 16 {
		return fmt.Errorf("ATM %s: the PIN pad's answer is not a format 4 block", in.ATM)
	}
	var block [16]byte
	copy(block[:], r.Block)
	key := hsm.PINKeyLabel(in.ATM)
	if a.PINKey != nil {
		key = a.PINKey(in.ATM)
	}
	err = a.PIN.Verify(ctx, customer, key, block, in.Account)
	var le *authn.LockedError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wdpin.ErrWrongPIN):
		return refusal(http.StatusForbidden, "wrong_pin", "the withdrawal PIN typed at the ATM is wrong: nothing was paid out; choose QR withdrawal at the ATM to try again", err)
	case errors.As(err, &le):
		return refusal(http.StatusForbidden, "pin_locked", "the withdrawal PIN is locked after too many wrong PINs (until "+le.Until.UTC().Format(time.RFC3339)+"): nothing was paid out", err)
	case errors.Is(err, wdpin.ErrNoPIN):
		return refusal(http.StatusForbidden, "no_pin", err.Error(), err)
	case errors.Is(err, wdpin.ErrBlock):
		return refusal(http.StatusForbidden, "pin_block", "the ATM's PIN pad sent a block its key does not open: nothing was paid out; tell the bank", err)
	}
	return err
}

// WithdrawalSettled is the withdrawal service's OnSettled: a withdrawal
// that captured money gets its balance alert through txauth (messenger
// inbox, SMS as the customer chose); one that paid nothing out (not
// dispensed, retracted, released by an operator) cancels its intent
// (recorded by WithdrawalAuthorizer in db), which gives the customer's
// limit usage back. It returns at once; the work runs on its own goroutine.
func WithdrawalSettled(tx TxAPI, l *ledger.Ledger, db *store.DB, onErr func(error)) func(w withdrawal.Withdrawal) {
	return func(w withdrawal.Withdrawal) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var err error
			if w.Captured > 0 {
				var acct ledger.Account
				if acct, err = l.Account(ctx, w.Account); err == nil {
					_, err = tx.Balance(ctx, txclient.BalanceAlert{ID: "atm-wd:" + w.Session, Customer: acct.Owner, Account: w.Account,
						Amount: -w.Captured, Balance: acct.Balance(), Currency: "CNY", Description: "cash withdrawal at ATM " + w.ATM})
				}
			} else if db != nil {
				err = (&WithdrawalIntents{Tx: tx, DB: db}).Cancel(ctx, w.Session, "the ATM paid nothing out: "+string(w.State))
			}
			if err != nil && onErr != nil {
				onErr(fmt.Errorf("withdrawal %s settled %s: %w", w.Session, w.State, err))
			}
		}()
	}
}
