package authsvc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/factors"
	"github.com/egate-bank/egate/authsvc/gridcard"
	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/authsvc/sms"
	"github.com/egate-bank/egate/authsvc/wdpin"
)

// SelfServiceLevel is the level an access token must carry (its acr) for
// the customer's self-service APIs (/api/v1/self…): a platform asks the
// customer to step up first.
const SelfServiceLevel = 2

// WithdrawalPINLevel is the level an access token must carry to set the
// customer's withdrawal PIN (PUT /api/v1/self/withdrawal-pin): it guards
// cash at an ATM.
const WithdrawalPINLevel = 3

// SelfService is what the self-service APIs need beyond the passport: the
// customer's tools, the limit table and the withdrawal PINs. Without Tools
// no tool is listed, bound or revoked; without Limits the limit APIs, and
// without WithdrawalPINs the withdrawal PIN API, answer 503.
type SelfService struct {
	Tools          *factors.Set
	Limits         *limits.Counter
	WithdrawalPINs *wdpin.Service
}

// SetSelfService gives the server the tools and the limit counter (they are
// built after it: the transaction service needs the passport). Call before
// serving.
func (s *Server) SetSelfService(ss SelfService) { s.self = ss }

// tokenLevel is the level an access token proves (its acr claim).
func tokenLevel(claims *oidc.AccessTokenClaims) int {
	acr, _ := claims.Claims["acr"].(string)
	return oidcop.ParseACR(acr)
}

// selfLevel wraps a self-service handler: a token below SelfServiceLevel
// is refused with step_up_required before anything is read.
func (s *Server) selfLevel(next bearerHandler) bearerHandler {
	return func(w http.ResponseWriter, r *http.Request, claims *oidc.AccessTokenClaims) {
		if tokenLevel(claims) < SelfServiceLevel {
			apierr.WriteCode(w, r, apierr.StepUpRequired, fmt.Sprintf("self-service needs level %d: log in again with a stronger tool", SelfServiceLevel))
			return
		}
		next(w, r, claims)
	}
}

// SelfTool is one of the customer's tools as the self-service API lists it.
type SelfTool struct {
	Tool   string `json:"tool"`   // sms, gridcard, otp, ushield, ushield2, piv, phone
	ID     string `json:"id"`     // what POST /api/v1/self/tools/lost takes ("" for sms)
	Ref    string `json:"ref"`    // what the customer recognises: a masked number or serial
	Level  int    `json:"level"`  // the level it proves
	Status string `json:"status"` // active, lost, revoked, replaced
}

// Self is the answer of GET /api/v1/self.
type Self struct {
	Level           int          `json:"level"` // the access token's
	ReservedMessage string       `json:"reserved_message"`
	Mobile          string       `json:"mobile"` // the customer's own, for their platforms (ebank's receive-by-mobile)
	Tools           []SelfTool   `json:"tools"`
	Limits          limits.Table `json:"limits"`     // the bank's table
	OwnLimits       limits.Table `json:"own_limits"` // the table lowered by the customer's own
	Usage           limits.Usage `json:"usage"`      // moved today and this year, fen
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false
	}
	return true
}

func levelOf(set *factors.Set, name string) int {
	if f := set.Factor(name); f != nil {
		return int(f.Level())
	}
	return 0
}

func shortRef(s string) string {
	if len(s) <= 4 {
		return s
	}
	return "…" + s[len(s)-4:]
}

// tools lists the customer's tools of every kind the bank has enabled.
func (s *Server) tools(r *http.Request, c passport.Customer) ([]SelfTool, error) {
	ctx, set, pid := r.Context(), s.self.Tools, c.PassportID
	out := []SelfTool{}
	if set == nil {
		return out, nil
	}
	if set.SMS != nil && c.Mobile != "" {
		out = append(out, SelfTool{Tool: "sms", Ref: sms.MaskPhone(c.Mobile), Level: levelOf(set, "sms"), Status: "active"})
	}
	if set.GridCard != nil {
		cards, err := set.GridCard.Cards(ctx, pid)
		if err != nil {
			return nil, err
		}
		for _, cd := range cards {
			out = append(out, SelfTool{Tool: "gridcard", ID: cd.Serial, Ref: shortRef(cd.Serial), Level: levelOf(set, "gridcard"), Status: cd.Status})
		}
	}
	if set.OTP != nil {
		toks, err := set.OTP.TokensOf(ctx, pid)
		if err != nil {
			return nil, err
		}
		for _, t := range toks {
			out = append(out, SelfTool{Tool: "otp", ID: t.Serial + "/" + t.KeyID, Ref: t.Serial, Level: levelOf(set, "otp"), Status: t.Status})
		}
	}
	if set.UShield != nil {
		toks, err := set.UShield.Tokens(ctx, pid)
		if err != nil {
			return nil, err
		}
		for _, t := range toks {
			name, st := "ushield", "active"
			if t.Generation == 2 {
				name = "ushield2"
			}
			if t.Lost {
				st = "lost"
			}
			out = append(out, SelfTool{Tool: name, ID: t.CertSerial, Ref: t.TokenSerial, Level: levelOf(set, name), Status: st})
		}
	}
	if set.PIV != nil {
		toks, err := set.PIV.Tokens(ctx, pid)
		if err != nil {
			return nil, err
		}
		for _, t := range toks {
			out = append(out, SelfTool{Tool: "piv", ID: t.CertSerial, Ref: fmt.Sprintf("%d/%s", t.CardSerial, t.Slot), Level: levelOf(set, "piv"), Status: t.Status})
		}
	}
	if set.Phone != nil {
		devs, err := set.Phone.Devices(ctx, pid)
		if err != nil {
			return nil, err
		}
		for _, d := range devs {
			st := "active"
			if d.Revoked {
				st = "revoked"
			}
			out = append(out, SelfTool{Tool: "phone", ID: d.ID, Ref: d.Label, Level: levelOf(set, "phone"), Status: st})
		}
	}
	return out, nil
}

// apiSelf: GET /api/v1/self, the customer's reserved message, tools and limits.
func (s *Server) apiSelf(w http.ResponseWriter, r *http.Request, claims *oidc.AccessTokenClaims) {
	ctx := r.Context()
	c, err := s.passport.Customer(ctx, claims.Subject)
	if err != nil {
		apierr.Write(w, r, s.now(), err)
		return
	}
	out := Self{Level: tokenLevel(claims), ReservedMessage: c.ReservedMessage, Mobile: c.Mobile}
	if out.Tools, err = s.tools(r, c); err != nil {
		apierr.Write(w, r, s.now(), err)
		return
	}
	if l := s.self.Limits; l != nil {
		out.Limits = l.Table()
		if out.OwnLimits, err = l.Effective(ctx, c.PassportID); err == nil {
			out.Usage, err = l.Usage(ctx, c.PassportID)
		}
		if err != nil {
			apierr.Write(w, r, s.now(), err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(out)
}

// apiReservedMessage: PUT /api/v1/self/reserved-message.
func (s *Server) apiReservedMessage(w http.ResponseWriter, r *http.Request, claims *oidc.AccessTokenClaims) {
	var body struct {
		Message string `json:"reserved_message"`
	}
	if !decodeJSON(w, r, &body) {
		apierr.WriteCode(w, r, apierr.InvalidRequest, `send JSON {"reserved_message": "…"}`)
		return
	}
	err := s.passport.SetReservedMessage(r.Context(), claims.Subject, body.Message)
	switch {
	case errors.Is(err, passport.ErrInvalid):
		apierr.WriteCode(w, r, apierr.InvalidRequest, "the reserved message must be 1–64 characters on one line")
	case err != nil:
		apierr.Write(w, r, s.now(), err)
	default:
		s.audit.Append(r.Context(), "self.reserved_message", map[string]string{"subject": "pid:" + claims.Subject, "ip": s.clientIP(r)})
		w.WriteHeader(http.StatusNoContent)
	}
}

// apiOwnLimits: PUT /api/v1/self/limits, one level's own limits, each at
// most the bank's; the bank's own values remove the customer's.
func (s *Server) apiOwnLimits(w http.ResponseWriter, r *http.Request, claims *oidc.AccessTokenClaims) {
	if s.self.Limits == nil {
		apierr.WriteCode(w, r, apierr.Unavailable, "")
		return
	}
	var l limits.Limit
	if !decodeJSON(w, r, &l) {
		apierr.WriteCode(w, r, apierr.InvalidRequest, `send JSON {"level": N, "per_transaction": fen, "per_day": fen, "per_year": fen}`)
		return
	}
	err := s.self.Limits.SetOwn(r.Context(), claims.Subject, l)
	switch {
	case errors.Is(err, limits.ErrRaise):
		apierr.Write(w, r, s.now(), apierr.Wrap(apierr.LimitAboveBank, err))
		return
	case errors.Is(err, limits.ErrConfig):
		apierr.WriteCode(w, r, apierr.InvalidRequest, "give a level of the table and amounts in fen, none negative, per-transaction ≤ per-day ≤ per-year")
		return
	case err != nil:
		apierr.Write(w, r, s.now(), err)
		return
	}
	s.audit.Append(r.Context(), "self.limits", map[string]string{"subject": "pid:" + claims.Subject, "level": fmt.Sprint(l.Level),
		"per_transaction": fmt.Sprint(l.PerTxn), "per_day": fmt.Sprint(l.PerDay), "per_year": fmt.Sprint(l.PerYear)})
	eff, err := s.self.Limits.Effective(r.Context(), claims.Subject)
	if err != nil {
		apierr.Write(w, r, s.now(), err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"own_limits": eff})
}

// apiBindOTP: POST /api/v1/self/tools/otp, bind a token of the bank's
// stock (imported, nobody's) by its serial and two consecutive codes.
func (s *Server) apiBindOTP(w http.ResponseWriter, r *http.Request, claims *oidc.AccessTokenClaims) {
	ctx := r.Context()
	if s.self.Tools == nil || s.self.Tools.OTP == nil {
		apierr.WriteCode(w, r, apierr.NotEnrolled, "the bank has no dynamic-password tokens")
		return
	}
	svc := s.self.Tools.OTP
	var body struct {
		Serial string `json:"serial"`
		Code1  string `json:"code1"`
		Code2  string `json:"code2"`
	}
	if !decodeJSON(w, r, &body) || strings.TrimSpace(body.Serial) == "" || body.Code1 == "" || body.Code2 == "" {
		apierr.WriteCode(w, r, apierr.InvalidRequest, `send JSON {"serial": "…", "code1": "…", "code2": "…"}: the serial on the token's back and two codes it shows one after the other`)
		return
	}
	t, err := svc.TokenBySerial(ctx, strings.TrimSpace(body.Serial), "")
	switch {
	case errors.Is(err, oath.ErrUnknownToken), errors.Is(err, oath.ErrAmbiguous):
		apierr.WriteCode(w, r, apierr.UnknownToken, "no token with that serial: check the serial on the token's back")
		return
	case err != nil:
		apierr.Write(w, r, s.now(), err)
		return
	case t.PassportID == claims.Subject && t.Status == "active":
		apierr.WriteCode(w, r, apierr.TokenTaken, "this token is already yours")
		return
	case t.PassportID != "" || t.Status != "active":
		apierr.WriteCode(w, r, apierr.TokenTaken, "")
		return
	}
	// Two consecutive codes prove the token is in the customer's hand and
	// move its replay mark past them: neither is accepted again.
	if _, err := svc.Resync(ctx, t, body.Code1, body.Code2); err != nil {
		apierr.Write(w, r, s.now(), err)
		return
	}
	if err := svc.Assign(ctx, t.Serial, t.KeyID, claims.Subject); err != nil {
		if errors.Is(err, oath.ErrAssigned) || errors.As(err, new(*oath.AssignedError)) || errors.Is(err, oath.ErrRevoked) {
			apierr.WriteCode(w, r, apierr.TokenTaken, "")
			return
		}
		apierr.Write(w, r, s.now(), err)
		return
	}
	s.audit.Append(ctx, "self.tool_bound", map[string]string{"subject": "pid:" + claims.Subject, "tool": "otp", "serial": t.Serial, "ip": s.clientIP(r)})
	s.alerts.Post(ctx, claims.Subject, alerts.KindTool, alerts.Tool{Time: s.now().UTC(), Event: "bound", Tool: "otp", Ref: shortRef(t.Serial), IP: s.clientIP(r)})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(SelfTool{Tool: "otp", ID: t.Serial + "/" + t.KeyID, Ref: t.Serial, Level: levelOf(s.self.Tools, "otp"), Status: "active"})
}

// apiReportLost: POST /api/v1/self/tools/lost {"tool","id"}: the tool is
// revoked at once and an alert is posted.
func (s *Server) apiReportLost(w http.ResponseWriter, r *http.Request, claims *oidc.AccessTokenClaims) {
	ctx, pid, set := r.Context(), claims.Subject, s.self.Tools
	var body struct {
		Tool string `json:"tool"`
		ID   string `json:"id"`
	}
	if !decodeJSON(w, r, &body) || body.Tool == "" || body.ID == "" {
		apierr.WriteCode(w, r, apierr.InvalidRequest, `send JSON {"tool": "…", "id": "…"} as GET /api/v1/self lists them`)
		return
	}
	if set == nil {
		set = &factors.Set{}
	}
	var err error
	ref := shortRef(body.ID)
	switch body.Tool {
	case "gridcard":
		if set.GridCard == nil {
			err = authn.ErrNotEnrolled
		} else if err = set.GridCard.ReportLost(ctx, pid, body.ID); errors.Is(err, gridcard.ErrNoSuchCard) {
			err = authn.ErrNotEnrolled
		}
	case "otp":
		err = s.revokeOTP(r, pid, body.ID)
		serial, _, _ := strings.Cut(body.ID, "/")
		ref = serial
	case "ushield", "ushield2":
		if set.UShield == nil {
			err = authn.ErrNotEnrolled
		} else {
			err = set.UShield.ReportLost(ctx, pid, body.ID)
		}
	case "piv":
		if set.PIV == nil {
			err = authn.ErrNotEnrolled
		} else {
			err = set.PIV.ReportLost(ctx, pid, body.ID)
		}
	case "phone":
		if set.Phone == nil {
			err = authn.ErrNotEnrolled
		} else {
			err = set.Phone.Revoke(ctx, pid, body.ID)
		}
	default:
		apierr.WriteCode(w, r, apierr.InvalidRequest, "tool must be gridcard, otp, ushield, ushield2, piv or phone (a lost phone number: call the bank)")
		return
	}
	if errors.Is(err, authn.ErrNotEnrolled) {
		apierr.WriteCode(w, r, apierr.UnknownTool, "")
		return
	}
	if err != nil {
		apierr.Write(w, r, s.now(), err)
		return
	}
	s.audit.Append(ctx, "self.tool_lost", map[string]string{"subject": "pid:" + pid, "tool": body.Tool, "id": body.ID, "ip": s.clientIP(r)})
	s.alerts.Post(ctx, pid, alerts.KindTool, alerts.Tool{Time: s.now().UTC(), Event: "lost", Tool: body.Tool, Ref: ref, IP: s.clientIP(r)})
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"tool": body.Tool, "id": body.ID, "status": "revoked"})
}

// apiWithdrawalPIN: PUT /api/v1/self/withdrawal-pin {"pin"}, at
// WithdrawalPINLevel: the customer's withdrawal PIN for the QR cardless
// withdrawal, kept as an HMAC in the HSM (wdpin.Set, which also clears the
// PIN's wrong tries). The PIN is in no log, error, audit or alert.
func (s *Server) apiWithdrawalPIN(w http.ResponseWriter, r *http.Request, claims *oidc.AccessTokenClaims) {
	ctx, pid := r.Context(), claims.Subject
	if tokenLevel(claims) < WithdrawalPINLevel {
		apierr.WriteCode(w, r, apierr.StepUpRequired, fmt.Sprintf("setting the withdrawal PIN needs level %d: log in again with a dynamic-password token or the phone app", WithdrawalPINLevel))
		return
	}
	pins := s.self.WithdrawalPINs
	if pins == nil {
		apierr.WriteCode(w, r, apierr.Unavailable, "")
		return
	}
	var body struct {
		PIN string `json:"pin"`
	}
	if !decodeJSON(w, r, &body) {
		apierr.WriteCode(w, r, apierr.InvalidRequest, fmt.Sprintf(`send JSON {"pin": "…"}: %d digits`, wdpin.NewPINLength))
		return
	}
	pin := []byte(body.PIN)
	defer clear(pin)
	switch err := wdpin.CheckNew(pin); {
	case errors.Is(err, wdpin.ErrWeakPIN):
		apierr.Write(w, r, s.now(), apierr.Wrap(apierr.WeakPIN, err))
		return
	case err != nil:
		apierr.WriteCode(w, r, apierr.InvalidRequest, err.Error())
		return
	}
	if err := pins.Set(ctx, pid, pin); err != nil {
		apierr.Write(w, r, s.now(), err)
		return
	}
	s.audit.Append(ctx, "self.withdrawal_pin", map[string]string{"subject": "pid:" + pid, "ip": s.clientIP(r)})
	s.alerts.Post(ctx, pid, alerts.KindTool, alerts.Tool{Time: s.now().UTC(), Event: "set", Tool: wdpin.Factor, IP: s.clientIP(r)})
	w.WriteHeader(http.StatusNoContent)
}

// revokeOTP revokes the customer's active token id ("serial/key id").
func (s *Server) revokeOTP(r *http.Request, pid, id string) error {
	if s.self.Tools == nil || s.self.Tools.OTP == nil {
		return authn.ErrNotEnrolled
	}
	serial, keyID, _ := strings.Cut(id, "/")
	t, err := s.self.Tools.OTP.TokenBySerial(r.Context(), serial, keyID)
	if errors.Is(err, oath.ErrUnknownToken) || errors.Is(err, oath.ErrAmbiguous) || (err == nil && (t.PassportID != pid || t.Status != "active")) {
		return authn.ErrNotEnrolled
	}
	if err != nil {
		return err
	}
	return s.self.Tools.OTP.Revoke(r.Context(), t.Serial, t.KeyID)
}
