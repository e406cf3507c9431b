package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestVerifyAgent: an agent certificate verifies as its branch's; a
// customer's token certificate and the gateway's server certificate of the
// same CA do not; a revoked agent certificate is refused at once.
func TestVerifyAgent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := newCA(t, db)
		ak := newKey(t)
		agent, err := c.Issue(ctx, IssueRequest{Kind: KindAgent, Owner: "BR-0101", CSR: csrFor(t, ak)})
		if err != nil {
			t.Fatal(err)
		}
		tk := newKey(t)
		token, err := c.Issue(ctx, IssueRequest{Kind: KindToken, Owner: "alice", CSR: csrFor(t, tk), TokenKey: tk.Public()})
		if err != nil {
			t.Fatal(err)
		}
		gw, err := c.IssueGateway(ctx, csrFor(t, newKey(t)), []string{"dc.bank.example", "10.0.0.7"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(gw.DNSNames) != 1 || len(gw.IPAddresses) != 1 || len(gw.ExtKeyUsage) != 1 || gw.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
			t.Fatalf("gateway certificate: DNS %v IP %v EKU %v", gw.DNSNames, gw.IPAddresses, gw.ExtKeyUsage)
		}
		tests := []struct {
			name string
			cert *x509.Certificate
			want error
		}{
			{"agent", agent, nil},
			{"customer token", token, ErrNotAgentCert},
			{"gateway server certificate", gw, ErrNotIssuedHere},
		}
		for _, tc := range tests {
			branch, err := c.VerifyAgent(ctx, tc.cert)
			if !errors.Is(err, tc.want) || (tc.want == nil && (err != nil || branch != "BR-0101")) {
				t.Fatalf("%s: %q, %v; want %v", tc.name, branch, err, tc.want)
			}
		}
		if err := c.Revoke(ctx, SerialHex(agent.SerialNumber), ReasonKeyCompromise); err != nil {
			t.Fatal(err)
		}
		if _, err := c.VerifyAgent(ctx, agent); !errors.Is(err, ErrCertRevoked) {
			t.Fatalf("revoked agent: %v", err)
		}
		if _, err := c.IssueGateway(ctx, csrFor(t, newKey(t)), []string{"bad host/x"}, 0); !errors.Is(err, ErrBadCSR) {
			t.Fatalf("bad host: %v", err)
		}
	})
}
