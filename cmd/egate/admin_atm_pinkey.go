package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/devices/hsm"
	"github.com/egate-bank/egate/devices/pinsource"
)

// newPINKeyCmd is egate admin atm pin-key: an ATM PIN pad's key into the HSM.
func newPINKeyCmd() *cobra.Command {
	var a authFlags
	var atmID, keySrc string
	cmd := &cobra.Command{
		Use:   "pin-key --atm ID --key-source file:/path|env:NAME",
		Short: "load an ATM PIN pad's AES key into the HSM (the key ceremony's host half; audited)",
		Long: `Loads the AES key (32, 48 or 64 hex digits) that was loaded into the ATM's PIN pad
into the HSM as egate-atm-tpk-<ATM>: sensitive, never extractable, decrypt only. The
data centre opens the PIN pad's ISO 9564 format 4 blocks with it (the withdrawal PIN).
--key-source is a file only its owner reads (mode 0600) or an environment variable;
the key is never printed. An ATM that has a key keeps it: delete the object first to
replace it. Audited as admin.atm.pin-key with the operator.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if strings.TrimSpace(atmID) == "" || keySrc == "" {
				return errors.New("--atm and --key-source are required; nothing was changed")
			}
			raw, err := pinsource.Read(keySrc)
			if err != nil {
				return fmt.Errorf("--key-source: %w; nothing was changed", err)
			}
			key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
			clear(raw)
			defer clear(key)
			if err != nil || (len(key) != 16 && len(key) != 24 && len(key) != 32) {
				return errors.New("--key-source: want an AES key as 32, 48 or 64 hex digits; nothing was changed")
			}
			op, err := whoRuns(cmd)
			if err != nil {
				return err
			}
			db, h, done, err := a.openDBHSM(ctx)
			if err != nil {
				return err
			}
			defer done()
			k, err := h.ImportPINKey(ctx, hsm.PINKeyLabel(atmID), key)
			if err != nil {
				return err
			}
			if err := op.record(ctx, db, "admin.atm.pin-key", map[string]string{"atm": atmID, "key": k.URI}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ATM %s: PIN pad key %s\n", atmID, k.URI)
			return nil
		},
	}
	a.add(cmd)
	cmd.Flags().StringVar(&atmID, "atm", "", "the ATM")
	cmd.Flags().StringVar(&keySrc, "key-source", "", "the PIN pad's AES key in hex: file:/path or env:NAME")
	return cmd
}
