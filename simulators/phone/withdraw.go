package phone

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/egate-bank/egate/atm/withdrawal"
	"github.com/egate-bank/egate/authsvc/orders"
	authphone "github.com/egate-bank/egate/authsvc/phone"
)

// WithdrawalQR says whether a scanned code is an ATM's withdrawal QR
// (egate-wd:1:<ATM>:<session>).
func WithdrawalQR(text string) bool { return strings.HasPrefix(text, "egate-wd:") }

// Withdrawal is what the customer asks for at the ATM.
type Withdrawal struct {
	QR        string // the ATM's QR code, as scanned
	Account   string
	AmountFen int64
	// Lang is the app's language, in which the bank words the text to
	// confirm and sign: "zh-CN" or "en" (intent.Lang); empty: English.
	Lang string
}

// WithdrawalResult is the bank's answer once the ATM acted.
type WithdrawalResult struct {
	Session   string `json:"session"`
	ATM       string `json:"atm"`
	State     string `json:"state"`
	Reason    string `json:"reason"`
	AmountFen int64  `json:"amount_fen"`
	CashOut   int64  `json:"cash_out_fen"`
}

// WithdrawalUI is how the app talks to the customer during a withdrawal.
type WithdrawalUI interface {
	ShowText(text string, level int)
	Confirm(ctx context.Context) (bool, error)
	PIN(ctx context.Context) ([]byte, error)
	Say(msg string)
}

// UnlockedUI is a WithdrawalUI of an app that stays unlocked for a while:
// it hands the app PIN's key and the unsealed device key (State.Unlock)
// instead of asking the PIN, whose two argon2id derivations are the
// phone's own cost. Benchmarks of the bank's side use it.
type UnlockedUI interface {
	Unlocked(ctx context.Context) (pinKey []byte, key *ecdsa.PrivateKey, err error)
}

// Unlock derives, from the app PIN, the PIN key the bank checks and the
// device key the PIN unseals.
func (s *State) Unlock(pin []byte) (pinKey []byte, key *ecdsa.PrivateKey, err error) {
	key, err = s.Unseal(pin)
	if err != nil {
		return nil, nil, err
	}
	return authphone.PINKey(pin, s.PINSalt), key, nil
}

type wdProof struct {
	Customer    string `json:"customer"`
	Device      string `json:"device,omitempty"`
	TS          int64  `json:"ts,omitempty"`
	DeviceSig   []byte `json:"device_sig,omitempty"`
	ChallengeID string `json:"challenge_id,omitempty"`
	Response    string `json:"response,omitempty"`
	Lang        string `json:"lang,omitempty"`
}

type wdNeeded struct {
	Session     string `json:"session"`
	ProofNeeded *struct {
		ChallengeID string `json:"challenge_id"`
		Level       int    `json:"level"`
		Text        string `json:"text"`
		Data        []byte `json:"data"`
	} `json:"proof_needed"`
}

// postWD posts an approval: 200 the result, 202 the challenge to sign.
func postWD(ctx context.Context, hc *http.Client, url string, in any) (int, []byte, error) {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("reaching the bank: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(b, &e)
		return resp.StatusCode, nil, &orders.APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	return resp.StatusCode, b, nil
}

// Withdraw approves a QR withdrawal at the bank's withdrawal API (bank:
// the data centre's base URL): the app is unlocked (its PIN) and the
// approval posted first, signed by the device key (the bank checks the
// signature against the bound phone, then the session, the ATM's cassettes, the limits and the balance, and answers
// the text to confirm with its challenge), then, once the customer
// confirmed and gave the app PIN, the signed proof. The second call
// returns when the ATM has acted: the customer types the withdrawal PIN on
// the ATM's PIN pad meanwhile, then takes the cash.
func (s *State) Withdraw(ctx context.Context, hc *http.Client, bank string, wd Withdrawal, ui WithdrawalUI) (*WithdrawalResult, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Minute}
	}
	url := strings.TrimSuffix(bank, "/") + "/atm/withdrawals/approve"
	ask := func(p wdProof) (int, []byte, error) {
		pj, _ := json.Marshal(p)
		return postWD(ctx, hc, url, map[string]any{"qr": wd.QR, "account": wd.Account, "amount_fen": wd.AmountFen, "proof": string(pj)})
	}
	// The app is unlocked first: the first post is signed by the device
	// key (the bank issues a challenge only to a request of the bound
	// phone), which the app PIN unseals.
	var pinKey []byte
	var k *ecdsa.PrivateKey
	var err error
	if u, ok := ui.(UnlockedUI); ok {
		if pinKey, k, err = u.Unlocked(ctx); err != nil {
			return nil, err
		}
	} else {
		pin, err := ui.PIN(ctx)
		if err != nil {
			return nil, err
		}
		pinKey, k, err = s.Unlock(pin)
		clear(pin)
		if err != nil {
			return nil, err
		}
	}
	defer clear(pinKey)
	_, session, err := withdrawal.ParseQR(wd.QR)
	if err != nil {
		return nil, fmt.Errorf("the scanned code: %w", err)
	}
	// Each post is signed by the device key (the bank answers nothing
	// about the account to a post its bound phone did not sign).
	signed := func(p wdProof) (wdProof, error) {
		p.TS = time.Now().UnixMilli()
		var err error
		p.DeviceSig, err = authphone.SignDevice(k, authphone.WithdrawalRequestData(s.PassportID, session, wd.Account, wd.AmountFen, p.TS))
		return p, err
	}
	first, err := signed(wdProof{Customer: s.PassportID, Device: s.DeviceID, Lang: wd.Lang})
	if err != nil {
		return nil, err
	}
	status, b, err := ask(first)
	if err != nil {
		return nil, err
	}
	if status != http.StatusAccepted {
		return nil, errors.New("the bank did not ask for the app's confirmation")
	}
	var need wdNeeded
	if err := json.Unmarshal(b, &need); err != nil || need.ProofNeeded == nil {
		return nil, errors.New("the bank's challenge does not read")
	}
	pn := need.ProofNeeded
	text, _, ok := orders.SplitSigned(pn.Data)
	if !ok || text != pn.Text {
		return nil, errors.New("the bank's challenge is not the text shown and a challenge: not signed")
	}
	ui.ShowText(text, pn.Level)
	if ok, err := ui.Confirm(ctx); err != nil || !ok {
		ui.Say("Declined: nothing is paid out.")
		return nil, errors.New("declined")
	}
	proof, err := authphone.Sign(s.DeviceID, k, pinKey, pn.Data)
	if err != nil {
		return nil, err
	}
	ui.Say("Approved on the phone. Now type your withdrawal PIN on the ATM's PIN pad.")
	second, err := signed(wdProof{Customer: s.PassportID, Device: s.DeviceID, ChallengeID: pn.ChallengeID, Response: string(proof), Lang: wd.Lang})
	if err != nil {
		return nil, err
	}
	_, b, err = ask(second)
	if err != nil {
		return nil, err
	}
	var res WithdrawalResult
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("the bank's answer does not read: %w", err)
	}
	return &res, nil
}
