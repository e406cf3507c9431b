package demo

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/egate-bank/egate/atm/withdrawal"
	"github.com/egate-bank/egate/authsvc/phone"
	authphone "github.com/egate-bank/egate/authsvc/phone"
	"github.com/egate-bank/egate/authsvc/wdpin"
	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/app"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	simphone "github.com/egate-bank/egate/simulators/phone"
)

// Files of the demo's QR withdrawal, under the var directory.
const (
	pinPadKeyFile    = "atm-pin-key"               // the demo ATM's PIN pad key (hex), loaded into the PIN pad and the HSM
	alicePhoneFile   = "demo-alice-phone.json"     // alice's phone app, bound on the first start
	aliceAppPINFile  = "demo-alice-app-pin"        // its app PIN
	aliceWdPINFile   = "demo-alice-withdrawal-pin" // her withdrawal PIN, typed on the ATM's PIN pad
	recoverEvery     = 5 * time.Second             // Recover's period
	withdrawalTTL    = 2 * time.Minute             // a QR session's life
	withdrawalPINTTL = 60 * time.Second            // time to type the PIN
	holdTimeout      = 30 * time.Minute            // a withdrawal hold's timeout, should the data centre never settle it
)

// PINPadKey reads the demo ATM's PIN pad key from the var directory, or
// makes it on the first start (the key ceremony of a real ATM: the same
// key goes into the PIN pad and into the HSM, and nowhere else).
func PINPadKey(varDir string) ([]byte, error) {
	path := filepath.Join(varDir, pinPadKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("%s is not an AES-256 key in hex: delete %s to start afresh", path, varDir)
		}
		return k, nil
	}
	k := make([]byte, 32)
	rand.Read(k)
	return k, os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600)
}

// Withdrawals is the demo's QR withdrawal on the data centre's side.
type Withdrawals struct {
	Service *withdrawal.Service
	// Phone and AppPIN are alice's phone app state and app PIN files; PIN
	// the file of her withdrawal PIN.
	Phone, AppPIN, PIN string
	// Account is alice's current account, the recipe's.
	Account string
	// openURL is the withdrawal API's open route, which the ATM's button
	// calls as the demo back-end client (secret in secretFile).
	openURL, secretFile string
	http                *http.Client
}

// StartWithdrawals loads the PIN pad key into the HSM, gives alice a
// withdrawal PIN and a bound phone app on the first start, makes the
// withdrawal service over the agent gateway, ebank's holds and txauth,
// mounts its API under /atm/withdrawals and runs Recover every few seconds
// until ctx ends. events is set to the service's Event.
func StartWithdrawals(ctx context.Context, a *app.Authsvc, link *Link, pinKey []byte, varDir, alice, account string, ttl time.Duration,
	events *atomic.Pointer[func(string, dclink.Event)], log *slog.Logger) (*Withdrawals, error) {
	if _, err := a.HSM.ImportPINKey(ctx, hsm.PINKeyLabel(DemoATM), pinKey); err != nil {
		return nil, err
	}
	pins, err := wdpin.New(wdpin.Options{DB: a.DB, HSM: a.HSM, Attempts: a.Auth.Passport()})
	if err != nil {
		return nil, err
	}
	w := &Withdrawals{Phone: filepath.Join(varDir, alicePhoneFile), AppPIN: filepath.Join(varDir, aliceAppPINFile), PIN: filepath.Join(varDir, aliceWdPINFile), Account: account,
		openURL: a.Server.URL() + "/atm/withdrawals", secretFile: filepath.Join(varDir, backendSecretFile), http: &http.Client{Timeout: 30 * time.Second}}
	if err := withdrawalPIN(ctx, pins, w.PIN, alice); err != nil {
		return nil, err
	}
	if err := bindPhone(ctx, a, w.Phone, w.AppPIN, alice); err != nil {
		return nil, err
	}
	l := ledger.New(a.DB, nil)
	if _, err := ebank.EnsureBankAccounts(ctx, l); err != nil {
		return nil, err
	}
	wl, err := app.NewWithdrawalLedger(ctx, &ebank.Holds{Ledger: l, Grants: ebank.RequireGrant{}, DefaultTimeout: holdTimeout})
	if err != nil {
		return nil, err
	}
	wl.Intents = &app.WithdrawalIntents{Tx: app.LocalTx{Service: a.Tx}, DB: a.DB, OnError: func(err error) { log.Error("withdrawal hold refused", "err", err) }}
	auth := &app.WithdrawalAuthorizer{Tx: app.LocalTx{Service: a.Tx}, Ledger: l, ATM: link.Gateway, PIN: pins, PINTimeout: withdrawalPINTTL, DB: a.DB, Phones: phone.New(a.DB, nil)}
	w.Service, err = withdrawal.New(withdrawal.Options{DB: a.DB, ATM: link.Gateway, Ledger: wl, Authorizer: auth, TTL: cmp.Or(ttl, withdrawalTTL),
		OnSettled: app.WithdrawalSettled(app.LocalTx{Service: a.Tx}, l, a.DB, func(err error) { log.Error("withdrawal settled", "err", err) })})
	if err != nil {
		return nil, err
	}
	ev := func(_ string, e dclink.Event) {
		go func() {
			if err := w.Service.Event(context.WithoutCancel(ctx), e); err != nil {
				log.Error("withdrawal event", "atm", e.ATM, "kind", e.Kind, "err", err)
			}
		}()
	}
	events.Store(&ev)
	h := app.WithdrawalsHandler(w.Service, a.Backend)
	a.Server.Mux.Handle("/atm/withdrawals", h)
	a.Server.Mux.Handle("/atm/withdrawals/", h)
	go func() {
		t := time.NewTicker(recoverEvery)
		defer t.Stop()
		for {
			if err := w.Service.Recover(ctx); err != nil && ctx.Err() == nil {
				log.Warn("withdrawal recovery", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w, nil
}

// ChooseQR is the ATM's "QR withdrawal" button: the bank's ATM
// application opens a session on the demo ATM through the withdrawal API,
// as the demo back-end client (scope atm:withdrawals), like any other.
func (w *Withdrawals) ChooseQR(ctx context.Context) error {
	secret, err := os.ReadFile(w.secretFile)
	if err != nil {
		return fmt.Errorf("the demo back-end client's secret: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.openURL, strings.NewReader(`{"atm":"`+DemoATM+`"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(BackendClientID, strings.TrimSpace(string(secret)))
	clear(secret)
	resp, err := w.http.Do(req)
	if err != nil {
		return fmt.Errorf("opening a withdrawal session: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return nil
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
	return fmt.Errorf("%s (%s, HTTP %d)", cmp.Or(e.Error.Message, http.StatusText(resp.StatusCode)), cmp.Or(e.Error.Code, "no code"), resp.StatusCode)
}

func randomDigits(n int) string {
	var b strings.Builder
	for range n {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		b.WriteByte(byte('0' + d.Int64()))
	}
	return b.String()
}

// withdrawalPIN gives alice a random 6-digit withdrawal PIN, in a file only
// the owner reads, unless she has one.
func withdrawalPIN(ctx context.Context, pins *wdpin.Service, file, alice string) error {
	set, err := pins.IsSet(ctx, alice)
	if err != nil {
		return err
	}
	if _, ferr := os.Stat(file); set && ferr == nil {
		return nil
	}
	pin := []byte(randomDigits(6))
	defer clear(pin)
	if err := pins.Set(ctx, alice, pin); err != nil {
		return fmt.Errorf("alice's withdrawal PIN: %w", err)
	}
	return os.WriteFile(file, append(pin, '\n'), 0o600)
}

// bindPhone binds a phone app to alice on the first start, as egate sim
// phone bind would after her password and an SMS code: a device key made
// here, kept in the app's state file, and an app PIN in its own file.
func bindPhone(ctx context.Context, a *app.Authsvc, stateFile, pinFile, alice string) error {
	if st, err := simphone.Load(stateFile); err == nil {
		if _, err := os.Stat(pinFile); err == nil {
			st.Server = a.Server.URL() // the demo may have moved to another port
			return st.Save(stateFile)
		}
	}
	if a.Factors.Phone == nil {
		return errors.New("the phone app tool is not enabled (factors.enabled): the QR withdrawal needs it")
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	pub, _ := x509.MarshalPKIXPublicKey(k.Public())
	salt := make([]byte, 16)
	rand.Read(salt)
	pin := []byte(randomDigits(6))
	defer clear(pin)
	pinKey := authphone.PINKey(pin, salt)
	defer clear(pinKey)
	d, err := a.Factors.Phone.Bind(ctx, alice, pub, salt, pinKey, "demo phone")
	if err != nil {
		return err
	}
	sealed, sealSalt, err := simphone.Seal(k, pin)
	if err != nil {
		return err
	}
	st := &simphone.State{Server: a.Server.URL(), DeviceID: d.ID, PassportID: alice, SealedKey: sealed, SealSalt: sealSalt, PINSalt: salt}
	if err := st.Save(stateFile); err != nil {
		return err
	}
	return os.WriteFile(pinFile, append(pin, '\n'), 0o600)
}

// printWithdrawalRecipe prints how to take cash out of the demo ATM with
// the phone simulator.
func printWithdrawalRecipe(out io.Writer, base, varDir string, w *Withdrawals) {
	png := filepath.Join(varDir, "atm-qr.png")
	fmt.Fprintf(out, "QR withdrawal at %s, as alice (her phone app is bound: %s):\n", DemoATM, w.Phone)
	fmt.Fprintf(out, "  1. choose QR withdrawal at the ATM (the button on %s/sim/atm/):\n", base)
	fmt.Fprintf(out, "       curl -XPOST %s/sim/atm/choose-qr                  # the QR is now on the screen and in %s\n", base, png)
	fmt.Fprintf(out, "  2. scan it with the phone and approve 300 yuan from alice's current account (app PIN in %s):\n", w.AppPIN)
	fmt.Fprintf(out, "       egate sim phone scan %s --state %s --pin-source file:%s \\\n", png, w.Phone, w.AppPIN)
	fmt.Fprintf(out, "         --account %s --amount 300 --bank %s --yes\n", w.Account, base)
	fmt.Fprintf(out, "  3. when the phone says so, type the withdrawal PIN (in %s) on the ATM's PIN pad:\n", w.PIN)
	fmt.Fprintf(out, "       curl -d digits=$(cat %s) %s/sim/atm/pin\n", w.PIN, base)
	fmt.Fprintf(out, "     (or type it first: the PIN pad keeps what is typed for its next prompt)\n")
	fmt.Fprintf(out, "  4. the cash comes out and is taken after 2 s; then:\n")
	fmt.Fprintf(out, "       curl %s/atm/withdrawals/<session>                # CAPTURED (the state only: anybody has the session from the QR)\n", base)
	fmt.Fprintf(out, "       curl -u %s:$(cat %s) %s/atm/withdrawals/<session>  # the amounts, as the bank's ATM application; alice's balance alert at %s/sim/sms/\n", BackendClientID, w.secretFile, base, base)
}
