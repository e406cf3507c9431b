// Package web is ebank's customer pages, in Simplified Chinese and English
// (internal/i18n): the customer's accounts with their balances, each
// account's history searched by date and amount range, the statement as CSV,
// and transfers (own accounts, another customer's account, another bank
// through the clearing account) authorized through an Authorizer — the
// transaction-authorization client (authsvc/txauth/txclient) in production.
// Every form works without JavaScript.
package web

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/i18n"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
	"github.com/egate-bank/egate/platform/signorder"
)

// Authorizer is what the transfer pages need of the transaction
// authorization service; *txclient.Client is one.
type Authorizer interface {
	Authorize(ctx context.Context, in intent.Intent) (txclient.Decision, error)
	Challenge(ctx context.Context, hash string, r txclient.ChallengeRequest) (txclient.Challenge, error)
	Proof(ctx context.Context, hash string, r txclient.ProofRequest) (txclient.Grant, error)
	Execute(ctx context.Context, grant string, in intent.Intent) (txclient.Executed, error)
	Cancel(ctx context.Context, hash, reason string) (txclient.Cancelled, error)
}

var _ Authorizer = (*txclient.Client)(nil)

// ChallengeAuthorizer is an Authorizer that can begin the challenge in the
// authorize call (*txclient.Client is one): when the customer has chosen
// the tool, the pages authorize and begin its challenge in one call
// instead of two.
type ChallengeAuthorizer interface {
	AuthorizeWithChallenge(ctx context.Context, in intent.Intent, ch txclient.ChallengeRequest) (txclient.Decision, error)
}

var _ ChallengeAuthorizer = (*txclient.Client)(nil)

// BalanceAlerter posts a balance-change alert (txauth's /v1/alerts/balance).
type BalanceAlerter interface {
	Balance(ctx context.Context, a txclient.BalanceAlert) (txclient.AlertPosted, error)
}

var _ BalanceAlerter = (*txclient.Client)(nil)

// Customer is the logged-in customer as the platform's session knows them.
type Customer struct {
	ID   string // passport id: the owner of their accounts
	Name string
	// Level is the session's authentication level; Token its access token
	// for the passport's customer APIs (self-service, login history).
	Level int
	Token string
	// AMR are the methods of the login (RFC 8176: pwd, sms, otp, hwk, swk);
	// AuthTime when the customer last proved with a tool.
	AMR      []string
	AuthTime time.Time
}

// Origin is the ledger origin of the movements these pages make.
const Origin = "ebank-web"

// Pages serves the customer pages. Mount Handler under the platform site.
type Pages struct {
	Ledger *ledger.Ledger
	Auth   Authorizer
	// Customer returns the request's logged-in customer; false sends the
	// browser to /login.
	Customer func(r *http.Request) (Customer, bool)
	// Payees keeps the customers' saved payees (nil: none).
	Payees *ebank.Payees
	// Mobiles is the receive-by-mobile directory (nil: transfers by mobile
	// number are not offered).
	Mobiles *ebank.Mobiles
	// Passport is the passport's customer API: self-service, login history
	// and alerts (nil: those pages send the customer to log in).
	Passport *Passport
	// Alerts posts the balance-change alerts of a transfer made here to
	// the payer and, when a customer, the payee (nil: none).
	// *txclient.Client is one.
	Alerts BalanceAlerter
	// Others are the bank's other platforms (mall, messenger) by name,
	// linked from the home page.
	Others map[string]string
	// Zone is the customers' time zone (nil: Asia/Shanghai).
	Zone *time.Location
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// OnError receives unexpected errors (the page shows a plain sentence).
	OnError func(r *http.Request, err error)
	// PassportURL is the passport's URL, where tokens are enrolled
	// (enrol.go); empty: the enrolment page says enrolment is not
	// available.
	PassportURL string
	// StatementFont is the TrueType font with Chinese glyphs that the
	// Chinese PDF statement embeds (a subset of it), read when a statement
	// is printed; empty: DefaultStatementFont. When it cannot be read the
	// Chinese statement is printed in English and says why
	// (CheckStatementFont tells the operator at start).
	StatementFont string
}

//go:embed templates/*.html
var files embed.FS

var pages = template.Must(template.Must(template.New("").Funcs(template.FuncMap{
	"yuan": money.Yuan,
}).Parse(signorder.Widget)).ParseFS(files, "templates/*.html"))

// Handler serves /accounts, /accounts/{number}, /accounts/{number}/statement.csv,
// /transfer (GET the form, POST authorize), /transfer/challenge,
// /transfer/confirm, /transfer/order (the order page's poll), the login
// history (/logins), the alerts (/alerts) and self-service (/settings and
// its forms).
func (p *Pages) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /accounts", p.logged(p.accounts))
	m.HandleFunc("GET /accounts/{number}", p.logged(p.history))
	m.HandleFunc("GET /accounts/{number}/statement.csv", p.logged(p.statementCSV))
	m.HandleFunc("GET /accounts/{number}/statement.pdf", p.logged(p.statementPDF))
	m.HandleFunc("GET /transfer", p.logged(p.transferForm))
	m.HandleFunc("POST /transfer", p.logged(p.transferAuthorize))
	m.HandleFunc("POST /transfer/challenge", p.logged(p.transferChallenge))
	m.HandleFunc("POST /transfer/confirm", p.logged(p.transferConfirm))
	m.HandleFunc("GET /transfer/order", p.logged(p.transferOrderPoll))
	m.HandleFunc("GET /enrol", p.logged(p.enrolPage))
	m.HandleFunc("GET /logins", p.logged(p.logins))
	m.HandleFunc("GET /alerts", p.logged(p.alerts))
	m.HandleFunc("GET /settings", p.logged(p.settings))
	m.HandleFunc("POST /settings/password", p.logged(p.changePassword))
	m.HandleFunc("POST /settings/reserved-message", p.logged(p.reservedMessage))
	m.HandleFunc("POST /settings/limits", p.logged(p.ownLimits))
	m.HandleFunc("POST /settings/otp", p.logged(p.bindOTP))
	m.HandleFunc("POST /settings/lost", p.logged(p.reportLost))
	m.HandleFunc("POST /settings/mobile", p.logged(p.receiveByMobile))
	m.HandleFunc("POST /settings/withdrawal-pin", p.logged(p.withdrawalPIN))
	return m
}

// Home is the logged-in customer's home page (platform.Site.SetHome): who
// they are, how they logged in, their accounts and where to go next.
// A visitor gets the bank's welcome with the way to log in.
func (p *Pages) Home() http.Handler { return p.page(p.home, true) }

// homeData is the home page.
type homeData struct {
	Level       int
	Methods     string // the login's methods, for a person
	When        string
	Accounts    []accountRow
	Total       int64 // available, all accounts
	Others      map[string]string
	NeedsStepUp bool // below the self-service level
}

func (p *Pages) home(w http.ResponseWriter, r *http.Request, v *view) {
	if v.C.ID == "" {
		v.Title, v.Data = v.P.T("platform.ebank"), homeData{Others: p.Others}
		p.render(w, http.StatusOK, "visitor", v)
		return
	}
	list, err := p.mine(r.Context(), v.C)
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	d := homeData{Level: v.C.Level, When: v.P.Time(v.C.AuthTime), Others: p.Others, NeedsStepUp: v.C.Level < SelfServiceLevel}
	var methods []string
	for _, m := range v.C.AMR {
		if i18n.Has("amr." + m) {
			methods = append(methods, v.P.T("amr."+m))
		}
	}
	d.Methods = strings.Join(methods, v.P.T("list.sep"))
	for _, a := range list {
		d.Accounts = append(d.Accounts, accountRow{Account: a, Posted: a.Balance(), Pending: a.DebitsPending, Available: a.Available(),
			KindText: v.P.T("kind." + a.Kind), StatusText: v.P.T("status." + a.Status)})
		d.Total += a.Available()
	}
	v.Title = v.P.T("home.welcome", v.C.Name)
	v.Data = d
	p.render(w, http.StatusOK, "home", v)
}

// Routes are the paths Handler serves, for the platform's mux.
var Routes = []string{"/accounts", "/accounts/", "/transfer", "/transfer/", "/enrol", "/logins", "/alerts", "/settings", "/settings/"}

// view is what every template gets.
type view struct {
	i18n.Page
	C      Customer
	Title  string
	Error  string
	Notice string
	Data   any
}

type handler func(w http.ResponseWriter, r *http.Request, v *view)

func (p *Pages) logged(h handler) http.HandlerFunc { return p.page(h, false) }

// page serves h with the request's view; without a customer, a visitor's
// page (visitors true) or the way to /login.
func (p *Pages) page(h handler, visitors bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := p.Customer(r)
		if !ok && !visitors {
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}
		v := &view{Page: i18n.PageFor(w, r, p.Zone, "/accounts"), C: c}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, v)
	}
}

func (p *Pages) render(w http.ResponseWriter, status int, name string, v *view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	pages.ExecuteTemplate(w, name, v)
}

func (p *Pages) fail(w http.ResponseWriter, r *http.Request, v *view, err error) {
	if p.OnError != nil {
		p.OnError(r, err)
	}
	v.Error = v.P.T("err.generic")
	p.render(w, http.StatusInternalServerError, "error", v)
}

func (p *Pages) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// owned returns the customer's account with number, or false.
func (p *Pages) owned(ctx context.Context, c Customer, number string) (ledger.Account, bool, error) {
	a, err := p.Ledger.Account(ctx, number)
	if errors.Is(err, ledger.ErrUnknownAccount) || ledger.Code(err) == "unknown_account" {
		return ledger.Account{}, false, nil
	}
	if err != nil {
		return ledger.Account{}, false, err
	}
	return a, a.Owner == c.ID, nil
}

// mine lists the customer's accounts, current accounts first (the
// transfer form's default payer), then by number.
func (p *Pages) mine(ctx context.Context, c Customer) ([]ledger.Account, error) {
	list, err := p.Ledger.Accounts(ctx, c.ID)
	slices.SortStableFunc(list, func(a, b ledger.Account) int {
		if (a.Kind == ledger.KindCurrent) != (b.Kind == ledger.KindCurrent) {
			if a.Kind == ledger.KindCurrent {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Number, b.Number)
	})
	return list, err
}

func newKey() string {
	var b [18]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// accountRow is one account on the accounts page.
type accountRow struct {
	ledger.Account
	Posted, Pending, Available int64
	KindText, StatusText       string
}

func (p *Pages) accounts(w http.ResponseWriter, r *http.Request, v *view) {
	list, err := p.mine(r.Context(), v.C)
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	rows := make([]accountRow, 0, len(list))
	for _, a := range list {
		rows = append(rows, accountRow{Account: a, Posted: a.Balance(), Pending: a.DebitsPending, Available: a.Available(),
			KindText: v.P.T("kind." + a.Kind), StatusText: v.P.T("status." + a.Status)})
	}
	v.Title = v.P.T("acct.title")
	v.Data = rows
	p.render(w, http.StatusOK, "accounts", v)
}

func describe(pr i18n.Printer, t ledger.Transfer) string {
	k := "code." + t.Code
	if i18n.Has(k) {
		return pr.T(k)
	}
	return t.Code
}

func trimSpace(s string) string { return strings.TrimSpace(s) }
