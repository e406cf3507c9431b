package ca

import (
	"net/http"
	"strconv"

	"github.com/egate-bank/egate/authsvc/apierr"
)

// Handler serves GET /ca/crl (DER, application/pkix-crl), GET /ca/root.pem
// and GET /ca/issuing.pem.
func (c *CA) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ca/crl", func(w http.ResponseWriter, r *http.Request) {
		der, err := c.CRL(r.Context())
		if err != nil {
			// The HSM or the database: the log has the request id, the
			// answer says nothing about internals.
			apierr.WriteCode(w, r, apierr.Unavailable, "the CRL cannot be produced now; try again")
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Header().Set("Content-Length", strconv.Itoa(len(der)))
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write(der)
	})
	mux.HandleFunc("GET /ca/root.pem", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(c.RootPEM())
	})
	mux.HandleFunc("GET /ca/issuing.pem", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(c.IssuingPEM())
	})
	return mux
}
