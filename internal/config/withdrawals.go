package config

import (
	"errors"
	"time"
)

// WithdrawalsConfig is the QR withdrawal API (atm/withdrawal) that egate
// agent-gateway serves on http.listen beside the operators' view: it
// drives the ATMs through the gateway's links, holds in ebank's ledger (the
// same database) and has each withdrawal authorized by the passport's
// transaction API as a back-end client.
type WithdrawalsConfig struct {
	// Enabled mounts /atm/withdrawals on egate agent-gateway.
	Enabled bool `yaml:"enabled"`
	// TxURL is the passport's base URL (transaction API); empty:
	// platforms.issuer.
	TxURL string `yaml:"tx-url"`
	// TxClient and TxSecret are the back-end client (authsvc.backend-clients)
	// with the scopes tx:authorize, tx:execute and alerts:balance.
	TxClient string `yaml:"tx-client"`
	TxSecret string `yaml:"tx-secret" secret:"true"`
	// TTL is a QR session's life (0: 2m); PINTimeout how long the customer
	// has to type the withdrawal PIN (0: 60s); HoldTimeout a hold's life
	// should the data centre never settle it (0: 30m).
	TTL         time.Duration `yaml:"ttl"`
	PINTimeout  time.Duration `yaml:"pin-timeout"`
	HoldTimeout time.Duration `yaml:"hold-timeout"`
}

// Validate checks the section.
func (c WithdrawalsConfig) Validate() error {
	if c.TTL < 0 || c.PINTimeout < 0 || c.HoldTimeout < 0 || c.PINTimeout > 5*time.Minute {
		return errors.New("withdrawals: ttl, pin-timeout and hold-timeout must not be negative (pin-timeout at most 5m)")
	}
	if c.Enabled && (c.TxClient == "" || c.TxSecret == "") {
		return errors.New("withdrawals.enabled needs withdrawals.tx-client and withdrawals.tx-secret: a back-end client of the passport with tx:authorize, tx:execute and alerts:balance")
	}
	return nil
}
