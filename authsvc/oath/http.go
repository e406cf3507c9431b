package oath

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/egate-bank/egate/authsvc/apierr"
)

// Handler serves POST /v1/otp/verify and POST /v1/otp/resync. Errors are
// answered from the one table of authsvc/apierr, in the JSON error shape of
// internal/httpx: 400 invalid_request (the body), bad_response (the code's
// form) or ambiguous, 401 wrong_answer, 403 revoked, 404 unknown_token,
// 409 replay, 423 locked (with Retry-After when the lock runs out by
// itself), 503 unavailable for the bank's own faults (with Retry-After and
// a message that reveals nothing).
//
// The handler authenticates nobody: it is for the bank's back-end systems
// and must be mounted behind their authentication, as egate authsvc does
// (authsvc/backend: HTTP Basic of a registered client holding the scope
// otp:verify or otp:resync; internal/app).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/otp/verify", s.serveVerify)
	mux.HandleFunc("POST /v1/otp/resync", s.serveResync)
	return mux
}

type verifyRequest struct {
	PassportID string `json:"passport_id"`
	Serial     string `json:"serial"`
	KeyID      string `json:"key_id"`
	Code       string `json:"code"`
	Code2      string `json:"code2"` // resync only: the next code
}

type verifyResponse struct {
	OK      bool   `json:"ok"`
	Serial  string `json:"serial"`
	Counter uint64 `json:"counter"`
}

func (s *Service) serveVerify(w http.ResponseWriter, r *http.Request) { s.serve(w, r, false) }
func (s *Service) serveResync(w http.ResponseWriter, r *http.Request) { s.serve(w, r, true) }

func (s *Service) serve(w http.ResponseWriter, r *http.Request, resync bool) {
	var req verifyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		apierr.WriteCode(w, r, apierr.InvalidRequest, "the request body must be a JSON object {passport_id or serial, code}")
		return
	}
	if (req.PassportID == "") == (req.Serial == "") {
		apierr.WriteCode(w, r, apierr.InvalidRequest, "give exactly one of passport_id and serial")
		return
	}
	if req.Code == "" || (resync && req.Code2 == "") {
		apierr.WriteCode(w, r, apierr.InvalidRequest, "code (and for resync code2) must be given")
		return
	}
	ctx := r.Context()
	var (
		acc Accepted
		err error
	)
	if !resync {
		acc, err = s.VerifyCode(ctx, Lookup{Serial: req.Serial, KeyID: req.KeyID, PassportID: req.PassportID}, strings.TrimSpace(req.Code))
	} else {
		var t *Token
		if req.Serial != "" {
			t, err = s.TokenBySerial(ctx, req.Serial, req.KeyID)
		} else {
			t, err = s.TokenOf(ctx, req.PassportID, "hotp", "totp")
		}
		if err == nil {
			acc, err = s.Resync(ctx, t, strings.TrimSpace(req.Code), strings.TrimSpace(req.Code2))
		}
	}
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(verifyResponse{OK: true, Serial: acc.Serial, Counter: acc.Counter})
}

// writeErr answers err from the one table; the token service's own
// refusals (no such token, several tokens) are given their rows here.
func (s *Service) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrUnknownToken):
		err = apierr.Wrap(apierr.UnknownToken, err)
	case errors.Is(err, ErrAmbiguous):
		err = apierr.Wrap(apierr.Ambiguous, err)
	}
	apierr.Write(w, r, s.now(), err)
}
