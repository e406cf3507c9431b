package demo

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/authsvc/audit"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/devices/agent"
	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/internal/app"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/simulators/softhsm"
)

// The demo's branch: its agent's token, branch id and ATM.
const (
	DemoBranch      = "BR-DEMO"
	DemoATM         = "ATM-DEMO-01"
	agentTokenLabel = "egate-demo-agent"
)

// AgentToken makes (first start) or finds the demo agent's own SoftHSM2
// token beside the HSM's (it must exist before the module is loaded) and
// returns the agent.token section that names its key. Its PINs are random,
// in files readable by the owner only.
func AgentToken(ctx context.Context, varDir string) (agent.TokenConfig, error) {
	dir, err := softhsm.New(filepath.Join(varDir, "softhsm"))
	if err != nil {
		return agent.TokenConfig{}, err
	}
	pinFile := filepath.Join(varDir, "agent-token-pin")
	pin, err := readOrMakePIN(pinFile)
	if err != nil {
		return agent.TokenConfig{}, err
	}
	so, err := readOrMakePIN(filepath.Join(varDir, "agent-token-so-pin"))
	if err != nil {
		return agent.TokenConfig{}, err
	}
	if _, _, err := dir.InitToken(ctx, agentTokenLabel, so, pin); err != nil {
		return agent.TokenConfig{}, err
	}
	abs, _ := filepath.Abs(pinFile)
	return agent.TokenConfig{Module: dir.Module, Key: "pkcs11:token=" + agentTokenLabel + ";object=egate-agent", PINSource: "file:" + abs}, nil
}

// Link is the demo's agent ↔ data-centre link: an agent gateway on a
// loopback port and the branch agent dialling it over mutual TLS with the
// key on its token, as in production, inside the one process.
type Link struct {
	Gateway *gateway.Gateway
	Uplink  *agent.Uplink
	Addr    string
	tok     *agent.Token
	cancel  context.CancelFunc
	done    chan struct{}
}

// StartLink enrolls the demo agent on the first start (key on its token,
// certificate from the bank CA), makes the gateway's TLS key in the HSM and
// its certificate, pins the demo ATM to the demo branch, and starts both
// ends.
// onEvent, when set, hears the ATMs' events (the withdrawal service's Event).
func StartLink(ctx context.Context, varDir string, db *store.DB, h *hsm.Service, c *ca.CA, ag *agent.Agent, tc agent.TokenConfig, reg prometheus.Registerer,
	onEvent func(branch string, ev dclink.Event)) (*Link, error) {
	if c == nil {
		return nil, errors.New("the demo's bank CA is not loaded")
	}
	if _, _, err := h.EnsureKey(ctx, hsm.KeySpec{Label: gateway.DefaultKeyLabel, Type: hsm.KeyECDSAP256}); err != nil {
		return nil, err
	}
	gwKey, err := h.Signer(ctx, gateway.DefaultKeyLabel)
	if err != nil {
		return nil, err
	}
	gwCert, err := gatewayCert(ctx, filepath.Join(varDir, "agent-gateway.pem"), c, gwKey)
	if err != nil {
		return nil, err
	}
	tok, err := agent.OpenToken(ctx, tc)
	if err != nil {
		return nil, err
	}
	l := &Link{tok: tok, done: make(chan struct{})}
	fail := func(err error) (*Link, error) { tok.Close(); return nil, err }
	cert, err := tok.TLSCertificate()
	if errors.Is(err, agent.ErrNotEnrolled) {
		if _, err = tok.Enroll(ctx, DemoBranch, func(ctx context.Context, csr []byte) (*x509.Certificate, error) {
			return c.Issue(ctx, ca.IssueRequest{Kind: ca.KindAgent, Owner: DemoBranch, CSR: csr})
		}); err != nil {
			return fail(err)
		}
		cert, err = tok.TLSCertificate()
	}
	if err != nil {
		return fail(err)
	}
	reg2 := gateway.NewRegistry(db, nil)
	if err := reg2.Assign(ctx, DemoBranch, DemoATM); err != nil {
		return fail(err)
	}
	rootPEM := filepath.Join(varDir, "bank-root.pem")
	if err := os.WriteFile(rootPEM, c.RootPEM(), 0o644); err != nil {
		return fail(err)
	}
	cas := x509.NewCertPool()
	cas.AddCert(c.Root())
	cas.AddCert(c.Issuing())
	alog := audit.New(db, nil)
	l.Gateway, err = gateway.New(gateway.Options{Verifier: app.AgentVerifier{CA: c}, Registry: reg2, ClientCAs: cas, Registerer: reg,
		OnConnect: func(ai gateway.AgentInfo) {
			alog.Append(context.WithoutCancel(ctx), "agent.connected", map[string]string{"branch": ai.Branch, "cert_serial": ai.CertSerial, "remote": ai.Remote, "atms": strings.Join(ai.ATMs, ",")})
		},
		OnEvent: onEvent,
		OnRefusal: func(r gateway.Refusal) {
			alog.Append(context.WithoutCancel(ctx), "agent.refused", map[string]string{"branch": r.Branch, "atm": r.ATM, "remote": r.Remote, "code": r.Code})
		},
		Cert: tls.Certificate{Certificate: [][]byte{gwCert.Raw, c.Issuing().Raw}, PrivateKey: gwKey, Leaf: gwCert}})
	if err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	l.Addr = ln.Addr().String()
	acfg := agent.Config{Branch: DemoBranch, DatacentreURL: "tls://" + l.Addr, DatacentreCA: rootPEM, Token: tc}
	conf, err := acfg.ClientTLS(cert)
	if err != nil {
		ln.Close()
		return fail(err)
	}
	l.Uplink, err = agent.NewUplink(ag, acfg.DatacentreURL, agent.UplinkOptions{Branch: DemoBranch, Dial: agent.DialTLS(l.Addr, conf),
		ReconnectMin: 100 * time.Millisecond, ReconnectMax: 5 * time.Second, Registerer: reg})
	if err != nil {
		ln.Close()
		return fail(err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	served := make(chan struct{})
	go func() { defer close(served); l.Gateway.Serve(rctx, ln) }()
	go func() { defer close(l.done); l.Uplink.Run(rctx); <-served }()
	// Start serving once the link is up (or say why it is not in /readyz).
	select {
	case <-l.Uplink.FirstUp():
	case <-time.After(15 * time.Second):
	case <-ctx.Done():
	}
	return l, nil
}

// Close stops both ends and closes the agent's token.
func (l *Link) Close() {
	l.cancel()
	<-l.done
	l.tok.Close()
}

// gatewayCert reuses the gateway certificate in path when it is for key and
// valid for a while yet; otherwise the bank CA issues a new one for
// 127.0.0.1, written there.
func gatewayCert(ctx context.Context, path string, c *ca.CA, key crypto.Signer) (*x509.Certificate, error) {
	if raw, err := os.ReadFile(path); err == nil {
		if b, _ := pem.Decode(raw); b != nil {
			if cert, err := x509.ParseCertificate(b.Bytes); err == nil {
				pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
				if ok && pub.Equal(key.Public()) && time.Now().Add(24*time.Hour).Before(cert.NotAfter) && cert.CheckSignatureFrom(c.Issuing()) == nil {
					return cert, nil
				}
			}
		}
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "127.0.0.1"}}, key)
	if err != nil {
		return nil, fmt.Errorf("the gateway's CSR: %w", err)
	}
	cert, err := c.IssueGateway(ctx, csr, []string{"127.0.0.1"}, 0)
	if err != nil {
		return nil, err
	}
	return cert, os.WriteFile(path, append(ca.CertPEM(cert), c.IssuingPEM()...), 0o644)
}
