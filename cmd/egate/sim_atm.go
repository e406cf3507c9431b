package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/atm"
	simatm "github.com/egate-bank/egate/simulators/atm"
)

func init() { registerSim(newSimATMCmd) }

func newSimATMCmd() *cobra.Command {
	var (
		port, journal, httpAddr, pngPath, cassettes, pinKeyEnv, qr string
		usePTY, quiet                                              bool
		baud                                                       int
		seed                                                       int64
		faults                                                     []string
		pickTime, presentTime, retractTime, takeAfter, takeTO      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "atm",
		Short: "an ATM on a serial line (or a pseudo-terminal) speaking atm/PROTOCOL.md",
		Long: `Runs the ATM simulator (simulators/atm): cassettes, reject bin, cash tray with
shutter, a customer, a PIN pad, a screen, and a journal in --journal that makes
it report the truth after kill -9.

Line: --port /dev/ttyS0 (or /dev/pts/N) opens a port through tarm/serial;
--pty makes a pseudo-terminal pair and prints the end the host should open.
Writes are paced to --baud on a pseudo-terminal; a real UART paces itself.

Screen and control: --http serves the screen (/), the QR (/qr.png), counts
(/state), and POST /faults (name=value), /pin (digits=… or cancel=1), /take.
The QR is also written to --png and drawn on the terminal.

Faults (--fault name=value, repeatable; same names on POST /faults):
` + strings.Join(simatm.FaultNames(), ", ") + `
Random choices come from --seed, so a run can be replayed.

QR: --qr text|bitmap|both chooses what HELLO advertises (QR_TEXT: the ATM
renders the QR from text; QR_BITMAP: it shows a module bitmap the host sent);
a SHOW_QR in a mode not advertised is answered UNSUPPORTED and shows nothing.

PIN pad key: AES key in hex, read from the environment variable named by
--pin-key-env (never from a flag).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (port == "") == !usePTY {
				return errors.New("give exactly one of --port and --pty")
			}
			log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
			f := simatm.NewFaults(seed)
			for _, s := range faults {
				if err := f.Set(s); err != nil {
					return err
				}
			}
			cs, err := parseCassettes(cassettes)
			if err != nil {
				return err
			}
			caps, err := simatm.QRCapabilities(qr)
			if err != nil {
				return fmt.Errorf("--qr: %w", err)
			}
			cfg := simatm.Config{
				Cassettes: cs, JournalPath: journal, Faults: f,
				Link:     atm.LinkConfig{Baud: baud},
				PickTime: pickTime, PresentTime: presentTime, RetractTime: retractTime,
				TakeAfter: takeAfter, TakeTimeout: takeTO,
				Screen:       &simatm.Screen{PNGPath: pngPath},
				Capabilities: caps,
			}
			if !quiet {
				cfg.Screen.Term = cmd.OutOrStdout()
			}
			if v := os.Getenv(pinKeyEnv); v != "" {
				k, err := hex.DecodeString(v)
				if err != nil || (len(k) != 16 && len(k) != 24 && len(k) != 32) {
					return fmt.Errorf("%s: want an AES key as 32, 48 or 64 hex digits", pinKeyEnv)
				}
				cfg.PINKey, cfg.PINKeyID = k, 1
			}
			s, err := simatm.New(cfg)
			if err != nil {
				return err
			}
			defer s.Close()
			var line io.ReadWriteCloser
			if usePTY {
				p, err := simatm.OpenPTY()
				if err != nil {
					return err
				}
				defer p.Close()
				line = p.Master
				fmt.Fprintf(cmd.OutOrStdout(), "ATM simulator on pseudo-terminal; host end: %s\n", p.TTYName)
			} else {
				if line, err = atm.OpenSerial(port, baud); err != nil {
					return err
				}
			}
			if httpAddr != "" {
				ln, err := net.Listen("tcp", httpAddr)
				if err != nil {
					return fmt.Errorf("control endpoint: %w", err)
				}
				srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
				go srv.Serve(ln)
				defer srv.Close()
				fmt.Fprintf(cmd.OutOrStdout(), "ATM screen and control: http://%s/\n", ln.Addr())
			}
			log.Info("ATM simulator running", "baud", baud, "journal", journal, "seed", seed, "faults", faults)
			err = s.Serve(cmd.Context(), line)
			if cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&port, "port", "", "serial port the ATM is on (e.g. /dev/pts/3)")
	fl.BoolVar(&usePTY, "pty", false, "make a pseudo-terminal pair and print the host's end")
	fl.IntVar(&baud, "baud", 115200, "line speed; on a pseudo-terminal writes are paced to it")
	fl.StringVar(&journal, "journal", "atm-journal.jsonl", "the ATM's persistent journal")
	fl.StringVar(&httpAddr, "http", "127.0.0.1:8089", "screen and control endpoint address (empty: none)")
	fl.StringVar(&pngPath, "png", "atm-qr.png", "write the QR on screen to this PNG (empty: none)")
	fl.StringVar(&cassettes, "cassettes", "1:10000:500,2:5000:500,3:2000:500,4:1000:500", "id:denomination-fen:count,… for a new journal")
	fl.StringVar(&qr, "qr", "both", "QR modes advertised in HELLO: text, bitmap or both")
	fl.StringVar(&pinKeyEnv, "pin-key-env", "EGATE_ATM_PIN_KEY", "environment variable holding the PIN pad's AES key (hex)")
	fl.StringArrayVar(&faults, "fault", nil, "inject a fault: name=value (repeatable)")
	fl.Int64Var(&seed, "seed", 1, "seed for random faults")
	fl.DurationVar(&pickTime, "pick-time", 150*time.Millisecond, "mechanical time per note")
	fl.DurationVar(&presentTime, "present-time", 500*time.Millisecond, "time to present notes")
	fl.DurationVar(&retractTime, "retract-time", 500*time.Millisecond, "time to retract notes")
	fl.DurationVar(&takeAfter, "take-after", 2*time.Second, "the customer takes presented cash after this (see fault customer-takes)")
	fl.DurationVar(&takeTO, "take-timeout", 30*time.Second, "the ATM retracts untaken cash after this")
	fl.BoolVar(&quiet, "quiet", false, "do not draw the QR on the terminal")
	return cmd
}

func parseCassettes(s string) ([]simatm.Cassette, error) {
	var out []simatm.Cassette
	for _, part := range strings.Split(s, ",") {
		f := strings.Split(strings.TrimSpace(part), ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("--cassettes %q: want id:denomination-fen:count", part)
		}
		id, err1 := strconv.ParseUint(f[0], 10, 8)
		denom, err2 := strconv.ParseInt(f[1], 10, 64)
		n, err3 := strconv.Atoi(f[2])
		if err := errors.Join(err1, err2, err3); err != nil || id == 0 || denom <= 0 || n < 0 || n > 65535 {
			return nil, fmt.Errorf("--cassettes %q: want id 1-255, denomination > 0 fen, count 0-65535", part)
		}
		out = append(out, simatm.Cassette{ID: uint8(id), Denom: denom, Count: n})
	}
	return out, nil
}
