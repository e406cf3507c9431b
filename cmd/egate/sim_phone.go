package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/devices/pinsource"
	"github.com/egate-bank/egate/internal/money"
	simphone "github.com/egate-bank/egate/simulators/phone"
)

func init() { registerSim(newSimPhoneCmd) }

func newSimPhoneCmd() *cobra.Command {
	var state, pinSrc string
	cmd := &cobra.Command{
		Use:   "phone",
		Short: "the bank's phone app: bind it once (password + SMS), then scan the passport's QR code to log in or confirm",
		Long: `The bank's phone app as a simulator. "bind" binds it to a customer once: the
password, then the SMS code the bank sends (typed on stdin), and a device key made
here that never leaves the state file (--state, mode 0600); the app PIN protects its
use. From then on it is a level-3 tool: "scan IMAGE" reads the passport page's
animated QR code from a screenshot (PNG or JPEG), shows the text of the order, asks
the app PIN, signs exactly that text and its challenge and sends the signature; the
page goes on by itself. A wrong app PIN is refused and counted by the bank, with a
lockout like every other tool's.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&state, "state", "egate-phone.json", "the app's state file (binding and device key)")
	pf.StringVar(&pinSrc, "pin-source", "prompt", "the app PIN: prompt (typed on stdin), file:/path or env:NAME")

	readPIN := func(in *bufio.Reader, out io.Writer) ([]byte, error) {
		if pinSrc != "prompt" {
			return pinsource.Read(pinSrc)
		}
		fmt.Fprint(out, "App PIN: ")
		line, err := in.ReadString('\n')
		if err != nil && line == "" {
			return nil, errors.New("no app PIN given")
		}
		return []byte(strings.TrimRight(line, "\r\n")), nil
	}

	var server, login, pwSrc, label string
	bind := &cobra.Command{
		Use:   "bind",
		Short: "bind the app to a customer: password, SMS code, device key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" || login == "" || pwSrc == "" {
				return errors.New("--server, --login and --password-source are required")
			}
			pw, err := pinsource.Read(pwSrc)
			if err != nil {
				return fmt.Errorf("--password-source: %w", err)
			}
			in := bufio.NewReader(cmd.InOrStdin())
			out := cmd.OutOrStdout()
			pin, err := readPIN(in, out)
			if err != nil {
				return err
			}
			defer clear(pin)
			hc := &http.Client{Timeout: 30 * time.Second}
			st, err := simphone.Bind(cmd.Context(), hc, server, login, string(pw), func(prompt string) (string, error) {
				fmt.Fprintf(out, "%s. SMS code: ", prompt)
				line, err := in.ReadString('\n')
				if err != nil && line == "" {
					return "", errors.New("no SMS code given")
				}
				return strings.TrimSpace(line), nil
			}, pin, label)
			clear(pw)
			if err != nil {
				return fmt.Errorf("binding the app: %w", err)
			}
			if err := st.Save(state); err != nil {
				return err
			}
			fmt.Fprintf(out, "\nbound: device %s for %s (state in %s)\n", st.DeviceID, st.PassportID, state)
			return nil
		},
	}
	bf := bind.Flags()
	bf.StringVar(&server, "server", "", "the bank's passport URL")
	bf.StringVar(&login, "login", "", "the customer's login name")
	bf.StringVar(&pwSrc, "password-source", "", "the password: file:/path or env:NAME")
	bf.StringVar(&label, "label", "phone", "a name for this phone on the customer's tools list")

	var yes bool
	var account, amount, bank, lang string
	scan := &cobra.Command{
		Use:   "scan IMAGE",
		Short: "scan a QR code from an image: the passport's (sign the order) or an ATM's (withdraw cash)",
		Long: `Reads the QR code in IMAGE (PNG or JPEG) with gozxing, as the app's camera would.

The passport's animated QR (a login or a transaction): shows the order's text, asks
the app PIN, signs it.

An ATM's withdrawal QR (egate-wd:1:…, the demo writes it to var/atm-qr.png): withdraws
--amount yuan from --account at that ATM. The bank checks the session, the ATM's
cassettes, the limits and the balance and shows the text to confirm; the app PIN signs
it; then type the withdrawal PIN on the ATM's PIN pad and take the cash.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := simphone.Load(state)
			if err != nil {
				return err
			}
			qr, err := simphone.ScanImage(args[0])
			if err != nil {
				return err
			}
			in := bufio.NewReader(cmd.InOrStdin())
			ui := &phoneUI{out: cmd.OutOrStdout(), in: in, yes: yes, pin: func() ([]byte, error) { return readPIN(in, cmd.OutOrStdout()) }}
			if simphone.WithdrawalQR(qr) {
				return withdraw(cmd, st, simphone.Withdrawal{QR: qr, Lang: lang}, account, amount, bank, ui)
			}
			if err := st.Answer(cmd.Context(), &http.Client{Timeout: 30 * time.Second}, qr, ui); err != nil {
				return fmt.Errorf("order not signed: %w", err)
			}
			return nil
		},
	}
	scan.Flags().BoolVar(&yes, "yes", false, "sign without asking to confirm (tests; the text is still shown)")
	scan.Flags().StringVar(&account, "account", "", "withdrawal: the account to take the cash from")
	scan.Flags().StringVar(&amount, "amount", "", "withdrawal: the amount in yuan (a multiple of the smallest note)")
	scan.Flags().StringVar(&bank, "bank", "", "withdrawal: the bank's withdrawal API (default: the server the app is bound to)")
	scan.Flags().StringVar(&lang, "lang", "", "withdrawal: the app's language, zh-CN or en, in which the bank words the text to confirm (default English)")
	payQR := &cobra.Command{
		Use:   "pay-qr IMAGE",
		Short: "scan a messenger receive QR from an image and print the pay page to open (amount, payee, confirm)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := simphone.ReceiveQR(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "receive code of the bank's messenger; open it to confirm and pay:\n%s\n", u)
			return nil
		},
	}
	cmd.AddCommand(bind, scan, payQR)
	return cmd
}

func withdraw(cmd *cobra.Command, st *simphone.State, wd simphone.Withdrawal, account, amount, bank string, ui *phoneUI) error {
	out := cmd.OutOrStdout()
	if account == "" || amount == "" {
		return errors.New("this is an ATM's withdrawal QR code: give --account and --amount (yuan)")
	}
	if wd.Lang != "" && !slices.Contains(intent.Langs, wd.Lang) {
		return fmt.Errorf("--lang %q: give zh-CN or en", wd.Lang)
	}
	fen, err := money.ParseYuan(amount)
	if err != nil || fen <= 0 {
		return fmt.Errorf("--amount %q: give a positive amount in yuan, such as 300", amount)
	}
	if bank == "" {
		bank = st.Server
	}
	fmt.Fprintf(out, "ATM withdrawal QR: %s\n", wd.QR)
	wd.Account, wd.AmountFen = account, fen
	res, err := st.Withdraw(cmd.Context(), &http.Client{Timeout: 5 * time.Minute}, bank, wd, ui)
	if err != nil {
		return fmt.Errorf("withdrawal refused: %w", err)
	}
	switch res.State {
	case "PRESENTED", "TAKEN", "CAPTURED":
		fmt.Fprintf(out, "Take your cash: %s yuan at the exit of ATM %s (withdrawal %s, %s).\n", money.Yuan(res.CashOut), res.ATM, res.Session, res.State)
	default:
		fmt.Fprintf(out, "Withdrawal %s ended %s: %s. Nothing more is taken from your account than the ATM paid out.\n", res.Session, res.State, res.Reason)
	}
	return nil
}

func (u *phoneUI) ShowText(text string, level int) {
	fmt.Fprintf(u.out, "\n┌─ the bank's app ─ ATM withdrawal (level %d)\n", level)
	for _, l := range strings.Split(text, "\n") {
		fmt.Fprintf(u.out, "│ %s\n", l)
	}
	fmt.Fprintf(u.out, "└─ confirm only if you stand at this ATM\n")
}

type phoneUI struct {
	out io.Writer
	in  *bufio.Reader
	yes bool
	pin func() ([]byte, error)
}

func (u *phoneUI) Show(o *orders.Opened, data []byte) {
	fmt.Fprintf(u.out, "\n┌─ the bank's app ─ %s\n", o.Kind)
	for _, l := range strings.Split(string(data), "\n") {
		fmt.Fprintf(u.out, "│ %s\n", l)
	}
	fmt.Fprintf(u.out, "└─ confirm only if this is what you are doing\n")
}

func (u *phoneUI) Confirm(context.Context) (bool, error) {
	if u.yes {
		return true, nil
	}
	fmt.Fprint(u.out, "Confirm? [y/N] ")
	line, _ := u.in.ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

func (u *phoneUI) PIN(context.Context) ([]byte, error) { return u.pin() }
func (u *phoneUI) Say(msg string)                      { fmt.Fprintln(u.out, msg) }
