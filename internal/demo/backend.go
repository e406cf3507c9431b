package demo

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/egate-bank/egate/authsvc/backend"
	authsms "github.com/egate-bank/egate/authsvc/sms"
	simsms "github.com/egate-bank/egate/simulators/sms"
)

// BackendClientID is the back-end client the demo registers for its own
// simulators and for a person trying the OTP verify API with curl.
const BackendClientID = "demo-backend"

// backendSecretFile holds the demo back-end client's secret (mode 0600).
const backendSecretFile = "demo-backend-secret"

// backendClient makes the demo back-end client's secret on the first start
// (reused on the next) and returns its registration: both OTP scopes,
// ebank's holds API, the transaction API and the ATM application's
// atm:withdrawals (the demo ATM's QR withdrawal button), the secret read
// from the file like any secret-source.
func backendClient(varDir string) (backend.ClientConfig, error) {
	path, err := filepath.Abs(filepath.Join(varDir, backendSecretFile))
	if err != nil {
		return backend.ClientConfig{}, err
	}
	if _, err := os.Stat(path); err != nil {
		if err := os.WriteFile(path, []byte(randomHex(32)+"\n"), 0o600); err != nil {
			return backend.ClientConfig{}, fmt.Errorf("writing the demo back-end client's secret: %w", err)
		}
	}
	return backend.ClientConfig{ID: BackendClientID, SecretSource: "file:" + path, Scopes: []string{backend.ScopeOTPVerify, backend.ScopeOTPResync, backend.ScopeEbankHolds,
		backend.ScopeTxAuthorize, backend.ScopeTxExecute, backend.ScopeAlertsBalance, backend.ScopeATMWithdrawals}}, nil
}

// printOTPAPI tells how to call the OTP verify API as the demo back-end
// client, with a code of alice's token from egate sim otp.
func printOTPAPI(out io.Writer, base, varDir, passportID string) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "  OTP API  %s/v1/otp/verify and /v1/otp/resync, for back-end client %q (HTTP Basic, secret in %s), e.g.:\n",
		base, BackendClientID, filepath.Join(varDir, backendSecretFile))
	fmt.Fprintf(&b, "           curl -u \"%s:$(cat %s)\" -H 'Content-Type: application/json' -d \"{\\\"passport_id\\\":\\\"%s\\\",\\\"code\\\":\\\"$(egate sim otp --pskc %s --once | cut -d' ' -f1)\\\"}\" %s/v1/otp/verify\n",
		BackendClientID, filepath.Join(varDir, backendSecretFile), passportID, filepath.Join(varDir, totpFile), base)
	out.Write(b.Bytes())
}

// mountSMSSink shows the development SMS sink's messages under /sim/sms/:
// a page of the demo only, never of egate authsvc.
func mountSMSSink(mux *http.ServeMux, sink *authsms.Sink) {
	mux.Handle("/sim/sms/", http.StripPrefix("/sim/sms", simsms.Handler(sink)))
}
