package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/devices/agent"
	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/app"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/platform"
)

// PassportSigningKey is the HSM label of the key that signs ID and access tokens.
const PassportSigningKey = hsm.LabelPassportSigning

// Run starts the demo and serves until ctx ends. What it started and where
// is printed to out; operational logs go to log.
func Run(ctx context.Context, cfg *config.Config, out io.Writer, log *slog.Logger) error {
	// Every section is checked before anything is created on disk.
	for _, v := range []interface{ Validate() error }{cfg.Demo, cfg.HTTP, cfg.Log, cfg.Database, cfg.Platforms} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(cfg.Demo.VarDir, 0o700); err != nil {
		return fmt.Errorf("creating demo directory %s: %w", cfg.Demo.VarDir, err)
	}
	c := *cfg
	var agentToken *agent.TokenConfig // the demo agent's token, beside the demo HSM's
	if c.HSM.Module == "" {
		hc, err := HSMToken(ctx, c.Demo.VarDir, c.HSM.Token, c.HSM.Pool)
		if err != nil {
			return fmt.Errorf("preparing the demo SoftHSM token: %w", err)
		}
		tc, err := AgentToken(ctx, c.Demo.VarDir)
		if err != nil {
			return fmt.Errorf("preparing the demo agent's SoftHSM token: %w", err)
		}
		agentToken = &tc
		c.HSM = hc
		fmt.Fprintf(out, "HSM        SoftHSM2 token %q in %s\n", hc.Token, filepath.Join(c.Demo.VarDir, "softhsm"))
	} else {
		fmt.Fprintf(out, "HSM        token %q through %s\n", c.HSM.Token, c.HSM.Module)
	}

	// The platforms are the passport's clients, on their own ports.
	issuer := c.HTTP.BaseURL()
	c.Platforms.Issuer = issuer
	urls := map[string]string{}
	for _, n := range platform.Names {
		p, _ := c.Platforms.ByName(n)
		if p.PublicURL == "" {
			p.PublicURL = "http://" + p.Listen
		}
		if p.ClientSecret == "" {
			p.ClientSecret = randomHex(24)
		}
		if p.CookieKey == "" {
			p.CookieKey = randomHex(32)
		}
		urls[n] = strings.TrimRight(p.PublicURL, "/")
		c.Authsvc.OIDC.Clients = append(c.Authsvc.OIDC.Clients, oidcop.ClientConfig{
			ID: n, Secret: p.ClientSecret, MinLevel: p.Level,
			RedirectURIs: []string{urls[n] + "/callback"}, PostLogoutRedirectURIs: []string{urls[n] + "/"},
			BackchannelLogoutURI: urls[n] + "/backchannel-logout",
		})
	}

	// The demo makes its own bank CA on the first start.
	c.Factors.CA.AutoInit = true
	// Its SMS codes and alerts go to the development sink, listed at
	// /sim/sms/, unless the config names an operator gateway.
	if c.Factors.SMS.Gateway.URL == "" {
		c.Factors.SMS.DevSink = true
	}
	// A back-end client for the demo's simulators and for trying the OTP
	// verify API with curl.
	bc, err := backendClient(c.Demo.VarDir)
	if err != nil {
		return err
	}
	c.Authsvc.BackendClients = append(slices.Clone(c.Authsvc.BackendClients), bc)
	// ebank's transfer pages call the transaction API as that client.
	if c.Platforms.Ebank.TxClient == "" {
		secret, err := os.ReadFile(filepath.Join(c.Demo.VarDir, backendSecretFile))
		if err != nil {
			return err
		}
		c.Platforms.Ebank.TxClient, c.Platforms.Ebank.TxSecret = BackendClientID, strings.TrimSpace(string(secret))
	}
	if c.Platforms.Mall.TxClient == "" { // the mall pays through the same client (ebank:holds too)
		c.Platforms.Mall.TxClient, c.Platforms.Mall.TxSecret = c.Platforms.Ebank.TxClient, c.Platforms.Ebank.TxSecret
	}
	// So do the messenger's payments, and its transfers at ebank.
	if c.Platforms.Messenger.TxClient == "" {
		c.Platforms.Messenger.TxClient, c.Platforms.Messenger.TxSecret = c.Platforms.Ebank.TxClient, c.Platforms.Ebank.TxSecret
	}
	a, err := app.NewAuthsvc(ctx, &c, log, app.AuthsvcOptions{InitKeys: true})
	if err != nil {
		return err
	}
	defer a.Close()
	for _, k := range a.Keys {
		fmt.Fprintf(out, "  key      %-24s %s\n", k.Label, k.URI)
	}
	fmt.Fprintf(out, "Database   %s %s\n", c.Database.Driver, c.Database.DSN)
	cfgPath, err := writeConfig(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Config     %s: the HSM and the database above, for operator commands and egate authsvc\n", cfgPath)
	fmt.Fprintf(out, "           (egate admin hsm keys --config %s; stop the demo before egate authsvc --config %s)\n", cfgPath, cfgPath)

	who, err := demoCustomer(ctx, a.Auth.Passport(), c.Demo.VarDir)
	if err != nil {
		return err
	}
	if err := enrollTools(ctx, a.Factors, who.passportID, c.Demo.VarDir); err != nil {
		return err
	}
	// alice's payer account, until the ebank's ledger answers whose
	// accounts are whose.
	a.TxAccounts.Add(who.passportID, DemoAccount)
	bob, err := demoBob(ctx, a.Auth.Passport(), a.Factors, c.Demo.VarDir)
	if err != nil {
		return err
	}
	carol, err := demoCarol(ctx, a.Auth.Passport(), c.Demo.VarDir)
	if err != nil {
		return err
	}
	aliceCurrent, err := seedAccounts(ctx, a.DB, out, who, bob, carol)
	if err != nil {
		return err
	}
	if err := seedMall(ctx, a.DB, out, bob); err != nil {
		return err
	}
	if _, err := seedMessenger(ctx, a.DB, who, bob, carol); err != nil {
		return fmt.Errorf("seeding the messenger: %w", err)
	}
	tools := toolsHandler(c.Demo.VarDir)
	a.Server.Mux.Handle("/sim/otp/", tools)
	a.Server.Mux.Handle("/sim/gridcard.png", tools)
	a.Server.Mux.Handle("GET /{$}", indexHandler(urls))
	if a.Factors.SMSSink != nil {
		mountSMSSink(a.Server.Mux, a.Factors.SMSSink)
	}
	go a.DeliverLoginAlerts(ctx, log)

	pinKey, err := PINPadKey(c.Demo.VarDir)
	if err != nil {
		return err
	}
	// The ATM's button and the gateway's events reach the withdrawal
	// service, made once the link is up.
	var wds atomic.Pointer[Withdrawals]
	var events atomic.Pointer[func(string, dclink.Event)]
	chooseQR := func(ctx context.Context) error {
		w := wds.Load()
		if w == nil {
			return errors.New("the withdrawal service is not running (no agent link)")
		}
		return w.ChooseQR(ctx)
	}
	branch, err := StartATM(ctx, c.Demo.VarDir, a.Server.Metrics.Registry, pinKey, chooseQR)
	if err != nil {
		return fmt.Errorf("starting the simulated ATM: %w", err)
	}
	defer branch.Close()
	branch.Mount(a.Server.Mux)
	a.Server.Health.Add("atm", branch.Agent.Check)
	fmt.Fprintf(out, "ATM        simulated ATM-DEMO-01 on %s (115200 baud, paced), journal %s\n", branch.Sim.TTYName, filepath.Join(c.Demo.VarDir, "atm-journal"))
	if agentToken != nil {
		link, err := StartLink(ctx, c.Demo.VarDir, a.DB, a.HSM, a.Factors.CA, branch.Agent, *agentToken, a.Server.Metrics.Registry,
			func(b string, ev dclink.Event) {
				if f := events.Load(); f != nil {
					(*f)(b, ev)
				}
			})
		if err != nil {
			return fmt.Errorf("starting the agent's mutual-TLS link: %w", err)
		}
		defer link.Close()
		a.Server.Mux.Handle("/agent-gateway/", link.Gateway.Handler())
		a.Server.Health.Add("agent-link", link.Uplink.Check)
		fmt.Fprintf(out, "Agent      branch %s dials the agent gateway tls://%s with its key %s\n", DemoBranch, link.Addr, agentToken.Key)
		w, err := StartWithdrawals(ctx, a, link, pinKey, c.Demo.VarDir, who.passportID, aliceCurrent, c.Demo.WithdrawalTTL, &events, log)
		if err != nil {
			return fmt.Errorf("starting the QR withdrawal: %w", err)
		}
		wds.Store(w)
	}

	servers := []*app.Server{a.Server}
	a.Server.Start() // the platforms discover the passport as they start
	for _, n := range platform.Names {
		// One process, one database handle: on SQLite a second handle
		// would take turns with the passport's at the file's write lock
		// (app.PlatformOptions).
		s, err := app.Platform(ctx, &c, n, log, app.PlatformOptions{DB: a.DB})
		if err != nil {
			for _, s := range servers[1:] {
				s.Listener.Close()
			}
			a.Server.HTTP.Close()
			return err
		}
		servers = append(servers, s)
	}
	go a.PurgeEvery(ctx, 10*time.Minute, log)
	go a.CheckpointAuditEvery(ctx, log)

	base := a.Server.URL()
	fmt.Fprintf(out, "\negate demo is up:\n")
	fmt.Fprintf(out, "  passport %s (OIDC discovery %s/.well-known/openid-configuration)\n", base, base)
	fmt.Fprintf(out, "  JWKS     %s/keys (HSM key %s)\n", base, a.HSM.Token()+"/"+PassportSigningKey)
	fmt.Fprintf(out, "  health   %s/healthz  ready %s/readyz  metrics %s/metrics\n", base, base, base)
	for _, n := range platform.Names {
		fmt.Fprintf(out, "  %-10s%s\n", n, urls[n])
	}
	fmt.Fprintf(out, "  ATM      %s/sim/atm/ (screen, cassettes; POST /sim/atm/faults)\n", base)
	fmt.Fprintf(out, "  agent    %s/agent/atms\n", base)
	if agentToken != nil {
		fmt.Fprintf(out, "  gateway  %s/agent-gateway/agents (the agent's mutual-TLS link)  %s/agent-gateway/atms/%s/status\n", base, base, DemoATM)
	}
	fmt.Fprintf(out, "  tools    %s/sim/otp/ (alice's token)  %s/sim/gridcard.png  %s/sim/sms/ (SMS codes and login alerts)\n", base, base, base)
	if a.Factors.OTP != nil {
		printOTPAPI(out, base, c.Demo.VarDir, who.passportID)
	}
	fmt.Fprintf(out, "Log in as %q (password, SMS, grid card, OTP token; the password is in %s)\n", who.name, who.file)
	fmt.Fprintf(out, "  or as %q (password, SMS, grid card %s; the password is in %s).\n", bob.name, filepath.Join(c.Demo.VarDir, bobGridFile), bob.file)
	fmt.Fprintf(out, "  ebank    %s/accounts (balances, history, statements), %s/transfer\n", urls["ebank"], urls["ebank"])
	printMall(out, urls["mall"])
	printMessenger(out, urls["messenger"], base, carol)
	if w := wds.Load(); w != nil {
		printWithdrawalRecipe(out, base, c.Demo.VarDir, w)
	}
	fmt.Fprintf(out, "Press Ctrl-C to stop.\n")
	log.Info("demo started", "passport", base)

	err = app.ServeAll(ctx, servers...)
	fmt.Fprintln(out, "egate demo stopped.")
	return err
}

type customer struct{ name, file, passportID string }

// DemoAccount is alice's payer account in the transaction API.
const DemoAccount = "6222020000000001"

// demoCustomer registers the demo customer on the first start, with a
// random password kept in a file readable by the owner only.
func demoCustomer(ctx context.Context, ps *passport.Service, varDir string) (customer, error) {
	c := customer{name: "alice", file: filepath.Join(varDir, "demo-alice-password")}
	if _, err := os.Stat(c.file); err == nil {
		cu, err := ps.ByLoginName(ctx, c.name)
		if err != nil {
			return c, fmt.Errorf("the demo customer: %w (delete %s to start afresh)", err, varDir)
		}
		c.passportID = cu.PassportID
		return c, nil
	}
	pw := "Demo-" + randomHex(6) + "-Kite"
	cu, err := ps.Register(ctx, passport.NewCustomer{LoginName: c.name, Mobile: "13800138000", ReservedMessage: "red lantern 88", Password: pw})
	if errors.Is(err, passport.ErrLoginNameTaken) {
		// The password file was removed: give the customer a new password.
		if cu, err = ps.ByLoginName(ctx, c.name); err == nil {
			err = ps.ResetPassword(ctx, cu.PassportID, pw)
		}
	}
	c.passportID = cu.PassportID
	if err != nil {
		return c, fmt.Errorf("registering the demo customer: %w", err)
	}
	if err := os.WriteFile(c.file, []byte(pw+"\n"), 0o600); err != nil {
		return c, err
	}
	return c, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
