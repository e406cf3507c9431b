package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/simulators/pivcard"
)

func init() { registerSim(newSimPIVCmd) }

func newSimPIVCmd() *cobra.Command {
	var (
		statePath, vendorPath, rootOut string
		port                           int
		serial                         uint32
	)
	cmd := &cobra.Command{
		Use:   "piv",
		Short: "a YubiKey-compatible PIV card in a vpcd virtual reader of pcscd",
		Long: `Runs a simulated PIV card (simulators/pivcard) and inserts it into the
vsmartcard virtual reader (vpcd) of a running pcscd: port 35963 is reader
"Virtual PCD 00 00", 35964 is "Virtual PCD 00 01". The card's state (PIN, PUK,
keys, certificates) is kept in --state and survives restarts. Attestation
certificates chain to the vendor root in --vendor (created if missing);
--root-out writes that root's certificate for verifiers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if statePath == "" {
				return errors.New("--state is required")
			}
			if vendorPath == "" {
				vendorPath = statePath + ".vendor.pem"
			}
			log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
			vendor, err := pivcard.LoadOrCreateVendor(vendorPath, time.Now())
			if err != nil {
				return err
			}
			if rootOut != "" {
				if err := os.WriteFile(rootOut, vendor.RootPEM(), 0o644); err != nil {
					return fmt.Errorf("writing vendor root: %w", err)
				}
			}
			card, err := pivcard.Open(pivcard.Config{Path: statePath, Vendor: vendor, Serial: serial})
			if err != nil {
				return err
			}
			addr := pivcard.Addr(port)
			log.Info("PIV card ready", "serial", card.Serial(), "vpcd", addr, "state", statePath)
			err = pivcard.ServeForever(cmd.Context(), addr, card, time.Second, func(err error) {
				log.Warn("vpcd link down, retrying", "vpcd", addr, "err", err)
			})
			if cmd.Context().Err() != nil {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&statePath, "state", "", "card state file (JSON), created if missing")
	f.IntVar(&port, "port", pivcard.DefaultPort, "vpcd reader port on 127.0.0.1")
	f.StringVar(&vendorPath, "vendor", "", "vendor root CA (PEM cert and key); default STATE.vendor.pem")
	f.StringVar(&rootOut, "root-out", "", "write the vendor root certificate (PEM) here")
	f.Uint32Var(&serial, "serial", 0, "serial number of a new card (default random)")
	return cmd
}
