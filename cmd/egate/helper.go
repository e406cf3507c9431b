package main

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/clients/helper"
	"github.com/egate-bank/egate/devices/piv"
)

func init() { registerTop(newHelperCmd) }

func newHelperCmd() *cobra.Command {
	var server, module, label, ushield2, pivReader, pinSrc string
	var usePIV, yes, register bool
	cmd := &cobra.Command{
		Use:   "helper [egate://order?…]",
		Short: "the customer's desktop security helper: signs the passport's orders with a U-shield or a PIV token",
		Long: `The desktop security helper. The passport's "Use your U-shield" link
(egate://order?ref=…&token=…) starts it with the link as its argument (or copy
the link and give it by hand). It opens the order at the bank, shows exactly the
text it will sign (with the challenge line), asks you to confirm and asks the
token PIN (typed on the terminal, never stored or logged; --pin-source file:/path
or env:NAME for scripts), signs with your token and sends the signature. The page
you came from goes on by itself.

Tools: --module (the U-shield vendor's PKCS#11 library; SoftHSM2 in development)
with --token (its label), --ushield2 (a 2nd-generation U-shield with display and
confirm button: its local link, e.g. egate sim ushield's http://127.0.0.1:8026),
--piv (a PIV token in a PC/SC reader; --piv-reader names the reader).

--server is your bank's passport URL; a link naming another server is refused.
Without it the link's server is used.

A wrong PIN shows the tries left; a blocked PIN says how to unblock it; a token
removed during the signature cancels the order, and the page offers a new one.

--register makes this helper, with the tool flags given, the desktop's handler of
egate:// links (a desktop entry in $XDG_DATA_HOME/applications, made the default
with xdg-mime when it is installed); the page's link then starts it in a terminal.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if register {
				return registerScheme(cmd, server, module, label, ushield2, pivReader, usePIV)
			}
			if len(args) == 0 {
				return errors.New("give the order link (egate://order?ref=…&token=…) from the passport page")
			}
			link, err := orders.ParseLink(args[0])
			if err != nil {
				return err
			}
			if server == "" {
				server = link.Server
			}
			if err := helper.CheckServer(link, server); err != nil {
				return err
			}
			if !strings.HasPrefix(server, "https://") && !strings.HasPrefix(server, "http://") {
				return fmt.Errorf("--server %q: want the bank's https:// URL", server)
			}
			var tools []helper.Tool
			if ushield2 != "" {
				tools = append(tools, &helper.UShield2{URL: ushield2, HTTP: &http.Client{Timeout: 5 * time.Minute}})
			}
			if module != "" {
				tools = append(tools, &helper.UShield{Module: module, Label: label})
			}
			if usePIV || pivReader != "" {
				tools = append(tools, &helper.PIV{Driver: piv.New(piv.Config{}), Reader: pivReader})
			}
			if len(tools) == 0 {
				return errors.New("no token configured: give --module (U-shield), --ushield2 or --piv")
			}
			ui := &helper.Terminal{Out: cmd.OutOrStdout(), In: bufio.NewReader(cmd.InOrStdin()), Yes: yes, AskPIN: askPIN}
			if pinSrc != "prompt" {
				ui.PINSource = pinSrc
			}
			h := &helper.Helper{Client: &orders.Client{Base: server, HTTP: &http.Client{Timeout: 30 * time.Second}}, Tools: tools, UI: ui}
			res, err := h.Run(ctx, orders.OpenRequest{Ref: link.Ref, AutostartToken: link.Token})
			if err != nil {
				if res != nil && res.State == orders.Cancelled {
					return fmt.Errorf("order not signed (cancelled): %w", err)
				}
				return fmt.Errorf("order not signed: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "your bank's passport URL (default: the link's)")
	f.StringVar(&module, "module", "", "the U-shield vendor's PKCS#11 library")
	f.StringVar(&label, "token", "", "the U-shield's token label (empty: the only token present)")
	f.StringVar(&ushield2, "ushield2", "", "the local link of a 2nd-generation U-shield (display and confirm button)")
	f.BoolVar(&usePIV, "piv", false, "use a PIV token in a PC/SC reader")
	f.StringVar(&pivReader, "piv-reader", "", "the PC/SC reader of the PIV token (empty: the only one)")
	f.StringVar(&pinSrc, "pin-source", "prompt", "the token PIN: prompt (typed on the terminal), file:/path or env:NAME")
	f.BoolVar(&register, "register", false, "register this helper (with the tool flags given) as the desktop's handler of egate:// links")
	f.BoolVar(&yes, "yes", false, "sign without asking to confirm (scripts and tests; the text is still shown)")
	return cmd
}

// askPIN reads a PIN from the terminal without echo.
func askPIN(prompt string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, errors.New("no terminal to ask for the PIN: use --pin-source file:/path or env:NAME")
	}
	defer tty.Close()
	stty := func(arg string) {
		c := exec.Command("stty", arg)
		c.Stdin = tty
		c.Run()
	}
	fmt.Fprint(tty, prompt)
	stty("-echo")
	line, err := bufio.NewReader(tty).ReadBytes('\n')
	stty("echo")
	fmt.Fprintln(tty)
	if err != nil {
		return nil, fmt.Errorf("reading the PIN: %w", err)
	}
	n := len(line)
	for n > 0 && (line[n-1] == '\n' || line[n-1] == '\r') {
		n--
	}
	pin := append([]byte(nil), line[:n]...)
	clear(line)
	return pin, nil
}

// registerScheme writes the desktop entry for egate:// links and makes it
// the default handler when xdg-mime is there.
func registerScheme(cmd *cobra.Command, server, module, label, ushield2, pivReader string, usePIV bool) error {
	if server == "" {
		return errors.New("--register needs --server (the bank's passport URL the links must name)")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"--server", server}
	for _, kv := range [][2]string{{"--module", module}, {"--token", label}, {"--ushield2", ushield2}, {"--piv-reader", pivReader}} {
		if kv[1] != "" {
			args = append(args, kv[0], kv[1])
		}
	}
	if usePIV {
		args = append(args, "--piv")
	}
	home := os.Getenv("XDG_DATA_HOME")
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		home = filepath.Join(h, ".local", "share")
	}
	path, err := helper.Register(home, exe, args)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", path)
	if x, err := exec.LookPath("xdg-mime"); err == nil {
		if out, err := exec.Command(x, "default", helper.DesktopFile, "x-scheme-handler/egate").CombinedOutput(); err != nil {
			return fmt.Errorf("xdg-mime default: %v: %s", err, strings.TrimSpace(string(out)))
		}
		fmt.Fprintln(cmd.OutOrStdout(), "egate:// links now open the helper")
	} else {
		fmt.Fprintln(cmd.OutOrStdout(), "xdg-mime is not installed: make the entry the handler of x-scheme-handler/egate by hand")
	}
	return nil
}
