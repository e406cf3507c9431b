package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egate-bank/egate/atm"
	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/atm/withdrawal"
	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/passport"
	authphone "github.com/egate-bank/egate/authsvc/phone"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/authsvc/wdpin"
	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// pinPad is the ATM's PIN pad as the authorizer sees it through the
// gateway (the real one is tested end to end in internal/demo): it answers
// the pin op with the block of what the customer types next, under the
// PIN pad's key, or CANCELLED.
type pinPad struct {
	key   []byte
	typed string // "cancel": the customer pressed cancel
	asked int
}

func (p *pinPad) Send(_ context.Context, cmd gateway.Command) (json.RawMessage, error) {
	if cmd.Op != dclink.OpPIN {
		return nil, errors.New("unexpected op " + cmd.Op)
	}
	p.asked++
	var a dclink.PINArgs
	json.Unmarshal(cmd.Args, &a)
	if p.typed == "cancel" {
		return nil, &gateway.CommandError{ATM: cmd.ATM, Op: cmd.Op, Err: &dclink.Error{Code: dclink.ErrDevice, Device: "CANCELLED", Message: "cancelled"}}
	}
	b, err := atm.EncipherPINBlock4(p.key, p.typed, a.PAN)
	if err != nil {
		return nil, err
	}
	return json.Marshal(dclink.PINResult{Format: 4, KeyID: 1, Block: b[:]})
}

// TestWithdrawalAuthorizer runs the authorizer against egate authsvc's
// transaction API, in process (LocalTx, egate demo) and over HTTP as a
// back-end client (txclient, egate agent-gateway): the phone's challenge,
// its signature, the PIN pad's block opened in SoftHSM2, the grant
// executed; and each refusal with its code, the intent cancelled, wrong
// PINs counted.
func TestWithdrawalAuthorizer(t *testing.T) {
	b := newWDBench(t, store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "egate.db")})
	a, cu, l, acct, dev, dk, salt, pinKey, pins, padKey, secret := b.a, b.cu, b.l, b.acct, b.dev, b.dk, b.salt, b.pinKey, b.pins, b.padKey, wdBenchSecret
	ctx := context.Background()
	atmID := b.atm

	proof := func(p PhoneProof) string { b, _ := json.Marshal(p); return string(b) }
	for _, tx := range []struct {
		name string
		api  TxAPI
	}{
		{"local", LocalTx{Service: a.Tx}},
		{"http", &txclient.Client{BaseURL: a.Server.URL(), ID: "agent-gateway", Secret: secret, HTTP: &http.Client{}}},
	} {
		t.Run(tx.name, func(t *testing.T) {
			pad := &pinPad{key: padKey}
			auth := &WithdrawalAuthorizer{Tx: tx.api, Ledger: l, ATM: pad, PIN: pins, Phones: a.Factors.Phone}
			n := 0
			// approve runs the phone's two posts; sign false sends a
			// signature made with a wrong app PIN.
			// The app's language (empty: English); the text it was
			// asked to confirm.
			lang, shown := "", ""
			approve := func(account string, fen int64, typed string, rightAppPIN bool) (string, error) {
				n++
				in := withdrawal.Intent{Kind: "withdrawal", Account: account, AmountFen: fen, ATM: atmID, Session: tx.name + strings.Repeat("0", 31-len(tx.name)) + string(rune('a'+n))}
				first := b.firstPost(t, in)
				first.Lang = lang
				_, err := auth.Authorize(ctx, in, proof(first))
				var pn *withdrawal.ProofNeeded
				if !errors.As(err, &pn) {
					return "", err
				}
				if shown = pn.Text; pn.Level < 2 {
					t.Fatalf("challenge %+v", pn)
				}
				k := pinKey
				if !rightAppPIN {
					k = authphone.PINKey([]byte("0000"), salt)
				}
				sig, err := authphone.Sign(dev.ID, dk, k, pn.Data)
				if err != nil {
					t.Fatal(err)
				}
				pad.typed = typed
				second := b.secondPost(t, in, pn.ChallengeID, sig)
				second.Lang = lang
				return auth.Authorize(ctx, in, proof(second))
			}
			grant, err := approve(acct, 100_00, "135790", true)
			if err != nil || grant == "" {
				t.Fatalf("the right PIN: %q, %v", grant, err)
			}
			if want := "Withdraw 100.00 yuan at " + txauth.Mask(atmID) + " from " + txauth.Mask(acct); shown != want {
				t.Fatalf("the app was asked to confirm %q, want %q", shown, want)
			}
			// An app in Chinese confirms and signs the Chinese text.
			lang = intent.LangZH
			if grant, err := approve(acct, 100_00, "135790", true); err != nil || grant == "" {
				t.Fatalf("in Chinese: %q, %v", grant, err)
			}
			if want := "在 " + txauth.Mask(atmID) + " 取款 100.00 元（取款账户 " + txauth.Mask(acct) + "）"; shown != want {
				t.Fatalf("the app in Chinese was asked to confirm %q, want %q", shown, want)
			}
			lang = "fr"
			var rf *withdrawal.Refusal
			if _, err := approve(acct, 100_00, "135790", true); !errors.As(err, &rf) || rf.Code != "bad_proof" {
				t.Fatalf("an app in French: %v, want bad_proof", err)
			}
			lang = ""
			cases := []struct {
				name        string
				account     string
				fen         int64
				typed       string
				appPIN      bool
				code        string
				pinsCounted int
				padAsked    int
			}{
				{"wrong withdrawal PIN", acct, 100_00, "999999", true, "wrong_pin", 1, 1},
				{"PIN entry cancelled", acct, 100_00, "cancel", true, "pin_cancelled", 0, 1},
				{"wrong app PIN on the phone", acct, 100_00, "135790", false, "wrong_answer", 0, 0},
				{"over the balance", acct, 2_000_00, "135790", true, "insufficient_funds", 0, 0},
				{"another customer's account", "6299000000000000009", 100_00, "135790", true, "not_your_account", 0, 0},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					before, _ := a.Auth.Passport().Failures(ctx, "pid:"+cu.PassportID, wdpin.Factor)
					asked := pad.asked
					grant, err := approve(tc.account, tc.fen, tc.typed, tc.appPIN)
					var rf *withdrawal.Refusal
					if !errors.As(err, &rf) || rf.Code != tc.code || rf.Message == "" || grant != "" {
						t.Fatalf("grant %q, err %v; want a refusal %s", grant, err, tc.code)
					}
					if strings.Contains(rf.Message, "135790") || strings.Contains(rf.Message, "999999") {
						t.Fatalf("the message shows a PIN: %s", rf.Message)
					}
					after, _ := a.Auth.Passport().Failures(ctx, "pid:"+cu.PassportID, wdpin.Factor)
					if after-before != tc.pinsCounted || pad.asked-asked != tc.padAsked {
						t.Fatalf("wrong PINs counted %d, PIN pad asked %d; want %d, %d", after-before, pad.asked-asked, tc.pinsCounted, tc.padAsked)
					}
				})
			}
		})
	}
}

// The withdrawal benches' back-end client secret.
const wdBenchSecret = "atm-withdrawal-0123456789abcdef0123456789abcdef"

// wdBench is egate authsvc in process on dbc (its transaction API also
// over HTTP for the back-end client agent-gateway, secret wdBenchSecret)
// with alice ("wdalice"): a current account of 1,000 yuan, a bound phone
// (app PIN 2468), the withdrawal PIN 135790, and the PIN pad key of its
// ATM in SoftHSM2 (an ATM id of its own: the test binary's benches share
// one SoftHSM2 token).
type wdBench struct {
	atm    string
	a      *Authsvc
	cu     passport.Customer
	l      *ledger.Ledger
	acct   string
	dev    *authphone.Device
	dk     *ecdsa.PrivateKey
	salt   []byte
	pinKey []byte
	pins   *wdpin.Service
	padKey []byte
}

func newWDBench(t *testing.T, dbc store.Config) *wdBench {
	t.Helper()
	cfg := config.Defaults()
	cfg.HSM = hsmtest.Config(t)
	cfg.Database = dbc
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Factors.Enabled = []string{"sms", "phone"}
	cfg.Factors.SMS.DevSink = true
	cfg.Authsvc.BackendClients = []backend.ClientConfig{{ID: "agent-gateway", SecretSHA256: backend.HashSecret([]byte(wdBenchSecret)),
		Scopes: []string{backend.ScopeTxAuthorize, backend.ScopeTxExecute, backend.ScopeAlertsBalance}}}
	a, err := NewAuthsvc(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), AuthsvcOptions{InitKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	a.Server.Start()
	t.Cleanup(func() { a.Server.HTTP.Close(); a.Close() })
	ctx := context.Background()
	b := &wdBench{a: a, l: ledger.New(a.DB, nil)}
	if b.cu, err = a.Auth.Passport().Register(ctx, passportCustomer("wdalice")); err != nil {
		t.Fatal(err)
	}
	if _, err := ebank.EnsureBankAccounts(ctx, b.l); err != nil {
		t.Fatal(err)
	}
	accts, err := ebank.OpenCustomerAccounts(ctx, b.l, b.cu.PassportID, "wdalice", ebank.Opening{Current: 1_000_00})
	if err != nil {
		t.Fatal(err)
	}
	b.acct = accts[0].Number
	b.dk, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(b.dk.Public())
	b.salt = make([]byte, 16)
	rand.Read(b.salt)
	b.pinKey = authphone.PINKey([]byte("2468"), b.salt)
	if b.dev, err = a.Factors.Phone.Bind(ctx, b.cu.PassportID, pub, b.salt, b.pinKey, "test phone"); err != nil {
		t.Fatal(err)
	}
	if b.pins, err = wdpin.New(wdpin.Options{DB: a.DB, HSM: a.HSM, Attempts: a.Auth.Passport()}); err != nil {
		t.Fatal(err)
	}
	if err := b.pins.Set(ctx, b.cu.PassportID, []byte("135790")); err != nil {
		t.Fatal(err)
	}
	b.padKey = make([]byte, 32)
	rand.Read(b.padKey)
	b.atm = "ATM-WDAUTH-" + hex.EncodeToString(b.padKey[:4])
	if _, err := a.HSM.ImportPINKey(ctx, hsm.PINKeyLabel(b.atm), b.padKey); err != nil {
		t.Fatal(err)
	}
	return b
}

// eachWDBench runs f on a wdBench on SQLite and on PostgreSQL.
func eachWDBench(t *testing.T, f func(t *testing.T, engine string, b *wdBench)) {
	for _, engine := range []string{store.SQLite, store.Postgres} {
		t.Run(engine, func(t *testing.T) {
			dbc := store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "egate.db")}
			if engine == store.Postgres {
				testenv.NeedEnv(t, "EGATE_TEST_PG_DSN", "PostgreSQL")
				dbc = store.Config{Driver: store.Postgres, DSN: storetest.PostgresDSN(t)}
			}
			f(t, engine, newWDBench(t, dbc))
		})
	}
}

// firstPost is the phone's first post for in: its device signature over
// the request, now.
func (b *wdBench) firstPost(t *testing.T, in withdrawal.Intent) PhoneProof {
	t.Helper()
	ts := time.Now().UnixMilli()
	sig, err := authphone.SignDevice(b.dk, authphone.WithdrawalRequestData(b.cu.PassportID, in.Session, in.Account, in.AmountFen, ts))
	if err != nil {
		t.Fatal(err)
	}
	return PhoneProof{Customer: b.cu.PassportID, Device: b.dev.ID, TS: ts, DeviceSig: sig}
}

// secondPost is the phone's second post for in: the first post's device
// signature and the answer to the challenge.
func (b *wdBench) secondPost(t *testing.T, in withdrawal.Intent, challengeID string, response []byte) PhoneProof {
	t.Helper()
	p := b.firstPost(t, in)
	p.ChallengeID, p.Response = challengeID, string(response)
	return p
}

func passportCustomer(login string) passport.NewCustomer {
	return passport.NewCustomer{LoginName: login, Mobile: "13800138000", ReservedMessage: "red lantern", Password: "Correct-Horse-7-Battery"}
}
