package otp

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
)

// Handler serves POST /v1/otp/verify and POST /v1/otp/resync. Errors are
// JSON {"error":{"code","message"}}: 400 malformed, 401 wrong_code, 404
// unknown_token, 409 replay, 423 locked (with Retry-After when the lock runs
// out by itself), 403 revoked, 500/503 for the bank's own faults (with a
// message that reveals nothing).
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
		writeError(w, http.StatusBadRequest, "malformed", "the request body must be a JSON object {passport_id or serial, code}")
		return
	}
	if (req.PassportID == "") == (req.Serial == "") {
		writeError(w, http.StatusBadRequest, "malformed", "give exactly one of passport_id and serial")
		return
	}
	if req.Code == "" || (resync && req.Code2 == "") {
		writeError(w, http.StatusBadRequest, "malformed", "code (and for resync code2) must be given")
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
		s.writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(verifyResponse{OK: true, Serial: acc.Serial, Counter: acc.Counter})
}

func (s *Service) writeErr(w http.ResponseWriter, err error) {
	var le *authn.LockedError
	switch {
	case errors.As(err, &le):
		if !le.Until.IsZero() {
			secs := int(time.Until(le.Until).Seconds()) + 1
			if secs > 0 {
				w.Header().Set("Retry-After", itoa(secs))
			}
		}
		writeError(w, http.StatusLocked, "locked", le.Error())
	case errors.Is(err, ErrMalformed):
		writeError(w, http.StatusBadRequest, "malformed", err.Error())
	case errors.Is(err, ErrAmbiguous):
		writeError(w, http.StatusBadRequest, "ambiguous", err.Error())
	case errors.Is(err, ErrUnknownToken):
		writeError(w, http.StatusNotFound, "unknown_token", "no such token")
	case errors.Is(err, ErrReplay):
		writeError(w, http.StatusConflict, "replay", "this code was already used; wait for the next one")
	case errors.Is(err, ErrWrongCode):
		writeError(w, http.StatusUnauthorized, "wrong_code", "the code is not correct")
	case errors.Is(err, ErrRevoked):
		writeError(w, http.StatusForbidden, "revoked", err.Error())
	default:
		// The HSM or the database: say nothing about internals.
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the token service is temporarily unavailable; try again")
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func itoa(n int) string {
	b := []byte{}
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}
