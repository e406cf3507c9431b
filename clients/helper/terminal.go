package helper

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/devices/pinsource"
)

// Terminal is the helper's terminal UI. The PIN comes from PINSource
// (file:/path or env:NAME, for tests and scripts) or from AskPIN (a
// terminal prompt without echo); it is never printed or kept.
type Terminal struct {
	Out       io.Writer
	In        *bufio.Reader // answers to "Sign? [y/N]"
	Yes       bool          // confirm without asking (scripts and tests)
	PINSource string
	AskPIN    func(prompt string) ([]byte, error)
}

func (t *Terminal) Show(o *orders.Opened, data []byte, tool string) {
	kind := map[orders.Kind]string{orders.KindLogin: "Log in", orders.KindTransaction: "Confirm a transaction", orders.KindEnrol: "Enrol a tool"}[o.Kind]
	fmt.Fprintf(t.Out, "\n%s with your %s. It signs exactly this text:\n", kind, tool)
	fmt.Fprintf(t.Out, "┌──────────────────────────────────────────\n")
	for _, line := range strings.Split(string(data), "\n") {
		fmt.Fprintf(t.Out, "│ %s\n", line)
	}
	fmt.Fprintf(t.Out, "└──────────────────────────────────────────\n")
	fmt.Fprintf(t.Out, "Check that the page you came from shows the same text.\n")
}

func (t *Terminal) Confirm(ctx context.Context) (bool, error) {
	if t.Yes {
		return true, nil
	}
	fmt.Fprint(t.Out, "Sign? [y/N] ")
	if t.In == nil {
		return false, nil
	}
	line, err := t.In.ReadString('\n')
	if err != nil && line == "" {
		return false, err
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

func (t *Terminal) PIN(ctx context.Context, tool string, retries int) ([]byte, error) {
	if t.PINSource != "" {
		return pinsource.Read(t.PINSource)
	}
	prompt := "PIN for your " + tool
	if retries > 0 {
		prompt += fmt.Sprintf(" (%d tries left)", retries)
	}
	if t.AskPIN == nil {
		return nil, fmt.Errorf("no terminal to ask the PIN of your %s: use --pin-source", tool)
	}
	return t.AskPIN(prompt + ": ")
}

func (t *Terminal) Say(msg string) { fmt.Fprintln(t.Out, msg) }
