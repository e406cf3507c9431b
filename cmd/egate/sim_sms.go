package main

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	authsms "github.com/egate-bank/egate/authsvc/sms"
	simsms "github.com/egate-bank/egate/simulators/sms"
)

func init() { registerSim(newSimSMSCmd) }

func newSimSMSCmd() *cobra.Command {
	var dbDSN, listen string
	cmd := &cobra.Command{
		Use:   "sms",
		Short: "the development SMS sink: a page listing the messages egate sent (from the database outbox)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if dbDSN == "" {
				return errors.New("--db is required: the database whose outbox egate writes (SQLite file or postgres:// URL)")
			}
			a := &authFlags{db: dbDSN}
			db, err := a.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			srv := &http.Server{Addr: listen, Handler: simsms.Handler(authsms.NewSink(db, nil)), ReadHeaderTimeout: 5 * time.Second}
			go func() { <-ctx.Done(); srv.Close() }()
			fmt.Fprintf(cmd.OutOrStdout(), "SMS sink on http://%s/ (JSON: /messages.json)\n", listen)
			if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dbDSN, "db", "", "database: SQLite file path or postgres:// URL")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8025", "address of the page")
	return cmd
}
