package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	gopiv "github.com/go-piv/piv-go/v2/piv"
	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/pivauth"
	"github.com/egate-bank/egate/devices/pinsource"
	"github.com/egate-bank/egate/devices/piv"
)

func init() {
	registerAdmin(newPIVAdminCmd)
	registerToken(newEnrollPIVCmd)
}

// pivSlot parses a slot name: 9a, 9c, 9d, 9e or a retired slot 82…95.
func pivSlot(s string) (gopiv.Slot, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "9a":
		return gopiv.SlotAuthentication, nil
	case "9c":
		return gopiv.SlotSignature, nil
	case "9d":
		return gopiv.SlotKeyManagement, nil
	case "9e":
		return gopiv.SlotCardAuthentication, nil
	}
	if n, err := strconv.ParseUint(s, 16, 8); err == nil {
		if slot, ok := gopiv.RetiredKeyManagementSlot(uint32(n)); ok {
			return slot, nil
		}
	}
	return gopiv.Slot{}, fmt.Errorf("unknown PIV slot %q: want 9a, 9c, 9d, 9e or 82…95", s)
}

// readVendorRoots reads the PEM certificates of the vendor attestation roots.
func readVendorRoots(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, errors.New("--vendor-root is required: the PEM root that attests the card's keys (Yubico's for YubiKeys; the simulator's from egate sim piv --root-out FILE)")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --vendor-root: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--vendor-root %s: %w", path, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("--vendor-root %s holds no PEM certificate", path)
	}
	return pool, nil
}

// openPIVCard opens the card in reader (the only card present when empty).
func openPIVCard(ctx context.Context, drv *piv.Driver, reader string) (*piv.Card, error) {
	if reader == "" {
		cards, err := drv.Cards(ctx)
		if err != nil {
			return nil, err
		}
		switch len(cards) {
		case 0:
			return nil, fmt.Errorf("no PC/SC reader: %w", piv.ErrNoCard)
		case 1:
			reader = cards[0]
		default:
			return nil, fmt.Errorf("several readers (%s): choose one with --reader", strings.Join(cards, ", "))
		}
	}
	return drv.Open(ctx, reader)
}

// pivPINPrompt asks for the card PIN once per call: from a pin-source
// (file:/env:) or, with "prompt", on the terminal without echo, saying how
// many tries are left. The PIN is not kept.
func pivPINPrompt(src string, serial uint32) piv.PINPrompt {
	return func(_ context.Context, retries int) (string, error) {
		if src != "prompt" {
			b, err := pinsource.Read(src)
			if err != nil {
				return "", err
			}
			defer pinsource.Wipe(b)
			return string(b), nil
		}
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return "", fmt.Errorf("no terminal to ask for the PIN of PIV card %d: use --pin-source file:/path or env:NAME", serial)
		}
		defer tty.Close()
		stty := func(arg string) {
			c := exec.Command("stty", arg)
			c.Stdin = tty
			c.Run()
		}
		if retries >= 0 {
			fmt.Fprintf(tty, "PIN for PIV card %d (%d tries left): ", serial, retries)
		} else {
			fmt.Fprintf(tty, "PIN for PIV card %d: ", serial)
		}
		stty("-echo")
		line, err := bufio.NewReader(tty).ReadString('\n')
		stty("echo")
		fmt.Fprintln(tty)
		if err != nil {
			return "", fmt.Errorf("reading the PIN: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
}

func newEnrollPIVCmd() *cobra.Command {
	a := &authFlags{}
	var customer, reader, slotName, vendorRoot, alg, pinPol, touchPol, mgmtSrc, pinSrc string
	var check bool
	cmd := &cobra.Command{
		Use:   "enroll-piv",
		Short: "enroll a PIV token: key generated on the card and attested, certificate from the bank CA stored on the card, card bound to the customer",
		Long: `Generates a key in the card's slot (through pcscd), checks the card's
attestation of it up to --vendor-root (Yubico's root for YubiKeys, the
simulator's from "egate sim piv --root-out FILE"), has the bank's issuing CA (in
the HSM) certify the attested key (no CSR: the CA checks the attestation names
this card and slot), stores the certificate on the card and binds it to the
customer. A key already in the slot is replaced, and its certificate revoked.
Generation needs the card's management key (--management-key-source, hex;
the factory default when empty), not the PIN. --check then proves a login
with the card, asking for the PIN once (a wrong PIN is reported with the tries
left and never retried).`,
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
			slot, err := pivSlot(slotName)
			if err != nil {
				return err
			}
			opt := pivauth.EnrollOptions{Slot: slot}
			switch alg {
			case "ecdsa-p256":
				opt.Algorithm = gopiv.AlgorithmEC256
			case "rsa-2048":
				opt.Algorithm = gopiv.AlgorithmRSA2048
			default:
				return fmt.Errorf("--algorithm %q: want ecdsa-p256 or rsa-2048", alg)
			}
			switch pinPol {
			case "once":
				opt.PINPolicy = gopiv.PINPolicyOnce
			case "always":
				opt.PINPolicy = gopiv.PINPolicyAlways
			default:
				return fmt.Errorf("--pin-policy %q: want once or always", pinPol)
			}
			switch touchPol {
			case "never":
				opt.TouchPolicy = gopiv.TouchPolicyNever
			case "always":
				opt.TouchPolicy = gopiv.TouchPolicyAlways
			case "cached":
				opt.TouchPolicy = gopiv.TouchPolicyCached
			default:
				return fmt.Errorf("--touch-policy %q: want never, always or cached", touchPol)
			}
			roots, err := readVendorRoots(vendorRoot)
			if err != nil {
				return err
			}
			cfg := piv.Config{VendorRoots: roots}
			if mgmtSrc != "" {
				raw, err := pinsource.Read(mgmtSrc)
				if err != nil {
					return err
				}
				key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
				pinsource.Wipe(raw)
				if err != nil {
					return errors.New("--management-key-source: the key is not hexadecimal")
				}
				defer pinsource.Wipe(key)
				cfg.ManagementKey = key
			}
			c, db, done, err := a.openCA(ctx)
			if err != nil {
				return err
			}
			defer done()
			if err := requireCustomer(ctx, db, customer); err != nil {
				return err
			}
			card, err := openPIVCard(ctx, piv.New(cfg), reader)
			if err != nil {
				return err
			}
			defer card.Close()
			svc := pivauth.New(db, c, nil)
			b, err := svc.Enroll(ctx, card, customer, opt)
			if err != nil {
				return err
			}
			if err := op.record(ctx, db, "admin.piv.enroll", map[string]string{"passport_id": customer, "cert_serial": b.CertSerial,
				"card_serial": strconv.FormatUint(uint64(b.CardSerial), 10), "slot": b.Slot}); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "enrolled PIV card %d slot %s (firmware %s, PIN %s, touch %s) for %s: certificate serial %s\n",
				b.CardSerial, b.Slot, b.Firmware, b.PINPolicy, b.TouchPolicy, b.PassportID, b.CertSerial)
			if !check {
				return nil
			}
			f := svc.Factor()
			ch, err := f.Begin(ctx, authn.BeginRequest{PassportID: customer, Purpose: authn.PurposeLogin})
			if err != nil {
				return err
			}
			proof, err := pivauth.Prove(ctx, card, slot, pivPINPrompt(pinSrc, card.Serial()), ch.Data)
			if err != nil {
				return fmt.Errorf("the card is enrolled, but checking it failed: %w", err)
			}
			res, err := f.Verify(ctx, authn.VerifyRequest{PassportID: customer, ChallengeID: ch.ID, Response: proof})
			if err != nil {
				return fmt.Errorf("the card is enrolled, but checking it failed: %w", err)
			}
			fmt.Fprintf(out, "checked: a login proof from the card verifies at level %d (%s)\n", res.Level, res.AMR)
			return nil
		},
	}
	a.add(cmd)
	f := cmd.Flags()
	f.StringVar(&customer, "customer", "", "the customer's passport id")
	f.StringVar(&reader, "reader", "", "PC/SC reader of the card (empty: the only reader present)")
	f.StringVar(&slotName, "slot", "9a", "PIV slot: 9a, 9c, 9d, 9e or a retired slot 82…95")
	f.StringVar(&vendorRoot, "vendor-root", "", "PEM file of the vendor attestation root(s)")
	f.StringVar(&alg, "algorithm", "ecdsa-p256", "ecdsa-p256 or rsa-2048")
	f.StringVar(&pinPol, "pin-policy", "once", "when the key needs the PIN: once (per session) or always")
	f.StringVar(&touchPol, "touch-policy", "never", "when the key needs a touch: never, always or cached")
	f.StringVar(&mgmtSrc, "management-key-source", "", "the card's management key in hex: file:/path or env:NAME (empty: factory default)")
	f.BoolVar(&check, "check", false, "after enrolling, prove a login with the card (asks for the PIN)")
	f.StringVar(&pinSrc, "pin-source", "prompt", "the card PIN for --check: prompt (typed on the terminal), file:/path or env:NAME")
	return cmd
}

func newPIVAdminCmd() *cobra.Command {
	a := &authFlags{}
	cmd := &cobra.Command{Use: "piv", Short: "PIV tokens: list readers, enroll, list a customer's cards, report one lost"}
	a.add(cmd)
	enroll := newEnrollPIVCmd()
	enroll.Use = "enroll"

	readers := &cobra.Command{
		Use:   "readers",
		Short: "list the PC/SC readers and the serial of the PIV card in each",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			drv := piv.New(piv.Config{})
			names, err := drv.Cards(ctx)
			if err != nil {
				return err
			}
			tw := newTable(cmd.OutOrStdout(), "READER\tCARD SERIAL")
			for _, n := range names {
				serial := "(no PIV card)"
				if c, err := drv.Open(ctx, n); err == nil {
					serial = strconv.FormatUint(uint64(c.Serial()), 10)
					c.Close()
				}
				fmt.Fprintf(tw, "%s\t%s\n", n, serial)
			}
			return tw.Flush()
		},
	}

	var customer string
	list := &cobra.Command{
		Use:   "list",
		Short: "list a customer's PIV keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, db, done, err := a.openCA(ctx)
			if err != nil {
				return err
			}
			defer done()
			bs, err := pivauth.New(db, c, nil).Tokens(ctx, customer)
			if err != nil {
				return err
			}
			tw := newTable(cmd.OutOrStdout(), "CERT SERIAL\tCARD\tSLOT\tFIRMWARE\tPIN\tTOUCH\tSTATUS")
			for _, b := range bs {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", b.CertSerial, b.CardSerial, b.Slot, b.Firmware, b.PINPolicy, b.TouchPolicy, b.Status)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&customer, "customer", "", "the customer's passport id")

	var lostCustomer, serial string
	var cardSerial uint32
	lost := &cobra.Command{
		Use:   "report-lost",
		Short: "mark a customer's PIV card (every key on it, or one certificate) lost and revoke; refused from the next request on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if lostCustomer == "" || (serial == "") == (cardSerial == 0) {
				return errors.New("give --customer and one of --card (the card's serial) or --serial (a certificate serial from egate admin piv list)")
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
			svc := pivauth.New(db, c, nil)
			revoked := []string{serial}
			if serial != "" {
				err = svc.ReportLost(ctx, lostCustomer, serial)
			} else {
				revoked, err = svc.ReportCardLost(ctx, lostCustomer, cardSerial)
			}
			if err != nil {
				return err
			}
			if err := op.record(ctx, db, "admin.piv.report-lost", map[string]string{"passport_id": lostCustomer, "cert_serials": strings.Join(revoked, ",")}); err != nil {
				return err
			}
			for _, s := range revoked {
				fmt.Fprintf(cmd.OutOrStdout(), "PIV certificate %s of %s reported lost; revoked\n", s, lostCustomer)
			}
			return nil
		},
	}
	lost.Flags().StringVar(&lostCustomer, "customer", "", "the customer's passport id")
	lost.Flags().Uint32Var(&cardSerial, "card", 0, "the card's serial: every active key on it")
	lost.Flags().StringVar(&serial, "serial", "", "one certificate serial (hex)")
	cmd.AddCommand(enroll, readers, list, lost)
	return cmd
}
