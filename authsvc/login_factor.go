package authsvc

// The second-factor step: which tools a customer may use, the choice page,
// beginning a challenge and verifying the answer.

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/oidcop"
)

// renderLockedFactor is the locked page for a second-factor tool: the
// customer's other tools of the level are still offered.
func (s *Server) renderLockedFactor(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, f *flow, fac authn.Factor, le *authn.LockedError) {
	p := lockedPage(le)
	p.ID, p.Client, p.Level, p.Factors = ar.ID, ar.GetClientID(), ar.RequiredLevel(), s.otherFactors(r, ar, f, fac)
	p.Back, p.BackTo = backURL(ar, "access_denied", "the customer's "+le.Factor+" is locked"), ar.GetClientID()
	s.render(w, http.StatusForbidden, "locked", p)
}

// otherFactors are the customer's tools of the level other than fac.
func (s *Server) otherFactors(r *http.Request, ar *oidcop.AuthRequest, f *flow, fac authn.Factor) []choice {
	return choicesOf(s.usableFactors(r.Context(), f.PassportID, ar.RequiredLevel()), fac)
}

// choicesOf are the buttons for fs, leaving out except (nil: none).
func choicesOf(fs []authn.Factor, except authn.Factor) []choice {
	var out []choice
	for _, f := range fs {
		if f != except {
			out = append(out, choice{Name: f.Name(), Label: factorLabel(f), Level: int(f.Level())})
		}
	}
	return out
}

// usableFactors are the customer's enrolled tools at or above the level.
func (s *Server) usableFactors(ctx context.Context, pid string, level int) []authn.Factor {
	var out []authn.Factor
	for _, f := range s.factors {
		if int(f.Level()) < level {
			continue
		}
		if ok, err := f.Enrolled(ctx, pid); err == nil && ok {
			out = append(out, f)
		}
	}
	return out
}

func (s *Server) showFactors(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, f *flow, msg string) {
	fs := s.usableFactors(r.Context(), f.PassportID, ar.RequiredLevel())
	switch len(fs) {
	case 0:
		s.deadEnd(w, ar, http.StatusForbidden, "A stronger tool is needed",
			"This platform needs level "+strconv.Itoa(ar.RequiredLevel())+", and no authentication tool of that level is enrolled for you. Visit a branch or enroll one in the online bank.", "no_factor")
	case 1:
		s.beginFactor(w, r, ar, f, fs[0])
	default:
		cs := choicesOf(fs, nil)
		code := ""
		if msg != "" {
			code = "invalid_request"
		}
		s.render(w, http.StatusOK, "factor_choose", page{ID: ar.ID, Client: ar.GetClientID(), Level: ar.RequiredLevel(), Factors: cs, Error: msg, ErrorCode: code})
	}
}

func (s *Server) factorNamed(name string) authn.Factor {
	for _, f := range s.factors {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

func (s *Server) beginFactor(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, f *flow, fac authn.Factor) {
	s.beginFactorMsg(w, r, ar, f, fac, http.StatusOK, "", "")
}

// beginFactorMsg begins a challenge of fac and shows it, with an error
// from the previous answer when msg is set.
func (s *Server) beginFactorMsg(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, f *flow, fac authn.Factor, status int, msg, code string) {
	ctx := r.Context()
	ch, err := fac.Begin(ctx, authn.BeginRequest{PassportID: f.PassportID, Purpose: authn.PurposeLogin, ClientIP: s.clientIP(r)})
	var le *authn.LockedError
	switch {
	case errors.As(err, &le):
		s.renderLockedFactor(w, r, ar, f, fac, le)
		return
	case err != nil:
		pr := s.printer(r)
		s.message(w, http.StatusServiceUnavailable, pr.T("pp.try_again_title"), pr.T("pp.tool_not_started", s.toolIn(pr, fac), pr.Refusal(factorCode(err), safeFactorError(err))), factorCode(err))
		return
	}
	f.Factor, f.Challenge, f.Prompt, f.Proof, f.Data, f.Order, f.Autostart = fac.Name(), ch.ID, ch.Prompt, answerIsProof(fac), "", "", ""
	if f.Proof {
		// A signature tool answers through a signing order.
		s.beginOrder(w, r, ar, f, fac, ch, status, msg, code)
		return
	}
	if !s.saveFlow(ctx, w, ar.ID, f) {
		return
	}
	s.renderFactor(w, r, status, ar, f, fac, msg, code)
}

// renderFactor shows fac's open challenge, and the customer's other tools
// of the level, any of which replaces it (POST /login/factor/begin): a
// customer whose token is at home uses the SMS code instead.
func (s *Server) renderFactor(w http.ResponseWriter, r *http.Request, status int, ar *oidcop.AuthRequest, f *flow, fac authn.Factor, msg, code string) {
	s.render(w, status, "factor", page{ID: ar.ID, Client: ar.GetClientID(), Level: ar.RequiredLevel(), Factor: fac.Name(), FactorLabel: factorLabel(fac),
		Prompt: f.Prompt, Data: f.Data, Proof: f.Proof, Error: msg, ErrorCode: code, Factors: s.otherFactors(r, ar, f, fac)})
}

// choice is a tool offered on the choice page.
type choice struct {
	Name, Label string
	Level       int
}

// Optional methods of an authn.Factor that the login pages use when a tool
// has them (authsvc/sms, gridcard, otp, ushield and pivauth do).
type (
	// labeled names the tool for customers ("Dynamic-password token").
	labeled interface{ Label() string }
	// proofAnswer: the answer is an EGP1 signature proof
	// (devices/pkcs11token) over Challenge.Data, made on the customer's
	// device: the page shows Data and follows a signing order
	// (orders_login.go) that the device answers.
	proofAnswer interface{ AnswerIsProof() bool }
	// oneTry: a wrong answer uses up the challenge, so the page begins a
	// new one at once.
	oneTry interface{ ChallengeUsedByFailure() bool }
)

func factorLabel(f authn.Factor) string {
	if l, ok := f.(labeled); ok {
		return l.Label()
	}
	return f.Name()
}

func answerIsProof(f authn.Factor) bool {
	p, ok := f.(proofAnswer)
	return ok && p.AnswerIsProof()
}

func challengeUsedByFailure(f authn.Factor) bool {
	o, ok := f.(oneTry)
	return ok && o.ChallengeUsedByFailure()
}

// formResponse is the answer as the factor takes it: a proof tool's base64
// (standard or URL alphabet, padding and white space optional) decoded;
// anything that does not decode goes as typed, and the tool calls it
// malformed.
func formResponse(v string, proof bool) []byte {
	if !proof {
		return []byte(strings.TrimSpace(v))
	}
	v = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, v)
	v = strings.TrimRight(v, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			return b
		}
	}
	return []byte(v)
}

func (s *Server) factorBegin(w http.ResponseWriter, r *http.Request) {
	ar, f, ok := s.loadFlow(w, r)
	if !ok {
		return
	}
	if f.Step != stepFactor {
		s.message(w, http.StatusBadRequest, "Sign-in out of order", "Start the sign-in again from the platform.", "invalid_request")
		return
	}
	fac := s.factorNamed(r.PostFormValue("factor"))
	if fac == nil || !slices.ContainsFunc(s.usableFactors(r.Context(), f.PassportID, ar.RequiredLevel()), func(x authn.Factor) bool { return x == fac }) {
		s.showFactors(w, r, ar, f, "Choose one of the tools shown.")
		return
	}
	s.beginFactor(w, r, ar, f, fac)
}

func (s *Server) factorVerify(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, f, ok := s.loadFlow(w, r)
	if !ok {
		return
	}
	fac := s.factorNamed(f.Factor)
	if f.Step != stepFactor || fac == nil || f.Challenge == "" {
		s.message(w, http.StatusBadRequest, "Sign-in out of order", "Start the sign-in again from the platform.", "invalid_request")
		return
	}
	if f.Proof {
		// Signature tools answer through their signing order only.
		s.beginFactorMsg(w, r, ar, f, fac, http.StatusBadRequest, "Confirm with your "+factorLabel(fac)+" as this page shows.", "use_order")
		return
	}
	ip := s.clientIP(r)
	// The answer is counted once, on the tool's one counter (authn.Counted:
	// the tool's own, or the passport's per-factor counter). An answer the
	// tool could not check (its HSM failed) is no failure: nothing is
	// counted against the customer or the address.
	res, err := authn.Counted(ctx, fac, s.passport, authn.VerifyRequest{PassportID: f.PassportID, ChallengeID: f.Challenge,
		Response: formResponse(r.PostFormValue("response"), f.Proof), ClientIP: ip, Purpose: authn.PurposeLogin})
	unchecked := errors.Is(err, authn.ErrUnavailable)
	var le *authn.LockedError
	if err != nil {
		if !s.auditLogin(ctx, w, "login.factor", ar, f, ip, factorCode(err), "factor", fac.Name()) {
			return
		}
		switch {
		case unchecked:
			// The internals go to the log with the request id; the page
			// keeps the same challenge for the same answer.
			s.logFactorFault(r, fac, err)
			w.Header().Set("Retry-After", "1")
			s.renderFactor(w, r, http.StatusServiceUnavailable, ar, f, fac, authn.ErrUnavailable.Error(), factorCode(err))
		case errors.As(err, &le):
			s.renderLockedFactor(w, r, ar, f, fac, le)
		case errors.Is(err, authn.ErrExpired), errors.Is(err, authn.ErrUsed), errors.Is(err, authn.ErrUnknown):
			s.beginFactorMsg(w, r, ar, f, fac, http.StatusUnauthorized, "That challenge had expired or was already used; answer this new one.", factorCode(err))
		case challengeUsedByFailure(fac):
			s.beginFactorMsg(w, r, ar, f, fac, http.StatusUnauthorized, safeFactorError(err), factorCode(err))
		default:
			s.renderFactor(w, r, http.StatusUnauthorized, ar, f, fac, safeFactorError(err), factorCode(err))
		}
		return
	}
	s.factorPassed(w, r, ar, f, fac, ip, res)
}

// factorPassed records a tool's success and finishes the login at the
// level reached.
func (s *Server) factorPassed(w http.ResponseWriter, r *http.Request, ar *oidcop.AuthRequest, f *flow, fac authn.Factor, ip string, res authn.Result, extra ...string) {
	ctx := r.Context()
	if !s.auditLogin(ctx, w, "login.factor", ar, f, ip, "ok", append([]string{"factor", fac.Name(), "level", strconv.Itoa(int(res.Level)),
		"confirmed_on_device", strconv.FormatBool(res.ConfirmedOnDevice)}, extra...)...) {
		return
	}
	level := max(f.Level, int(res.Level))
	amr := slices.Clone(f.AMR)
	if res.AMR != "" && !slices.Contains(amr, res.AMR) {
		amr = append(amr, res.AMR)
	}
	if len(amr) > 1 && !slices.Contains(amr, "mfa") {
		amr = append(amr, "mfa")
	}
	var sessTok string
	if f.FromSSO {
		_, sessTok, _ = s.session(r)
	}
	s.complete(w, r, ar, f.PassportID, level, amr, s.now(), false, sessTok)
}

// factorCode is the stable code of a tool's error, from the one table
// (authsvc/apierr), as the JSON APIs answer it.
func factorCode(err error) string { return apierr.Of(err).Name }

// safeFactorError is what the page says about a tool's error: the table's
// message for its code, never a wrapped detail that might carry device
// internals.
func safeFactorError(err error) string { return apierr.Of(err).Message }
