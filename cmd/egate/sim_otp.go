package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	devotp "github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/simulators/oathtoken"
)

func init() { registerSim(newSimOTPCmd) }

func newSimOTPCmd() *cobra.Command {
	var (
		pskcPath, keyHex, keyFile, passwordSource, serial string
		once                                              bool
	)
	cmd := &cobra.Command{
		Use:   "otp",
		Short: "a dynamic-password token showing codes from a PSKC file",
		Long: `Plays one token of a PSKC file (the first, or --serial). A TOTP token shows
its current code and refreshes it each time step; an HOTP token shows the
next code each time Enter is pressed; an OCRA token reads a question per line
and prints the response (for a transaction question it first shows the
payee's last digits and the amount). --once prints one code and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pskcPath == "" {
				return errors.New("--pskc is required")
			}
			o, err := pskcOptions(keyHex, keyFile, passwordSource)
			if err != nil {
				return err
			}
			f, err := os.Open(pskcPath)
			if err != nil {
				return err
			}
			tok, err := oathtoken.Load(f, o, serial)
			f.Close()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			fmt.Fprintln(cmd.ErrOrStderr(), tok.Describe())
			in := bufio.NewScanner(cmd.InOrStdin())
			switch tok.Key.Params.Kind {
			case devotp.KindTOTP:
				for {
					code, left, err := tok.Press(ctx, time.Now())
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "%s  (%2ds left)\n", code, int(left.Seconds()+0.5))
					if once {
						return nil
					}
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(left):
					}
				}
			case devotp.KindHOTP:
				for {
					code, _, err := tok.Press(ctx, time.Now())
					if err != nil {
						return err
					}
					fmt.Fprintln(out, code)
					if once || !in.Scan() {
						return nil
					}
				}
			default:
				fmt.Fprintln(cmd.ErrOrStderr(), "type the question and press Enter")
				for in.Scan() {
					q := strings.TrimSpace(in.Text())
					if q == "" {
						continue
					}
					if d, err := devotp.DecodeTransactionQuestion(q, devotp.TxLayout{}); err == nil {
						fmt.Fprintf(out, "payee …%s  amount %d.%02d\n", d.PayeeTail, d.AmountFen/100, d.AmountFen%100)
					}
					r, err := tok.Respond(ctx, q, time.Now())
					if err != nil {
						fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
						continue
					}
					fmt.Fprintln(out, r)
					if once {
						return nil
					}
				}
				return in.Err()
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&pskcPath, "pskc", "", "PSKC file holding the token's key")
	f.StringVar(&serial, "serial", "", "serial of the token in the file (default: the first)")
	f.StringVar(&keyHex, "key-hex", "", "pre-shared AES key of an encrypted file, in hex")
	f.StringVar(&keyFile, "key-file", "", "file holding the pre-shared AES key")
	f.StringVar(&passwordSource, "password-source", "", "password of a PBKDF2-protected file: env:NAME or file:/path")
	f.BoolVar(&once, "once", false, "print one code (or answer one question) and exit")
	return cmd
}
