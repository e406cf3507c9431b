package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/devices/agent"
	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/app"
	"github.com/egate-bank/egate/internal/httpx"
)

func init() {
	registerTop(newAgentCmd)
	registerTop(newAgentGatewayCmd)
}

func newAgentCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "agent",
		Short: "run the branch device agent: owns the ATMs on serial lines, dials out to the data centre over mutual TLS (agent.* in the config)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			if err := cfg.Agent.Validate(); err != nil {
				return err
			}
			if _, _, err := net.SplitHostPort(cfg.Agent.Listen); err != nil {
				return fmt.Errorf("agent.listen %q: give host:port", cfg.Agent.Listen)
			}
			ctx := cmd.Context()
			s, err := app.NewServer("agent", cfg.Agent.Listen, log)
			if err != nil {
				return err
			}
			a, err := agent.New(cfg.Agent, agent.SerialLines, s.Metrics.Registry)
			if err != nil {
				return err
			}
			defer a.Close()
			s.Health.Add("atms", a.Check)
			s.Mux.Handle("/atms", a.Handler())
			s.Mux.Handle("/atms/", a.Handler())
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "agent serving at %s with %d ATM(s): %v\n", s.URL(), len(a.IDs()), a.IDs())
			if cfg.Agent.DatacentreURL == "" {
				fmt.Fprintln(out, "no data-centre link (agent.datacentre-url is empty)")
				return app.ServeAll(ctx, s)
			}
			if err := cfg.Agent.Token.ApplyModuleEnv(); err != nil {
				return err
			}
			tok, err := agent.OpenToken(ctx, cfg.Agent.Token)
			if err != nil {
				return err
			}
			defer tok.Close()
			cert, err := tok.TLSCertificate()
			if err != nil {
				return err
			}
			if cn := cert.Leaf.Subject.CommonName; cn != cfg.Agent.Branch {
				return fmt.Errorf("the certificate on the token was issued to branch %q but agent.branch is %q: enroll this token for the branch (egate admin agent enroll) or correct agent.branch", cn, cfg.Agent.Branch)
			}
			conf, err := cfg.Agent.ClientTLS(cert)
			if err != nil {
				return err
			}
			addr, _ := cfg.Agent.DatacentreAddr()
			up, err := agent.NewUplink(a, cfg.Agent.DatacentreURL, agent.UplinkOptions{
				Branch: cfg.Agent.Branch, Dial: agent.DialTLS(addr, conf),
				ReconnectMin: cfg.Agent.ReconnectMin, ReconnectMax: cfg.Agent.ReconnectMax, Registerer: s.Metrics.Registry,
			})
			if err != nil {
				return err
			}
			s.Health.Add("datacentre", up.Check)
			s.Mux.HandleFunc("GET /datacentre", func(w http.ResponseWriter, r *http.Request) { httpx.WriteJSON(w, http.StatusOK, up.Status()) })
			fmt.Fprintf(out, "branch %s: dialling out to %s with certificate %s (key %s)\n", cfg.Agent.Branch, cfg.Agent.DatacentreURL, ca.SerialHex(cert.Leaf.SerialNumber), tok.URI())
			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() { _ = up.Run(runCtx) }()
			go logLink(runCtx, up, log)
			return app.ServeAll(ctx, s)
		},
	}
}

// logLink logs the link's changes (up, down with the reason).
func logLink(ctx context.Context, up *agent.Uplink, log *slog.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var was agent.LinkStatus
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := up.Status()
		switch {
		case st.Up && (!was.Up || st.Connects != was.Connects):
			log.Info("data-centre link up", "datacentre", st.Datacentre, "accepted_atms", st.Accepted, "refused_atms", st.Refused)
		case !st.Up && st.LastError != "" && st.LastError != was.LastError:
			log.Warn("data-centre link down", "datacentre", st.Datacentre, "error", st.LastError, "next_try", st.NextTry)
		}
		was = st
	}
}

func newAgentGatewayCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "agent-gateway",
		Short: "run the data centre's end of the branch agents' mutual-TLS links (agent-gateway.*; operators' view on http.listen)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			gc := cfg.AgentGateway
			for _, v := range []interface{ Validate() error }{gc, cfg.HTTP, cfg.Database, cfg.Withdrawals} {
				if err := v.Validate(); err != nil {
					return err
				}
			}
			if gc.Cert == "" {
				return errors.New("agent-gateway.cert is empty: make it with egate admin agent gateway-cert --host … --out FILE")
			}
			ctx := cmd.Context()
			db, err := app.OpenDB(ctx, cfg)
			if err != nil {
				return err
			}
			defer db.Close()
			hc, err := app.HSMConfig(cfg)
			if err != nil {
				return err
			}
			h, err := hsm.Open(ctx, hc)
			if err != nil {
				return err
			}
			defer h.Close()
			c, err := ca.Load(ctx, db, nil, nil)
			if err != nil {
				return err
			}
			key, err := h.Signer(ctx, gc.Key)
			if err != nil {
				return err
			}
			chain, err := readChain(gc.Cert, key.Public())
			if err != nil {
				return err
			}
			cas := x509.NewCertPool()
			cas.AddCert(c.Root())
			cas.AddCert(c.Issuing())
			alog := audit.New(db, nil)
			// The QR withdrawal service, when enabled, hears the ATMs' events.
			var events atomic.Pointer[func(string, dclink.Event)]
			s, err := app.NewServer("agent-gateway", cfg.HTTP.Listen, log)
			if err != nil {
				return err
			}
			gw, err := gateway.New(gateway.Options{
				Verifier: app.AgentVerifier{CA: c}, Registry: gateway.NewRegistry(db, nil), ClientCAs: cas, Ping: gc.Ping, Recheck: gc.Recheck,
				Cert:       tls.Certificate{Certificate: chain, PrivateKey: key},
				Registerer: s.Metrics.Registry,
				// Links and refusals are security decisions: audited.
				OnConnect: func(ai gateway.AgentInfo) {
					if _, err := alog.Append(ctx, "agent.connected", map[string]string{"branch": ai.Branch, "cert_serial": ai.CertSerial,
						"remote": ai.Remote, "atms": strings.Join(ai.ATMs, ",")}); err != nil {
						log.Error("audit", "err", err)
					}
				},
				OnRefusal: func(r gateway.Refusal) {
					log.Warn("agent refused", "remote", r.Remote, "branch", r.Branch, "atm", r.ATM, "code", r.Code, "message", r.Message)
					if _, err := alog.Append(ctx, "agent.refused", map[string]string{"branch": r.Branch, "atm": r.ATM,
						"remote": r.Remote, "code": r.Code}); err != nil {
						log.Error("audit", "err", err)
					}
				},
				OnEvent: func(branch string, ev dclink.Event) {
					log.Info("ATM event", "branch", branch, "atm", ev.ATM, "kind", ev.Kind, "txn", ev.Record.Txn, "state", ev.Record.State)
					if f := events.Load(); f != nil {
						(*f)(branch, ev)
					}
				},
			})
			if err != nil {
				return err
			}
			if cfg.Withdrawals.Enabled {
				f, err := app.MountWithdrawals(ctx, cfg, s, db, h, gw, log)
				if err != nil {
					return err
				}
				events.Store(&f)
			}
			ln, err := net.Listen("tcp", gc.Listen)
			if err != nil {
				return fmt.Errorf("agent-gateway: listening on %s: %w", gc.Listen, err)
			}
			s.Mux.Handle("/agent-gateway/", gw.Handler())
			s.Health.Add("database", func(ctx context.Context) error { return db.PingContext(ctx) })
			fmt.Fprintf(cmd.OutOrStdout(), "agent gateway: agents connect to tls://%s; operators' view at %s/agent-gateway/agents\n", ln.Addr(), s.URL())
			if cfg.Withdrawals.Enabled {
				fmt.Fprintf(cmd.OutOrStdout(), "QR withdrawals: %s/atm/withdrawals\n", s.URL())
			}
			gctx, cancel := context.WithCancel(ctx)
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- gw.Serve(gctx, ln) }()
			err = app.ServeAll(ctx, s)
			cancel()
			if gerr := <-errc; err == nil {
				err = gerr
			}
			return err
		},
	}
}

// readChain reads the gateway's PEM chain and checks that its first
// certificate is for key.
func readChain(path string, key crypto.PublicKey) ([][]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent-gateway.cert: %w", err)
	}
	var chain [][]byte
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("agent-gateway.cert %s holds no PEM certificate", path)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, fmt.Errorf("agent-gateway.cert %s: %w", path, err)
	}
	if k, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(key) {
		return nil, fmt.Errorf("agent-gateway.cert %s is not for the key agent-gateway.key names: make them together with egate admin agent gateway-cert", path)
	}
	return chain, nil
}
