package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/egate-bank/egate/authsvc/limits"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/platform/ebank"
)

// SelfServiceLevel is the level the self-service pages ask for (the
// passport's authsvc.SelfServiceLevel, which it checks again on every
// call): a session below it is offered the step-up.
const SelfServiceLevel = 2

// WithdrawalPINLevel is the level the withdrawal PIN form asks for (the
// passport's authsvc.WithdrawalPINLevel, checked again there).
const WithdrawalPINLevel = 3

// settingsData is the self-service page.
type settingsData struct {
	StepUp  bool
	Need    int
	Self    Self
	Levels  []levelRow
	Tools   []toolRow
	Code    string // the passport's error code of a refusal, for data-code
	Issuer  string // the passport, for the hardware-token enrolment links
	Section string // the section a refusal or a notice is about
	// Receive-by-mobile (Pages.Mobiles): the customer's own mobile number
	// (masked), the account it receives into ("" none), and their accounts.
	Mobile, Receives string
	Accounts         []accountRow
	// The withdrawal PIN form: shown at WDPINNeed and above, else a
	// step-up link to it.
	WDPINNeed int
	WDPINOK   bool
}

type levelRow struct {
	Level                 int
	Tools                 string
	Bank, Own             limits.Limit
	Lowered               bool
	OwnTxn, OwnDay, OwnYr string // the form's values, yuan
}

type toolRow struct {
	Tool
	Name, StatusText string
	Active           bool
}

// levelTools says which tools reach each level (the design's table).
var levelTools = map[int][]string{1: {"password"}, 2: {"sms", "gridcard"}, 3: {"otp", "phone"}, 4: {"ushield", "piv"}, 5: {"ushield2"}}

// settings: GET /settings.
func (p *Pages) settings(w http.ResponseWriter, r *http.Request, v *view) {
	p.showSettings(w, r, v, http.StatusOK, "", "", "", "")
}

// showSettings renders the page; errKey or notice (message keys) say how
// the last action went, code is the passport's error code.
func (p *Pages) showSettings(w http.ResponseWriter, r *http.Request, v *view, status int, section, errKey, code, notice string) {
	d := settingsData{Need: SelfServiceLevel, Code: code, Section: section, WDPINNeed: WithdrawalPINLevel, WDPINOK: v.C.Level >= WithdrawalPINLevel}
	if p.Passport != nil {
		d.Issuer = strings.TrimRight(p.Passport.Issuer, "/")
	}
	if errKey != "" {
		v.Error = v.P.T(errKey)
	}
	if notice != "" {
		v.Notice = v.P.T(notice)
	}
	v.Title = v.P.T("self.title")
	if v.C.Level < SelfServiceLevel || v.C.Token == "" || p.Passport == nil {
		d.StepUp = true
		if r.Method == http.MethodPost {
			status = http.StatusForbidden
		}
		v.Data = d
		p.render(w, status, "settings", v)
		return
	}
	self, err := p.Passport.Self(r.Context(), v.C.Token)
	var pe *PassportError
	if errors.As(err, &pe) && (pe.Code == "step_up_required" || pe.Code == "invalid_token") {
		d.StepUp, v.Data = true, d
		p.render(w, http.StatusForbidden, "settings", v)
		return
	}
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	d.Self = self
	for i, bank := range self.Limits {
		own := bank
		if i < len(self.OwnLimits) {
			own = self.OwnLimits[i]
		}
		names := make([]string, 0, 2)
		for _, t := range levelTools[bank.Level] {
			names = append(names, toolName(v.P, t))
		}
		d.Levels = append(d.Levels, levelRow{Level: bank.Level, Tools: strings.Join(names, v.P.T("dec.or")), Bank: bank, Own: own, Lowered: own != bank,
			OwnTxn: money.Yuan(own.PerTxn), OwnDay: money.Yuan(own.PerDay), OwnYr: money.Yuan(own.PerYear)})
	}
	if p.Mobiles != nil && self.Mobile != "" {
		d.Mobile = ebank.MaskMobile(self.Mobile)
		if d.Receives, _, err = p.Mobiles.Of(r.Context(), v.C.ID, self.Mobile); err != nil {
			p.fail(w, r, v, err)
			return
		}
		list, err := p.mine(r.Context(), v.C)
		if err != nil {
			p.fail(w, r, v, err)
			return
		}
		for _, a := range list {
			d.Accounts = append(d.Accounts, accountRow{Account: a, KindText: v.P.T("kind." + a.Kind)})
		}
	}
	for _, t := range self.Tools {
		d.Tools = append(d.Tools, toolRow{Tool: t, Name: toolName(v.P, t.Tool), StatusText: v.P.T("toolstatus." + t.Status), Active: t.Status == "active"})
	}
	v.Data = d
	p.render(w, status, "settings", v)
}

// selfAction runs one self-service call and shows the page again with its
// outcome: notice on success, else the refusal's sentence (keys maps the
// passport's codes to message keys; the shared ones are added).
func (p *Pages) selfAction(w http.ResponseWriter, r *http.Request, v *view, section, notice string, keys map[string]string, call func() error) {
	if v.C.Level < SelfServiceLevel || v.C.Token == "" || p.Passport == nil {
		p.showSettings(w, r, v, http.StatusForbidden, section, "self.need_level", "step_up_required", "")
		return
	}
	err := call()
	if err == nil {
		p.showSettings(w, r, v, http.StatusOK, section, "", "", notice)
		return
	}
	var pe *PassportError
	if !errors.As(err, &pe) {
		if errors.Is(err, errBadForm) {
			p.showSettings(w, r, v, http.StatusBadRequest, section, keys["invalid_request"], "invalid_request", "")
			return
		}
		if p.OnError != nil {
			p.OnError(r, err)
		}
		p.showSettings(w, r, v, http.StatusBadGateway, section, "err.generic", "unavailable", "")
		return
	}
	key := keys[pe.Code]
	if key == "" {
		key = map[string]string{"step_up_required": "self.need_level", "invalid_token": "self.expired", "locked": "self.tool_locked",
			"ip_limited": "self.ip_limited", "unavailable": "err.generic"}[pe.Code]
	}
	if key == "" {
		key = "err.generic"
	}
	status := pe.Status
	if status == http.StatusUnauthorized && pe.Code != "invalid_token" {
		status = http.StatusUnprocessableEntity // a wrong password or code: the customer's session is fine
	}
	p.showSettings(w, r, v, status, section, key, pe.Code, "")
}

var errBadForm = errors.New("the form is not filled in as asked")

// changePassword: POST /settings/password.
func (p *Pages) changePassword(w http.ResponseWriter, r *http.Request, v *view) {
	p.selfAction(w, r, v, "password", "self.changed", map[string]string{"bad_credentials": "self.bad_old", "weak_password": "self.weak",
		"locked": "self.locked", "invalid_request": "self.invalid"}, func() error {
		old, nw := r.PostFormValue("old_password"), r.PostFormValue("new_password")
		if old == "" || nw == "" {
			return errBadForm
		}
		return p.Passport.ChangePassword(r.Context(), v.C.Token, old, nw)
	})
}

// reservedMessage: POST /settings/reserved-message.
func (p *Pages) reservedMessage(w http.ResponseWriter, r *http.Request, v *view) {
	p.selfAction(w, r, v, "reserved", "self.reserved_changed", map[string]string{"invalid_request": "self.reserved_bad"}, func() error {
		m := strings.TrimSpace(r.PostFormValue("reserved_message"))
		if m == "" {
			return errBadForm
		}
		return p.Passport.SetReservedMessage(r.Context(), v.C.Token, m)
	})
}

// withdrawalPIN: POST /settings/withdrawal-pin, the new withdrawal PIN
// typed twice. Below WithdrawalPINLevel the page offers the step-up and
// nothing is sent; the PIN is never shown back.
func (p *Pages) withdrawalPIN(w http.ResponseWriter, r *http.Request, v *view) {
	pin, again := r.PostFormValue("pin"), r.PostFormValue("pin_again")
	if v.C.Level >= SelfServiceLevel && v.C.Token != "" && p.Passport != nil {
		if v.C.Level < WithdrawalPINLevel {
			p.showSettings(w, r, v, http.StatusForbidden, "wdpin", "self.wdpin_need_page", "step_up_required", "")
			return
		}
		if pin != "" && pin != again {
			p.showSettings(w, r, v, http.StatusBadRequest, "wdpin", "self.wdpin_mismatch", "invalid_request", "")
			return
		}
	}
	p.selfAction(w, r, v, "wdpin", "self.wdpin_done", map[string]string{"invalid_request": "self.wdpin_bad", "weak_pin": "self.wdpin_weak",
		"step_up_required": "self.wdpin_need_page"}, func() error {
		if len(pin) != 6 || strings.Trim(pin, "0123456789") != "" {
			return errBadForm
		}
		return p.Passport.SetWithdrawalPIN(r.Context(), v.C.Token, pin)
	})
}

// yuanOrZero reads an amount in yuan; "0" is zero (a level blocked).
func yuanOrZero(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "0" || s == "0.00" {
		return 0, nil
	}
	return money.ParseYuan(s)
}

// ownLimits: POST /settings/limits, one level's own limits in yuan.
func (p *Pages) ownLimits(w http.ResponseWriter, r *http.Request, v *view) {
	p.selfAction(w, r, v, "limits", "self.limits_changed", map[string]string{"invalid_request": "self.limits_bad", "limit_above_bank": "self.limits_above"}, func() error {
		level, err := strconv.Atoi(r.PostFormValue("level"))
		if err != nil {
			return errBadForm
		}
		l := limits.Limit{Level: level}
		for _, f := range []struct {
			name string
			to   *int64
		}{{"per_transaction", &l.PerTxn}, {"per_day", &l.PerDay}, {"per_year", &l.PerYear}} {
			if *f.to, err = yuanOrZero(r.PostFormValue(f.name)); err != nil {
				return errBadForm
			}
		}
		return p.Passport.SetOwnLimit(r.Context(), v.C.Token, l)
	})
}

// bindOTP: POST /settings/otp, a dynamic-password token by its serial and
// two consecutive codes.
func (p *Pages) bindOTP(w http.ResponseWriter, r *http.Request, v *view) {
	p.selfAction(w, r, v, "otp", "self.otp_bound", map[string]string{"invalid_request": "self.otp_form", "unknown_token": "self.otp_unknown",
		"token_taken": "self.otp_taken", "wrong_answer": "self.otp_wrong", "bad_response": "self.otp_form", "replay": "self.otp_wrong",
		"revoked": "self.otp_taken", "not_enrolled": "self.otp_none"}, func() error {
		g := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
		if g("serial") == "" || g("code1") == "" || g("code2") == "" {
			return errBadForm
		}
		return p.Passport.BindOTP(r.Context(), v.C.Token, g("serial"), g("code1"), g("code2"))
	})
}

// reportLost: POST /settings/lost, a tool revoked at once.
func (p *Pages) reportLost(w http.ResponseWriter, r *http.Request, v *view) {
	p.selfAction(w, r, v, "tools", "self.lost_done", map[string]string{"invalid_request": "self.lost_bad", "no_such_tool": "self.lost_none"}, func() error {
		tool, id := r.PostFormValue("tool"), r.PostFormValue("id")
		if tool == "" || id == "" {
			return errBadForm
		}
		return p.Passport.ReportLost(r.Context(), v.C.Token, tool, id)
	})
}

// receiveByMobile: POST /settings/mobile, the customer's own mobile number
// (as the passport has it, never from the form) receives transfers into one
// of their accounts.
func (p *Pages) receiveByMobile(w http.ResponseWriter, r *http.Request, v *view) {
	p.selfAction(w, r, v, "mobile", "self.mobile_done", map[string]string{"invalid_request": "self.mobile_bad"}, func() error {
		if p.Mobiles == nil {
			return errBadForm
		}
		self, err := p.Passport.Self(r.Context(), v.C.Token)
		if err != nil {
			return err
		}
		err = p.Mobiles.Register(r.Context(), v.C.ID, self.Mobile, r.PostFormValue("account"))
		if errors.Is(err, ebank.ErrBadMobile) || errors.Is(err, ebank.ErrNotYours) || errors.Is(err, ebank.ErrMobileTaken) {
			return errBadForm
		}
		return err
	})
}
