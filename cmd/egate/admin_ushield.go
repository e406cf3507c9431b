package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/ushield"
	"github.com/egate-bank/egate/devices/pinsource"
	"github.com/egate-bank/egate/devices/pkcs11token"
)

func init() {
	registerAdmin(newUShieldAdminCmd)
	registerToken(newEnrollUShieldCmd)
}

// tokenPIN asks for a U-shield's PIN: from a pin-source (file:/env:) or, with
// "prompt", on the terminal without echo. The PIN is never stored; the caller
// wipes it after the one login attempt.
func tokenPIN(src, label string) ([]byte, error) {
	if src != "prompt" {
		return pinsource.Read(src)
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("no terminal to ask for the PIN of token %q: use --pin-source file:/path or env:NAME", label)
	}
	defer tty.Close()
	stty := func(arg string) {
		c := exec.Command("stty", arg)
		c.Stdin = tty
		c.Run()
	}
	fmt.Fprintf(tty, "PIN for U-shield %q: ", label)
	stty("-echo")
	line, err := bufio.NewReader(tty).ReadBytes('\n')
	stty("echo")
	fmt.Fprintln(tty)
	if err != nil {
		return nil, fmt.Errorf("reading the PIN: %w", err)
	}
	return []byte(strings.TrimRight(string(line), "\r\n")), nil
}

// openUShield opens the vendor module and the token and logs in once.
func openUShield(ctx context.Context, module, label, pinSrc string) (*pkcs11token.Module, *pkcs11token.Token, error) {
	m, err := pkcs11token.Open(module)
	if err != nil {
		return nil, nil, err
	}
	tok, err := m.OpenToken(ctx, label)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	pin, err := tokenPIN(pinSrc, tok.Info().Label)
	if err != nil {
		tok.Close()
		m.Close()
		return nil, nil, err
	}
	err = tok.Login(ctx, pin)
	pinsource.Wipe(pin)
	if err != nil {
		tok.Close()
		m.Close()
		return nil, nil, err
	}
	return m, tok, nil
}

func newEnrollUShieldCmd() *cobra.Command {
	a := &authFlags{}
	var module, label, customer, pinSrc, alg, objLabel string
	var gen int
	cmd := &cobra.Command{
		Use:   "enroll-ushield",
		Short: "enroll a U-shield: key generated on the token, certificate from the bank CA written back, token bound to the customer",
		Long: `Generates a non-extractable key on the customer's token (through the
vendor's PKCS#11 module), builds a CSR signed by it, has the bank's issuing CA
(in the HSM) sign the certificate, writes the certificate back to the token
under the key's CKA_ID, and binds the token to the customer. The customer types
the token PIN (--pin-source prompt); a wrong PIN is reported with the token's
retry status and never retried.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if customer == "" {
				return errors.New("--customer is required")
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
			if err := requireCustomer(ctx, db, customer); err != nil {
				return err
			}
			m, tok, err := openUShield(ctx, module, label, pinSrc)
			if err != nil {
				return err
			}
			defer m.Close()
			defer tok.Close()
			svc := ushield.New(db, c, nil)
			b, err := svc.Enroll(ctx, tok, customer, gen, pkcs11token.EnrollOptions{Algorithm: pkcs11token.Algorithm(alg), Label: objLabel})
			if err != nil {
				return err
			}
			if err := op.record(ctx, db, "admin.ushield.enroll", map[string]string{"passport_id": customer, "cert_serial": b.CertSerial,
				"token_serial": b.TokenSerial, "generation": strconv.Itoa(b.Generation)}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled U-shield %q (serial %s, generation %d) for %s: key id %s, certificate serial %s\n",
				b.TokenLabel, b.TokenSerial, b.Generation, b.PassportID, hex.EncodeToString(b.KeyID), b.CertSerial)
			return nil
		},
	}
	a.add(cmd)
	f := cmd.Flags()
	f.StringVar(&module, "module", "", "the token vendor's PKCS#11 library")
	f.StringVar(&label, "token", "", "the token's label (empty: the only token present)")
	f.StringVar(&customer, "customer", "", "the customer's passport id")
	f.StringVar(&pinSrc, "pin-source", "prompt", "the token PIN: prompt (typed on the terminal), file:/path or env:NAME")
	f.IntVar(&gen, "generation", 1, "1 (plain token) or 2 (token with display and confirm button)")
	f.StringVar(&alg, "algorithm", string(pkcs11token.ECDSAP256), "ecdsa-p256 or rsa-2048")
	f.StringVar(&objLabel, "label", "egate U-shield", "label of the key and certificate objects on the token")
	cmd.MarkFlagRequired("module")
	return cmd
}

func newUShieldAdminCmd() *cobra.Command {
	a := &authFlags{}
	cmd := &cobra.Command{Use: "ushield", Short: "U-shields: list a module's tokens, enroll, list a customer's tokens, report one lost"}
	a.add(cmd)
	enroll := newEnrollUShieldCmd()
	enroll.Use = "enroll"
	var module string
	slots := &cobra.Command{
		Use:   "slots",
		Short: "list the slots and tokens of a vendor PKCS#11 module",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := pkcs11token.Open(module)
			if err != nil {
				return err
			}
			defer m.Close()
			toks, err := m.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			tw := newTable(cmd.OutOrStdout(), "SLOT\tLABEL\tMANUFACTURER\tMODEL\tSERIAL\tPIN")
			for _, t := range toks {
				if !t.Initialized {
					t.Label = "(not initialised)"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", t.Slot, t.Label, t.Manufacturer, t.Model, t.Serial, t.PIN)
			}
			return tw.Flush()
		},
	}
	slots.Flags().StringVar(&module, "module", "", "the token vendor's PKCS#11 library")
	slots.MarkFlagRequired("module")

	var customer, serial string
	list := &cobra.Command{
		Use:   "list",
		Short: "list a customer's U-shields",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, db, done, err := a.openCA(ctx)
			if err != nil {
				return err
			}
			defer done()
			bs, err := ushield.New(db, c, nil).Tokens(ctx, customer)
			if err != nil {
				return err
			}
			tw := newTable(cmd.OutOrStdout(), "CERT SERIAL\tGEN\tTOKEN\tTOKEN SERIAL\tKEY ID\tLOST")
			for _, b := range bs {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%x\t%v\n", b.CertSerial, b.Generation, b.TokenLabel, b.TokenSerial, b.KeyID, b.Lost)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&customer, "customer", "", "the customer's passport id")
	lost := &cobra.Command{
		Use:   "report-lost",
		Short: "mark a customer's U-shield lost and revoke its certificate (refused from the next request on)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			c, db, done, err := a.openCA(ctx)
			if err != nil {
				return err
			}
			defer done()
			if err := ushield.New(db, c, nil).ReportLost(ctx, customer, serial); err != nil {
				return err
			}
			if err := op.record(ctx, db, "admin.ushield.report-lost", map[string]string{"passport_id": customer, "cert_serial": serial}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "U-shield %s of %s reported lost; certificate revoked\n", serial, customer)
			return nil
		},
	}
	lost.Flags().StringVar(&customer, "customer", "", "the customer's passport id")
	lost.Flags().StringVar(&serial, "serial", "", "the certificate serial (hex) from egate admin ushield list")
	cmd.AddCommand(enroll, slots, list, lost)
	return cmd
}
