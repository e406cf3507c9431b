package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/atm/gateway"
	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/devices/agent"
	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/pkcs11uri"
)

func init() { registerAdmin(newAgentAdminCmd) }

func newAgentAdminCmd() *cobra.Command {
	a := &authFlags{}
	cmd := &cobra.Command{Use: "agent", Short: "branch agents: enroll an agent's token, pin ATMs to branches, the gateway's TLS certificate"}
	a.add(cmd)

	var branch, module, tokenLabel, keyLabel, pinSrc, certOut, caOut string
	enrollCmd := &cobra.Command{
		Use:   "enroll --branch ID --token-module LIB --token-label LABEL --pin-source SRC",
		Short: "make the agent's key on its PKCS#11 token, have the bank CA issue its client certificate, write it to the token",
		Long: `Run where the bank CA is (it needs the database and the CA's HSM), with the
agent's token plugged in. The key is generated on the token (P-256, not
extractable) under --key-label; the CSR is signed by that key; the issuing CA
signs a client certificate with CN = the branch id; the certificate is written
to the token under the key's id and label. The command prints the agent.* keys
to put in the agent's config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := agent.CheckBranch(branch); err != nil {
				return err
			}
			tc := agent.TokenConfig{Module: module, PINSource: pinSrc,
				Key: (&pkcs11uri.URI{Token: tokenLabel, Object: keyLabel}).String()}
			if err := tc.Validate(); err != nil {
				return err
			}
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			c, db, done, err := a.openCA(ctx)
			if err != nil {
				return err
			}
			defer done()
			tok, err := agent.OpenToken(ctx, tc)
			if err != nil {
				return err
			}
			defer tok.Close()
			cert, err := tok.Enroll(ctx, branch, func(ctx context.Context, csr []byte) (*x509.Certificate, error) {
				return c.Issue(ctx, ca.IssueRequest{Kind: ca.KindAgent, Owner: branch, CSR: csr})
			})
			if err != nil {
				return err
			}
			if err := op.record(ctx, db, "admin.agent.enroll", map[string]string{"branch": branch, "cert_serial": ca.SerialHex(cert.SerialNumber), "token": tokenLabel, "key": tok.URI()}); err != nil {
				return err
			}
			if certOut != "" {
				if err := os.WriteFile(certOut, ca.CertPEM(cert), 0o644); err != nil {
					return err
				}
			}
			if caOut != "" {
				if err := os.WriteFile(caOut, c.RootPEM(), 0o644); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "agent certificate for branch %s: serial %s, until %s (key and certificate on token %q)\n",
				branch, ca.SerialHex(cert.SerialNumber), cert.NotAfter.Format(time.DateOnly), tokenLabel)
			fmt.Fprintf(out, "agent:\n  branch: %s\n  datacentre-url: tls://<gateway host>:7443\n  datacentre-ca: %s\n  token:\n    module: %s\n    key: %q\n    pin-source: %s\n",
				branch, orDefault(caOut, "<root.pem: egate admin ca export-root>"), module, tok.URI(), pinSrc)
			return nil
		},
	}
	ef := enrollCmd.Flags()
	ef.StringVar(&branch, "branch", "", "the branch id (the certificate's CN; pin its ATMs with assign)")
	ef.StringVar(&module, "token-module", "", "the agent token's PKCS#11 library")
	ef.StringVar(&tokenLabel, "token-label", "", "the agent token's label")
	ef.StringVar(&keyLabel, "key-label", "egate-agent", "label of the key and certificate objects on the token")
	ef.StringVar(&pinSrc, "pin-source", "", "where the token's user PIN is: file:/path (mode 0600) or env:NAME")
	ef.StringVar(&certOut, "cert-out", "", "also write the certificate (PEM) here")
	ef.StringVar(&caOut, "ca-out", "", "write the bank root CA (PEM) here, for agent.datacentre-ca")
	for _, f := range []string{"branch", "token-module", "token-label", "pin-source"} {
		enrollCmd.MarkFlagRequired(f)
	}

	var atmIDs []string
	assignCmd := &cobra.Command{
		Use:   "assign --branch ID --atm ID [--atm ID …]",
		Short: "pin ATMs to a branch: only that branch's agent may drive them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			db, err := a.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			reg := gateway.NewRegistry(db, nil)
			for _, id := range atmIDs {
				if err := reg.Assign(ctx, branch, id); err != nil {
					return err
				}
				if err := op.record(ctx, db, "admin.agent.assign", map[string]string{"branch": branch, "atm": id}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "ATM %s pinned to branch %s\n", id, branch)
			}
			return nil
		},
	}
	assignCmd.Flags().StringVar(&branch, "branch", "", "the branch id")
	assignCmd.Flags().StringSliceVar(&atmIDs, "atm", nil, "ATM id (repeatable)")
	assignCmd.MarkFlagRequired("branch")
	assignCmd.MarkFlagRequired("atm")

	unassignCmd := &cobra.Command{
		Use:   "unassign --atm ID",
		Short: "remove an ATM's pin (its branch's agent gets no more commands for it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			db, err := a.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			reg := gateway.NewRegistry(db, nil)
			for _, id := range atmIDs {
				was, _ := reg.Branch(ctx, id)
				if err := reg.Unassign(ctx, id); err != nil {
					return err
				}
				if err := op.record(ctx, db, "admin.agent.unassign", map[string]string{"branch": was, "atm": id}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "ATM %s unpinned\n", id)
			}
			return nil
		},
	}
	unassignCmd.Flags().StringSliceVar(&atmIDs, "atm", nil, "ATM id (repeatable)")
	unassignCmd.MarkFlagRequired("atm")

	listCmd := &cobra.Command{
		Use:   "list [--branch ID]",
		Short: "the ATMs pinned to branches",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			db, err := a.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			pins, err := gateway.NewRegistry(db, nil).List(ctx, branch)
			if err != nil {
				return err
			}
			tw := newTable(cmd.OutOrStdout(), "ATM\tBRANCH\tASSIGNED")
			for _, p := range pins {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ATM, p.Branch, p.Assigned.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	listCmd.Flags().StringVar(&branch, "branch", "", "only this branch")

	var hosts []string
	var gwKey, gwOut string
	gwCmd := &cobra.Command{
		Use:   "gateway-cert --host NAME|IP [--host …] --out FILE",
		Short: "make the agent gateway's TLS key in the HSM (if missing) and have the bank CA issue its server certificate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			db, h, done, err := a.openDBHSM(ctx)
			if err != nil {
				return err
			}
			defer done()
			if _, _, err := h.EnsureKey(ctx, hsm.KeySpec{Label: gwKey, Type: hsm.KeyECDSAP256}); err != nil {
				return err
			}
			key, err := h.Signer(ctx, gwKey)
			if err != nil {
				return err
			}
			iss, err := h.Signer(ctx, ca.IssuingKeyLabel)
			if err != nil {
				return err
			}
			c, err := ca.Load(ctx, db, iss, nil)
			if err != nil {
				return err
			}
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: hosts[0]}}, key)
			if err != nil {
				return fmt.Errorf("building the gateway's CSR in the HSM: %w", err)
			}
			cert, err := c.IssueGateway(ctx, csr, hosts, 0)
			if err != nil {
				return err
			}
			if err := os.WriteFile(gwOut, append(ca.CertPEM(cert), c.IssuingPEM()...), 0o644); err != nil {
				return err
			}
			if err := op.record(ctx, db, "admin.agent.gateway-cert", map[string]string{"hosts": strings.Join(hosts, ","), "cert_serial": ca.SerialHex(cert.SerialNumber), "key": key.URI()}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "gateway certificate for %v: serial %s, until %s, key %s in the HSM\nwrote %s (certificate + issuing CA): set agent-gateway.cert to it\n",
				hosts, ca.SerialHex(cert.SerialNumber), cert.NotAfter.Format(time.DateOnly), key.URI(), gwOut)
			return nil
		},
	}
	gwCmd.Flags().StringSliceVar(&hosts, "host", nil, "DNS name or IP address the agents dial (repeatable; the first is the CN)")
	gwCmd.Flags().StringVar(&gwKey, "key", gateway.DefaultKeyLabel, "HSM label of the gateway's TLS key")
	gwCmd.Flags().StringVar(&gwOut, "out", "", "PEM file to write (the certificate, then the issuing CA)")
	gwCmd.MarkFlagRequired("host")
	gwCmd.MarkFlagRequired("out")

	cmd.AddCommand(enrollCmd, assignCmd, unassignCmd, listCmd, gwCmd)
	return cmd
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
