package authsvc

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/authsvc/phone"
)

// Binding the phone app (egate sim phone bind): the customer proves the
// password and an SMS code, and the app registers its device key and PIN
// key. Two calls:
//
//	POST /v1/phone/bind/start  {"login_name","password"}  → {"bind_id","prompt"}
//	POST /v1/phone/bind/finish {"bind_id","sms_code","public_key","pin_salt","pin_key","label"} → {"device_id"}
//
// The password counts toward its lockout as on the login page; the SMS code
// toward the SMS tool's. A binding in progress is single use and lives as
// long as the SMS code.

type phoneBinder interface {
	Bind(ctx context.Context, passportID string, pubDER, pinSalt, pinKey []byte, label string) (*phone.Device, error)
}

func (s *Server) phoneFactors() (phoneBinder, authn.Factor, bool) {
	pf, _ := s.factorNamed(phone.Name).(phoneBinder)
	sf := s.factorNamed("sms")
	return pf, sf, pf != nil && sf != nil
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, 16<<10))
	if err != nil || json.Unmarshal(b, v) != nil {
		apierr.WriteCode(w, r, apierr.InvalidRequest, "the request body is not the JSON object expected")
		return false
	}
	return true
}

func (s *Server) phoneBindStart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, sf, ok := s.phoneFactors()
	if !ok {
		apierr.WriteCode(w, r, apierr.NotFound, "the phone app is not enabled here")
		return
	}
	var in struct {
		LoginName string `json:"login_name"`
		Password  string `json:"password"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	ip := s.clientIP(r)
	sub, err := s.passport.Lookup(ctx, strings.TrimSpace(in.LoginName))
	if err != nil {
		apierr.WriteCode(w, r, apierr.Unavailable, "The service is busy. Try again in a moment.")
		return
	}
	// The app cannot show the captcha the login page asks after a failed
	// attempt: then the customer first signs in on the page (which clears
	// it), and no password is tried here.
	if need, err := s.passport.CaptchaRequired(ctx, sub, ip); err != nil || need {
		apierr.WriteCode(w, r, apierr.CaptchaRequired, "After a failed sign-in, sign in once on the bank's web page, then bind the app.")
		return
	}
	c, err := s.passport.CheckPassword(ctx, sub, in.Password, ip)
	var le *authn.LockedError
	var be *passport.BadCredentialsError
	switch {
	case errors.As(err, &le):
		apierr.Write(w, r, s.now(), le)
		return
	case errors.As(err, &be):
		apierr.WriteCode(w, r, apierr.BadCredentials, be.Error())
		return
	case err != nil:
		apierr.WriteCode(w, r, apierr.IPLimited, "Too many attempts from this address; wait before trying again.")
		return
	}
	ch, err := sf.Begin(ctx, authn.BeginRequest{PassportID: c.PassportID, Purpose: authn.PurposeLogin, ClientIP: ip})
	if err != nil {
		orders.WriteError(w, r, err)
		return
	}
	id := make([]byte, 16)
	rand.Read(id)
	bind := base64.RawURLEncoding.EncodeToString(id)
	if _, err := s.db.Exec(ctx, `INSERT INTO phone_binds (id, passport_id, sms_challenge, expires_ms) VALUES (?, ?, ?, ?)`,
		bind, c.PassportID, ch.ID, ch.ExpiresAt.UnixMilli()); err != nil {
		apierr.WriteCode(w, r, apierr.Unavailable, "The service is busy. Try again in a moment.")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"bind_id": bind, "prompt": ch.Prompt})
}

func (s *Server) phoneBindFinish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pf, sf, ok := s.phoneFactors()
	if !ok {
		apierr.WriteCode(w, r, apierr.NotFound, "the phone app is not enabled here")
		return
	}
	var in struct {
		BindID    string `json:"bind_id"`
		SMSCode   string `json:"sms_code"`
		PublicKey []byte `json:"public_key"`
		PINSalt   []byte `json:"pin_salt"`
		PINKey    []byte `json:"pin_key"`
		Label     string `json:"label"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	var pid, smsCh string
	now := s.now().UnixMilli()
	if err := s.db.QueryRow(ctx, `SELECT passport_id, sms_challenge FROM phone_binds WHERE id = ? AND used_ms IS NULL AND expires_ms > ?`, in.BindID, now).Scan(&pid, &smsCh); err != nil {
		apierr.WriteCode(w, r, apierr.UnknownBinding, "This binding has expired or was used; start again.")
		return
	}
	ip := s.clientIP(r)
	_, err := authn.Counted(ctx, sf, s.passport, authn.VerifyRequest{PassportID: pid, ChallengeID: smsCh, Response: []byte(strings.TrimSpace(in.SMSCode)), ClientIP: ip})
	if err != nil {
		s.audit.Append(ctx, "phone.bind", map[string]string{"subject": "pid:" + pid, "ip": ip, "outcome": orders.Code(err)})
		orders.WriteError(w, r, err)
		return
	}
	res, err := s.db.Exec(ctx, `UPDATE phone_binds SET used_ms = ? WHERE id = ? AND used_ms IS NULL`, now, in.BindID)
	if n, _ := res.RowsAffected(); err != nil || n != 1 {
		apierr.WriteCode(w, r, apierr.UnknownBinding, "This binding was used; start again.")
		return
	}
	d, err := pf.Bind(ctx, pid, in.PublicKey, in.PINSalt, in.PINKey, in.Label)
	if err != nil {
		apierr.WriteCode(w, r, apierr.InvalidRequest, "The app's key or PIN key is not acceptable: "+err.Error())
		return
	}
	if !s.auditOr503JSON(w, r, "phone.bind", map[string]string{"subject": "pid:" + pid, "ip": ip, "outcome": "ok", "device": d.ID}) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"device_id": d.ID, "passport_id": pid})
}

func (s *Server) auditOr503JSON(w http.ResponseWriter, r *http.Request, kind string, fields map[string]string) bool {
	ctx := r.Context()
	if _, err := s.audit.Append(ctx, kind, fields); err != nil {
		apierr.WriteCode(w, r, apierr.Unavailable, "The service is busy. Try again in a moment.")
		return false
	}
	return true
}
