package authsvc

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/authsvc/orders"
	"github.com/egate-bank/egate/internal/i18n"
)

// Enrolment by the customer: a signed-in customer (passport session at
// level 2 or more: password and SMS code) opens /account/enrol?tool=ushield
// (or ushield2); the page makes a signing order of kind enrol and follows
// it like the login's factor step. The desktop helper, started by the
// autostart link, generates the key on the token, builds a CSR naming the
// order's challenge and sends it as the order's answer; the bank CA issues
// the certificate, the token is bound to the customer, and the helper
// writes the certificate back to the token. Only the browser that opened
// the page (cookie egate_enrol) follows the order.

const (
	enrolCookie   = "egate_enrol"
	enrolMinLevel = 2
	enrolTTL      = 5 * time.Minute
)

// enroller is a tool the customer can enrol through an order with a CSR
// (authsvc/ushield's factors).
type enroller interface {
	EnrolCSR(ctx context.Context, passportID, want string, csrDER []byte, label, serial string, keyID []byte) (*x509.Certificate, error)
}

// attestedEnroller is a tool enrolled with the token's attestation of the
// key it made (authsvc/pivauth): no CSR, the new key signs the order's
// data. CanEnrol is false when the bank accepts no vendor's attestation.
type attestedEnroller interface {
	EnrolAttested(ctx context.Context, passportID string, data, devDER, slotDER, sig []byte) (*x509.Certificate, error)
	CanEnrol() bool
}

// canEnrol reports whether the customer can enrol fac through an order.
func canEnrol(fac authn.Factor) bool {
	if _, ok := fac.(enroller); ok {
		return true
	}
	a, ok := fac.(attestedEnroller)
	return ok && a.CanEnrol()
}

// EnrolAnswer is what the helper sends as an enrolment order's response
// (the wire type lives in authsvc/orders, shared with the helper).
type EnrolAnswer = orders.EnrolAnswer

func (s *Server) enrolPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pr := s.printer(r)
	sess, _, ok := s.session(r)
	if !ok || sess.Level < enrolMinLevel {
		s.message(w, http.StatusForbidden, pr.T("pp.enrol_signin_title"), pr.T("pp.enrol_signin"), "login_required")
		return
	}
	fac := s.factorNamed(r.URL.Query().Get("tool"))
	if fac == nil || !canEnrol(fac) {
		s.message(w, http.StatusBadRequest, pr.T("pp.enrol_unknown_title"), pr.T("pp.enrol_unknown", s.enrollableIn(pr)), "unknown_tool")
		return
	}
	// The text the helper shows and the new key signs (a PIV card's
	// attested enrolment) is said in the page's language, chosen here
	// once: the order keeps it, the page and the device show the same.
	secret := oidcop.RandomToken()
	ch := make([]byte, 16)
	rand.Read(ch)
	o, auto, err := s.orders.Create(ctx, orders.CreateRequest{Kind: orders.KindEnrol, PassportID: sess.PassportID, Factor: fac.Name(), ChallengeID: "enrol",
		Context: "enrol", Text: pr.T("pp.enrol_text", s.toolIn(pr, fac), sess.PassportID), Challenge: ch, Browser: orders.BrowserHash(secret),
		ExpiresAt: s.now().Add(enrolTTL)})
	if err != nil {
		s.busy(w)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: enrolCookie, Value: secret, Path: s.base + "/account/", HttpOnly: true, Secure: s.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(enrolTTL / time.Second)})
	finish := s.base + "/account/enrol/finish"
	if back, _ := s.platformReturn(r.URL.Query().Get("client"), r.URL.Query().Get("return")); back != "" {
		finish += "?" + url.Values{"client": {r.URL.Query().Get("client")}, "return": {r.URL.Query().Get("return")}}.Encode()
	}
	v := &orderView{Ref: o.Ref, ByLink: true, Autostart: safeURL(orders.AutostartLink(s.cfg.Issuer, o.Ref, auto)),
		CollectURL: s.base + "/account/enrol/collect?ref=" + o.Ref, FinishURL: finish, CancelURL: s.base + "/account/enrol/cancel"}
	s.render(w, http.StatusOK, "enrol", page{Factor: fac.Name(), FactorLabel: factorLabel(fac), Data: string(o.Data), Order: v, Nonce: nonce(),
		Prompt: pr.T("pp.enrol_prompt", pr.Tool(fac.Name(), factorLabel(fac)))})
}

func enrolSecret(r *http.Request) string {
	c, err := r.Cookie(enrolCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// enrolCollect: GET /account/enrol/collect?ref=, polled by the page.
func (s *Server) enrolCollect(w http.ResponseWriter, r *http.Request) {
	o, err := s.orders.Collect(r.Context(), r.FormValue("ref"), orders.BrowserHash(enrolSecret(r)))
	if err != nil || o.Kind != orders.KindEnrol {
		orders.WriteError(w, r, orders.ErrUnknown)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(s.orderStatusOf(s.printer(r), o))
}

// enrolFinish: POST /account/enrol/finish (ref): the outcome.
func (s *Server) enrolFinish(w http.ResponseWriter, r *http.Request) {
	pr := s.printer(r)
	o, err := s.orders.Finish(r.Context(), r.PostFormValue("ref"), orders.BrowserHash(enrolSecret(r)))
	switch {
	case err == nil && o.Kind == orders.KindEnrol:
		serial := ""
		if c, err := x509.ParseCertificate(o.ResultData); err == nil {
			serial = fmt.Sprintf("%x", c.SerialNumber)
		}
		back, to := s.platformReturn(r.URL.Query().Get("client"), r.URL.Query().Get("return"))
		fac := s.factorNamed(o.Factor)
		s.render(w, http.StatusOK, "enrolled", page{Title: pr.T("pp.enrolled_title"), Back: back, BackTo: to,
			Message: pr.T("pp.enrolled", s.toolIn(pr, fac), serial, int(fac.Level()))})
	case errors.Is(err, orders.ErrNotComplete):
		s.message(w, http.StatusConflict, pr.T("pp.enrol_pending_title"), pr.T("pp.enrol_pending"), "order_pending")
	case err != nil && o != nil && o.State == orders.Failed:
		s.message(w, http.StatusUnauthorized, pr.T("pp.not_enrolled_title"), pr.T("pp.enrol_refused", codeRefusal(pr, o.FailCode)), o.FailCode)
	default:
		msg := orderRefusal(pr, err)
		if o != nil {
			if reason, ok := orders.DeviceReasons[o.FailCode]; ok {
				msg = pr.Refusal(o.FailCode, reason) + " " + msg
			}
		}
		s.message(w, orders.Status(err), pr.T("pp.not_enrolled_title"), msg, orders.Code(err))
	}
}

func (s *Server) enrolCancel(w http.ResponseWriter, r *http.Request) {
	if err := s.orders.CancelByBrowser(r.Context(), r.PostFormValue("ref"), orders.BrowserHash(enrolSecret(r))); err != nil {
		pr := s.printer(r)
		s.message(w, orders.Status(err), pr.T("pp.not_cancelled_title"), orderRefusal(pr, err), orders.Code(err))
		return
	}
	pr := s.printer(r)
	s.message(w, http.StatusOK, pr.T("pp.cancelled_title"), pr.T("pp.enrol_nothing"), "order_cancelled")
}

// verifyEnrol is an enrolment order's answer: the CSR checked and the
// certificate issued and bound (ushield's EnrolCSR), audited.
func (s *Server) verifyEnrol(ctx context.Context, o *orders.Order, fac authn.Factor, resp []byte, ip string) (orders.Verified, error) {
	en, _ := fac.(enroller)
	if !canEnrol(fac) {
		return orders.Verified{}, fmt.Errorf("%s cannot be enrolled: %w", fac.Name(), authn.ErrNotEnrolled)
	}
	var in EnrolAnswer
	if err := json.Unmarshal(resp, &in); err != nil {
		return orders.Verified{}, fmt.Errorf("%w: not an enrolment answer", authn.ErrBadResponse)
	}
	var cert *x509.Certificate
	var err error
	if ae, ok := fac.(attestedEnroller); ok {
		// A PIV card: its attestation and the new key's signature over
		// exactly this order's data.
		cert, err = ae.EnrolAttested(ctx, o.PassportID, o.Data, in.DeviceCert, in.SlotCert, in.Sig)
	} else {
		cert, err = en.EnrolCSR(ctx, o.PassportID, strings.ToUpper(hex.EncodeToString(o.Challenge)), in.CSR, in.Label, in.Serial, in.KeyID)
	}
	fields := s.orderFields(o, ip, "ok")
	if err != nil {
		fields["outcome"] = orders.Code(err)
	} else {
		fields["cert_serial"] = fmt.Sprintf("%x", cert.SerialNumber)
	}
	if _, aerr := s.audit.Append(ctx, "order.enrol", fields); aerr != nil && err == nil {
		return orders.Verified{}, fmt.Errorf("recording the enrolment: %w", aerr)
	}
	if err != nil {
		return orders.Verified{}, err
	}
	return orders.Verified{Result: authn.Result{Factor: fac.Name(), Level: fac.Level(), AMR: "hwk"}, Data: cert.Raw}, nil
}

// enrollableIn names the tools a customer can enrol here, in pr's
// language ("U-shield, U-shield with display or PIV card").
func (s *Server) enrollableIn(pr i18n.Printer) string {
	var out []string
	for _, f := range s.factors {
		if canEnrol(f) {
			out = append(out, s.toolIn(pr, f))
		}
	}
	if len(out) < 2 {
		return strings.Join(out, "")
	}
	if pr.Lang == i18n.ZH { // no spaces between Chinese words
		return strings.Join(out[:len(out)-1], "、") + pr.T("pp.enrol_or") + out[len(out)-1]
	}
	return strings.Join(out[:len(out)-1], ", ") + " " + pr.T("pp.enrol_or") + " " + out[len(out)-1]
}

// toolIn names the tool f in pr's language (nil: "tool").
func (s *Server) toolIn(pr i18n.Printer, f authn.Factor) string {
	if f == nil {
		return pr.T("order.a_tool")
	}
	return pr.Tool(f.Name(), factorLabel(f))
}

// orderRefusal says an order's or a tool's error in pr's language (by its
// stable code; orders.Message's sentence when the catalogue lacks it).
func orderRefusal(pr i18n.Printer, err error) string {
	return pr.Refusal(orders.Code(err), upperFirst(orders.Message(err))+".")
}

// codeRefusal says a failed order's stored code in pr's language.
func codeRefusal(pr i18n.Printer, code string) string {
	return pr.Refusal(code, upperFirst(orders.MessageForCode(code)))
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// platformReturn is where the enrolled page links back to: the path (with
// its query) on the origin of the client's first registered redirect URI
// (a platform's self-service page that sent the customer here), with the
// client's name; "" for an unknown client or anything but a local path
// (no open redirect).
func (s *Server) platformReturn(client, path string) (string, string) {
	if client == "" || !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") || strings.ContainsAny(path, "\\\r\n") {
		return "", ""
	}
	for _, c := range s.cfg.OIDC.Clients {
		if c.ID != client || len(c.RedirectURIs) == 0 {
			continue
		}
		r, err := url.Parse(c.RedirectURIs[0])
		if err != nil || r.Host == "" {
			return "", ""
		}
		return r.Scheme + "://" + r.Host + path, c.ID
	}
	return "", ""
}
