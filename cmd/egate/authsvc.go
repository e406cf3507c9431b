package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/egate-bank/egate/internal/app"
)

func init() { registerTop(newAuthsvcCmd) }

func newAuthsvcCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "authsvc",
		Short: "run the auth API: passport login pages, the OIDC provider, the authentication tools' APIs",
		Long: `Runs one authsvc replica on http.listen with the database, HSM and authsvc
sections of the config. Replicas are stateless: run several on one PostgreSQL
database behind a load balancer (TLS ends there; set http.public-url or
authsvc.issuer to the https URL customers see).

Besides the passport it serves /ca/ (the bank CA's CRL and certificates) and
the OTP verify API (POST /v1/otp/verify, /v1/otp/resync) to the back-end
clients of authsvc.backend-clients only (HTTP Basic), and the transaction
authorization API (/v1/tx/, /v1/alerts/) to those with the tx:authorize,
tx:execute or alerts:balance scopes. It serves no simulator
page (/sim/...): those are egate demo's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, log, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			for _, v := range []interface{ Validate() error }{cfg.HTTP, cfg.Database} {
				if err := v.Validate(); err != nil {
					return err
				}
			}
			a, err := app.NewAuthsvc(ctx, cfg, log, app.AuthsvcOptions{})
			if err != nil {
				return err
			}
			defer a.Close()
			go a.PurgeEvery(ctx, 10*time.Minute, log)
			go a.CheckpointAuditEvery(ctx, log)
			go a.DeliverLoginAlerts(ctx, log)
			go a.WatchRiskRules(ctx, log)
			log.Info("authsvc listening", "addr", a.Server.Listener.Addr().String(), "issuer", a.Issuer)
			fmt.Fprintf(cmd.OutOrStdout(), "authsvc serving %s at %s\n", a.Issuer, a.Server.URL())
			return app.ServeAll(ctx, a.Server)
		},
	}
}
