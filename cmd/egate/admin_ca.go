package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/ca"
	"github.com/egate-bank/egate/devices/hsm"
)

func init() { registerAdmin(newCACmd) }

func newCACmd() *cobra.Command {
	a := &authFlags{}
	cmd := &cobra.Command{Use: "ca", Short: "the bank CA: init, export the root, issue agent certificates, revoke, CRL"}
	a.add(cmd)

	var org, outDir string
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "create the root and issuing CA keys in the HSM (labels egate-ca-root, egate-ca-issuing) and their certificates",
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
			for _, l := range []string{ca.RootKeyLabel, ca.IssuingKeyLabel} {
				if _, _, err := h.EnsureKey(ctx, hsm.KeySpec{Label: l, Type: hsm.KeyECDSAP256}); err != nil {
					return err
				}
			}
			rootKey, err := h.Signer(ctx, ca.RootKeyLabel)
			if err != nil {
				return err
			}
			issKey, err := h.Signer(ctx, ca.IssuingKeyLabel)
			if err != nil {
				return err
			}
			c, err := ca.Init(ctx, db, rootKey, issKey, ca.Options{Organization: org}, nil)
			if err != nil {
				return err
			}
			if err := op.record(ctx, db, "admin.ca.init", map[string]string{"root_serial": ca.SerialHex(c.Root().SerialNumber),
				"issuing_serial": ca.SerialHex(c.Issuing().SerialNumber)}); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "root CA    %s serial %s, until %s\n", c.Root().Subject.CommonName, ca.SerialHex(c.Root().SerialNumber), c.Root().NotAfter.Format(time.DateOnly))
			fmt.Fprintf(out, "issuing CA %s serial %s, until %s\n", c.Issuing().Subject.CommonName, ca.SerialHex(c.Issuing().SerialNumber), c.Issuing().NotAfter.Format(time.DateOnly))
			if outDir != "" {
				if err := writePEMs(outDir, c); err != nil {
					return err
				}
				fmt.Fprintf(out, "wrote %s and %s\n", filepath.Join(outDir, "root.pem"), filepath.Join(outDir, "issuing.pem"))
			}
			return nil
		},
	}
	initCmd.Flags().StringVar(&org, "org", "egate Bank", "organization name in the CA certificates")
	initCmd.Flags().StringVar(&outDir, "out-dir", "", "also write root.pem and issuing.pem here")

	exportCmd := &cobra.Command{
		Use:   "export-root",
		Short: "print the root CA certificate (PEM); with --issuing also the issuing CA's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, done, err := a.loadCA(ctx)
			if err != nil {
				return err
			}
			defer done()
			cmd.OutOrStdout().Write(c.RootPEM())
			if v, _ := cmd.Flags().GetBool("issuing"); v {
				cmd.OutOrStdout().Write(c.IssuingPEM())
			}
			return nil
		},
	}
	exportCmd.Flags().Bool("issuing", false, "also print the issuing CA certificate")

	var csrPath, agentID string
	agentCmd := &cobra.Command{
		Use:   "issue-agent",
		Short: "issue a branch agent's mutual-TLS client certificate from its CSR (PEM or DER); prints the certificate PEM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			raw, err := os.ReadFile(csrPath)
			if err != nil {
				return err
			}
			if b, _ := pem.Decode(raw); b != nil {
				raw = b.Bytes
			}
			c, db, done, err := a.openCA(ctx)
			if err != nil {
				return err
			}
			defer done()
			cert, err := c.Issue(ctx, ca.IssueRequest{Kind: ca.KindAgent, Owner: agentID, CSR: raw})
			if err != nil {
				return err
			}
			if err := op.record(ctx, db, "admin.ca.issue-agent", map[string]string{"agent": agentID, "cert_serial": ca.SerialHex(cert.SerialNumber)}); err != nil {
				return err
			}
			cmd.OutOrStdout().Write(ca.CertPEM(cert))
			return nil
		},
	}
	agentCmd.Flags().StringVar(&csrPath, "csr", "", "the agent's CSR file")
	agentCmd.Flags().StringVar(&agentID, "agent", "", "the agent's id (certificate CN)")
	agentCmd.MarkFlagRequired("csr")
	agentCmd.MarkFlagRequired("agent")

	var reason int
	revokeCmd := &cobra.Command{
		Use:   "revoke SERIAL",
		Short: "revoke a certificate by its serial (hex); the next CRL lists it and verification refuses it at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			c, err := ca.Load(ctx, db, nil, nil)
			if err != nil {
				return err
			}
			if err := c.Revoke(ctx, args[0], reason); err != nil {
				return err
			}
			if err := op.record(ctx, db, "admin.ca.revoke", map[string]string{"cert_serial": args[0], "reason": strconv.Itoa(reason)}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	}
	revokeCmd.Flags().IntVar(&reason, "reason", ca.ReasonKeyCompromise, "RFC 5280 reason code (1 key compromise, 4 superseded, 5 cessation)")

	listCmd := &cobra.Command{
		Use:   "list",
		Short: "list issued certificates (of --owner)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, done, err := a.loadCA(ctx)
			if err != nil {
				return err
			}
			defer done()
			owner, _ := cmd.Flags().GetString("owner")
			list, err := c.List(ctx, owner)
			if err != nil {
				return err
			}
			tw := newTable(cmd.OutOrStdout(), "SERIAL\tKIND\tOWNER\tNOT AFTER\tREVOKED")
			for _, i := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", i.Serial, i.Kind, i.Owner, i.NotAfter.Format(time.DateOnly), i.Revoked)
			}
			return tw.Flush()
		},
	}
	listCmd.Flags().String("owner", "", "passport id or agent id")

	var crlOut, crlFormat string
	crlCmd := &cobra.Command{
		Use:   "crl",
		Short: "write the current CRL signed by the issuing CA (PEM on stdout, DER to a file, as served over HTTP)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			toStdout := crlOut == "" || crlOut == "-"
			format := crlFormat
			switch format {
			case "":
				format = "der"
				if toStdout {
					format = "pem"
				}
			case "der", "pem":
			default:
				return fmt.Errorf("--format %q: use der or pem", format)
			}
			c, _, done, err := a.openCA(ctx)
			if err != nil {
				return err
			}
			defer done()
			der, err := c.CRL(ctx)
			if err != nil {
				return err
			}
			if format == "pem" {
				der = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
			}
			if toStdout {
				_, err = cmd.OutOrStdout().Write(der)
				return err
			}
			return os.WriteFile(crlOut, der, 0o644)
		},
	}
	crlCmd.Flags().StringVarP(&crlOut, "out", "o", "", "file to write (stdout when empty)")
	crlCmd.Flags().StringVar(&crlFormat, "format", "", "der or pem (default: pem on stdout, der to a file)")

	var listen string
	serveCmd := &cobra.Command{
		Use:   "serve",
		Short: "serve GET /ca/crl, /ca/root.pem and /ca/issuing.pem over HTTP",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, _, done, err := a.openCA(ctx)
			if err != nil {
				return err
			}
			defer done()
			srv := &http.Server{Addr: listen, Handler: c.Handler(), ReadHeaderTimeout: 5 * time.Second}
			go func() { <-ctx.Done(); srv.Close() }()
			fmt.Fprintf(cmd.ErrOrStderr(), "CA endpoints on http://%s/ca/crl and /ca/root.pem\n", listen)
			if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	serveCmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8089", "address to listen on")

	cmd.AddCommand(initCmd, exportCmd, agentCmd, revokeCmd, listCmd, crlCmd, serveCmd)
	return cmd
}

func writePEMs(dir string, c *ca.CA) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, cert := range map[string]*x509.Certificate{"root.pem": c.Root(), "issuing.pem": c.Issuing()} {
		if err := os.WriteFile(filepath.Join(dir, name), ca.CertPEM(cert), 0o644); err != nil {
			return err
		}
	}
	return nil
}
