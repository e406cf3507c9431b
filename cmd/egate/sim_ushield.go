package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	simushield "github.com/egate-bank/egate/simulators/ushield"
)

func init() { registerSim(newSimUShieldCmd) }

func newSimUShieldCmd() *cobra.Command {
	var module, label, pinSrc, keyID, listen, auto string
	cmd := &cobra.Command{
		Use:   "ushield",
		Short: "a 2nd-generation U-shield: shows what it is asked to sign and signs with the token key after confirm",
		Long: `Runs a 2nd-generation U-shield over a real PKCS#11 token (SoftHSM2 in
development) enrolled with egate admin token enroll-ushield --generation 2.
POST the challenge bytes to /sign; the text appears on this terminal and on
the page at /, with Confirm and Cancel buttons; the answer is the proof to
give to egate. --auto confirm|cancel decides by itself (tests); POST
/confirm?id= or /cancel?id= press the buttons from a script.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			switch auto {
			case simushield.AutoNone, simushield.AutoConfirm, simushield.AutoCancel:
			default:
				return fmt.Errorf("--auto %q: want confirm or cancel (or leave empty to wait for a button)", auto)
			}
			m, tok, err := openUShield(ctx, module, label, pinSrc)
			if err != nil {
				return err
			}
			defer m.Close()
			defer tok.Close()
			var id []byte
			if keyID != "" {
				if id, err = hex.DecodeString(keyID); err != nil {
					return fmt.Errorf("--key-id: %w", err)
				}
			} else {
				ids, err := tok.KeyIDs(ctx)
				if err != nil {
					return err
				}
				if len(ids) != 1 {
					return fmt.Errorf("token %q holds %d keys: choose one with --key-id", tok.Info().Label, len(ids))
				}
				id = ids[0]
			}
			key, err := tok.Key(ctx, id)
			if err != nil {
				return err
			}
			cert, err := tok.Certificate(ctx, id)
			if err != nil {
				return err
			}
			dev := &simushield.Device{Signer: key, Cert: cert, Auto: auto, Out: cmd.OutOrStdout()}
			srv := &http.Server{Addr: listen, Handler: dev.Handler(), ReadHeaderTimeout: 5 * time.Second}
			go func() { <-ctx.Done(); srv.Close() }()
			fmt.Fprintf(cmd.OutOrStdout(), "U-shield %q (key %x) on http://%s/\n", tok.Info().Label, id, listen)
			if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&module, "module", "", "the token's PKCS#11 library")
	f.StringVar(&label, "token", "", "the token's label")
	f.StringVar(&pinSrc, "pin-source", "prompt", "the token PIN: prompt, file:/path or env:NAME")
	f.StringVar(&keyID, "key-id", "", "CKA_ID (hex) of the enrolled key (default: the token's only key)")
	f.StringVar(&listen, "listen", "127.0.0.1:8026", "address of the device page and endpoints")
	f.StringVar(&auto, "auto", "", "decide without a button: confirm or cancel")
	cmd.MarkFlagRequired("module")
	return cmd
}
