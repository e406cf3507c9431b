package web

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/platform/ebank"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// Payee kinds on the transfer form.
const (
	ToOwn     = "own"     // another of the customer's accounts
	ToAccount = "account" // another account at this bank, by number
	ToMobile  = "mobile"  // another customer, by the mobile number they registered (ebank.Mobiles)
	ToBank    = "bank"    // an account at another bank: paid into the clearing account
)

// form is the transfer form as posted; every step carries it in hidden
// fields and every step checks it again, and the intent's hash covers all
// of it: a field changed between steps makes another intent, whose grant
// this one's proof never buys.
type form struct {
	Key, From, ToKind, ToOwn, To, ToMobile, ToName, Bank, Amount, Memo string
	Factor, ChallengeID                                                string
	Order                                                              string // a signing order's ref (transfer_order.go)
	Save                                                               bool   // save the payee once the transfer is made
	// TxLang is the language of the text the customer confirms and signs
	// (intent.Lang): the page's when the form was first shown, carried
	// from there, so that a language switched in another tab does not
	// make another intent halfway.
	TxLang string
}

func readForm(r *http.Request) form {
	g := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return form{Key: g("key"), From: g("from"), ToKind: g("to_kind"), ToOwn: g("to_own"), To: g("to"), ToMobile: g("to_mobile"), ToName: g("to_name"),
		Bank: g("bank"), Amount: g("amount"), Memo: g("memo"), Factor: g("factor"), ChallengeID: g("challenge_id"), Order: g("order"), Save: g("save") == "1", TxLang: g("txlang")}
}

// movement is a checked form.
type movement struct {
	f             form
	debit, credit ledger.Account
	payee         string // the intent's payee: the credit account, or the other bank's account
	shown         string // the payee as the summary names it
	amount        int64
	code, memo    string
	in            intent.Intent
}

type transferData struct {
	F        form
	Accounts []accountRow
	Decision txclient.Decision
	Tools    []txclient.Tool
	Chal     txclient.Challenge
	Summary  string
	Why      string // the decision, in the page's language
	TxText   string // the challenge's transaction text, in the page's language
	Prompt   string // the challenge's prompt, in the page's language
	// DeviceText is the text a signing tool shows and signs (in the
	// intent's language), shown beside TxText when that is a translation:
	// an English intent on a Chinese page (the language was switched after
	// the form was shown).
	DeviceText string
	Done       string
	Payees     []ebank.Payee
	Mobile     bool // transfers by mobile number are offered
	// FormTools are the customer's tools offered on the form (formTools).
	FormTools []string
}

// check validates f for the customer; a message key when it is refused.
func (p *Pages) check(r *http.Request, v *view, f form) (movement, string, error) {
	if !slices.Contains(intent.Langs, f.TxLang) {
		f.TxLang = v.P.IntentLang()
	}
	m := movement{f: f}
	ctx := r.Context()
	if f.Key == "" || len(f.Key) > 64 {
		return m, "xfer.expired", nil
	}
	from, mine, err := p.owned(ctx, v.C, f.From)
	if err != nil {
		return m, "", err
	}
	if !mine {
		return m, "xfer.not_yours", nil
	}
	m.debit = from
	if m.amount, err = money.ParseYuan(f.Amount); err != nil {
		return m, "xfer.bad_amount", nil
	}
	m.code, m.memo = "transfer", f.Memo
	switch f.ToKind {
	case ToOwn:
		to, mine, err := p.owned(ctx, v.C, f.ToOwn)
		if err != nil {
			return m, "", err
		}
		if !mine {
			return m, "xfer.unknown", nil
		}
		m.credit, m.payee = to, to.Number
	case ToAccount:
		to, err := p.Ledger.Account(ctx, strings.ReplaceAll(f.To, " ", ""))
		if ledger.Code(err) == "unknown_account" || (err == nil && to.Owner == ledger.BankOwner) {
			return m, "xfer.unknown", nil
		}
		if err != nil {
			return m, "", err
		}
		m.credit, m.payee = to, to.Number
	case ToMobile:
		if p.Mobiles == nil {
			return m, "xfer.unknown", nil
		}
		number, ok, err := p.Mobiles.Lookup(ctx, f.ToMobile)
		if err != nil {
			return m, "", err
		}
		if !ok {
			return m, "xfer.unknown_mobile", nil
		}
		to, err := p.Ledger.Account(ctx, number)
		if err != nil {
			return m, "", err
		}
		n, _ := ebank.NormalizeMobile(f.ToMobile)
		m.credit, m.payee, m.shown = to, to.Number, v.P.T("xfer.to_mobile_who", to.Number, ebank.MaskMobile(n))
	case ToBank:
		acct := strings.ReplaceAll(f.To, " ", "")
		if len(acct) < 8 || len(acct) > 34 || strings.Trim(acct, "0123456789") != "" || f.ToName == "" || f.Bank == "" {
			return m, "xfer.unknown", nil
		}
		if strings.HasPrefix(acct, ledger.NumberPrefix) {
			return m, "xfer.unknown", nil // one of ours: pay it as an account at this bank
		}
		c, err := p.Ledger.BankAccount(ctx, "clearing")
		if err != nil {
			return m, "", err
		}
		m.credit, m.payee, m.code = c, acct, "interbank"
		m.memo = strings.TrimSpace(f.Bank + " " + acct + " " + f.ToName + " " + f.Memo)
	default:
		return m, "xfer.unknown", nil
	}
	if m.credit.Number == m.debit.Number {
		return m, "xfer.self", nil
	}
	if m.shown == "" {
		m.shown = m.payee
	}
	if m.debit.Status != ledger.StatusOpen || m.credit.Status != ledger.StatusOpen {
		return m, "xfer.not_open", nil
	}
	if m.amount > m.debit.Available() {
		return m, "xfer.funds", nil
	}
	m.in = intent.Intent{Customer: v.C.ID, Channel: intent.Web, Kind: intent.Transfer, Payer: m.debit.Number, Payee: m.payee,
		Amount: m.amount, Currency: ledger.Currency, Device: device(r), ClientIP: clientIP(r), IdempotencyKey: f.Key, Lang: f.TxLang}
	return m, "", nil
}

// device is the browser's fingerprint as ebank sees it: a hash of its
// user agent and languages.
func device(r *http.Request) string {
	h := sha256.Sum256([]byte(r.UserAgent() + "\x00" + r.Header.Get("Accept-Language")))
	return "web:" + hex.EncodeToString(h[:8])
}

func clientIP(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

func (p *Pages) transferForm(w http.ResponseWriter, r *http.Request, v *view) {
	q := r.URL.Query()
	f := form{Key: newKey(), ToKind: ToAccount, From: q.Get("from"), To: q.Get("to"), ToMobile: q.Get("to_mobile"), ToName: q.Get("to_name"), Bank: q.Get("bank"), TxLang: v.P.IntentLang()}
	if k := q.Get("to_kind"); k == ToBank || (k == ToMobile && p.Mobiles != nil) {
		f.ToKind = k
	}
	p.showForm(w, r, v, f, http.StatusOK)
}

func (p *Pages) showForm(w http.ResponseWriter, r *http.Request, v *view, f form, status int) {
	list, err := p.mine(r.Context(), v.C)
	if err != nil {
		p.fail(w, r, v, err)
		return
	}
	if f.From == "" && len(list) > 0 {
		f.From = list[0].Number
	}
	d := transferData{F: f, Mobile: p.Mobiles != nil, FormTools: p.formTools(r, v)}
	if p.Payees != nil {
		if d.Payees, err = p.Payees.List(r.Context(), v.C.ID); err != nil {
			p.fail(w, r, v, err)
			return
		}
	}
	for _, a := range list {
		d.Accounts = append(d.Accounts, accountRow{Account: a, Available: a.Available(), KindText: v.P.T("kind." + a.Kind)})
	}
	v.Title, v.Data = v.P.T("xfer.title"), d
	p.render(w, status, "transfer", v)
}

// typedTools are the tools whose answer is typed on the challenge page, in
// level order: the ones the form offers.
var typedTools = []string{"sms", "gridcard", "otp"}

// formTools are the customer's active tools whose answer is typed, which
// the form offers: chosen there, the challenge is begun by the authorize
// call itself and the decision page is skipped when the tool reaches the
// level. None when the passport cannot say (the tool is then chosen after
// the decision, as always).
func (p *Pages) formTools(r *http.Request, v *view) []string {
	if p.Passport == nil || v.C.Token == "" {
		return nil
	}
	self, err := p.Passport.Self(r.Context(), v.C.Token)
	if err != nil {
		return nil
	}
	var out []string
	for _, name := range typedTools {
		for _, t := range self.Tools {
			if t.Tool == name && t.Status == "active" {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

// refuse shows the form again with the message.
func (p *Pages) refuse(w http.ResponseWriter, r *http.Request, v *view, f form, key string, args ...any) {
	v.Error = v.P.T(key, args...)
	status := http.StatusUnprocessableEntity
	if key == "xfer.bad_amount" {
		status = http.StatusBadRequest
	}
	p.showForm(w, r, v, f, status)
}

// done shows what a transfer with this form's key did, if it was made.
func (p *Pages) done(w http.ResponseWriter, r *http.Request, v *view, f form) bool {
	t, seen, err := p.Ledger.Lookup(r.Context(), Origin, f.Key)
	if err != nil || !seen {
		return false
	}
	v.Notice = v.P.T("xfer.replayed")
	p.showDone(w, v, t)
	return true
}

func (p *Pages) showDone(w http.ResponseWriter, v *view, t ledger.Transfer) {
	v.Title = v.P.T("xfer.title")
	v.Data = transferData{Done: v.P.T("xfer.done", money.Yuan(t.Amount), t.Debit, t.Credit)}
	p.render(w, http.StatusOK, "done", v)
}

// decide authorizes the checked form; the same form again is the same
// intent, which the service answers with its stored decision. With
// challenge set, the form's tool (one whose answer is typed) is asked to begin
// its challenge in the same call, when the Authorizer can
// (ChallengeAuthorizer): the decision then carries it, or why not.
func (p *Pages) decide(w http.ResponseWriter, r *http.Request, v *view, challenge bool) (movement, txclient.Decision, bool) {
	f := readForm(r)
	if p.done(w, r, v, f) {
		return movement{}, txclient.Decision{}, false
	}
	m, bad, err := p.check(r, v, f)
	if err != nil {
		p.fail(w, r, v, err)
		return m, txclient.Decision{}, false
	}
	if bad != "" {
		p.refuse(w, r, v, f, bad)
		return m, txclient.Decision{}, false
	}
	var d txclient.Decision
	ca, can := p.Auth.(ChallengeAuthorizer)
	if challenge && can && slices.Contains(typedTools, m.f.Factor) {
		d, err = ca.AuthorizeWithChallenge(r.Context(), m.in, txclient.ChallengeRequest{Factor: m.f.Factor, ClientIP: clientIP(r)})
	} else {
		d, err = p.Auth.Authorize(r.Context(), m.in)
	}
	if err != nil {
		p.authErr(w, r, v, f, err)
		return m, d, false
	}
	switch d.Decision {
	case txclient.Allow:
	case txclient.Review:
		p.refuse(w, r, v, f, "xfer.review")
		return m, d, false
	default:
		p.denied(w, r, v, f, d, m.amount)
		return m, d, false
	}
	return m, d, true
}

// authErr maps the service's refusals to the customer's sentences.
func (p *Pages) authErr(w http.ResponseWriter, r *http.Request, v *view, f form, err error) {
	var ae *txclient.APIError
	if !errors.As(err, &ae) {
		p.fail(w, r, v, err)
		return
	}
	switch {
	case strings.Contains(ae.Code, "limit"):
		p.refuse(w, r, v, f, "xfer.limit")
	case ae.Code == "idempotency_key_reused":
		p.refuse(w, r, v, form{Key: newKey()}, "xfer.expired")
	case strings.Contains(ae.Code, "grant"), strings.Contains(ae.Code, "intent"):
		p.refuse(w, r, v, f, "xfer.grant")
	case ae.Status >= 500:
		p.fail(w, r, v, err)
	default:
		p.refuse(w, r, v, f, "xfer.bad_code")
	}
}

func (p *Pages) transferAuthorize(w http.ResponseWriter, r *http.Request, v *view) {
	// A tool chosen on the form: its challenge is begun with the decision
	// when it reaches the level, and the decision page is skipped.
	m, d, ok := p.decide(w, r, v, true)
	if !ok {
		return
	}
	if d.Challenge != nil {
		p.showChallenge(w, v, m, d, *d.Challenge)
		return
	}
	if ce := d.ChallengeError; ce != nil {
		// The tool chosen cannot confirm it (below the level a limit asks,
		// not the customer's, locked): the customer chooses another.
		v.Notice = v.P.T("xfer.tool_other")
		if ce.Code == "level_too_low" {
			v.Notice = v.P.T("xfer.tool_low")
		}
	}
	tools := make([]txclient.Tool, 0, len(d.Tools))
	for _, t := range d.Tools {
		if t.Level >= d.Level {
			tools = append(tools, t)
		}
	}
	if len(tools) == 0 {
		p.denied(w, r, v, m.f, d, m.amount)
		return
	}
	m.f.Factor = tools[0].Name
	v.Title = v.P.T("xfer.title")
	v.Data = transferData{F: m.f, Decision: d, Tools: tools, Summary: v.P.T("xfer.summary", money.Yuan(m.amount), m.debit.Number, m.shown),
		Why: decisionText(v.P, d, m.amount)}
	p.render(w, http.StatusOK, "decision", v)
}

func (p *Pages) transferChallenge(w http.ResponseWriter, r *http.Request, v *view) {
	m, d, ok := p.decide(w, r, v, true)
	if !ok {
		return
	}
	if signsByOrder(m.f.Factor) {
		p.transferOrder(w, r, v, m, d, "")
		return
	}
	c := d.Challenge
	if c == nil {
		if ce := d.ChallengeError; ce != nil && ce.Code != "challenge_open" {
			p.authErr(w, r, v, m.f, ce.Err())
			return
		}
		// Not begun with the decision (an Authorizer that cannot), or
		// one of the intent's is still open (this page posted again, the
		// tool chosen again): a new one, as the customer asks.
		ch, err := p.Auth.Challenge(r.Context(), d.Intent, txclient.ChallengeRequest{Factor: m.f.Factor, ClientIP: clientIP(r)})
		if err != nil {
			p.authErr(w, r, v, m.f, err)
			return
		}
		c = &ch
	}
	p.showChallenge(w, v, m, d, *c)
}

// showChallenge shows the challenge c of the decision d.
func (p *Pages) showChallenge(w http.ResponseWriter, v *view, m movement, d txclient.Decision, c txclient.Challenge) {
	m.f.ChallengeID = c.ID
	v.Title = v.P.T("xfer.title")
	v.Data = transferData{F: m.f, Decision: d, Chal: c, Summary: v.P.T("xfer.summary", money.Yuan(m.amount), m.debit.Number, m.shown),
		TxText: v.P.TxText(c.Text), Prompt: v.P.Prompt(c.Prompt)}
	if d := v.Data.(transferData); signingTools[c.Factor] && d.TxText != c.Text {
		d.DeviceText = c.Text
		v.Data = d
	}
	p.render(w, http.StatusOK, "challenge", v)
}

func (p *Pages) transferConfirm(w http.ResponseWriter, r *http.Request, v *view) {
	m, d, ok := p.decide(w, r, v, false)
	if !ok {
		return
	}
	ctx := r.Context()
	var g txclient.Grant
	switch {
	case m.f.Order != "":
		if g, ok = p.confirmByOrder(w, r, v, m, d); !ok {
			return
		}
	case signsByOrder(m.f.Factor):
		// A signature is never typed: the tool answers its order.
		p.transferOrder(w, r, v, m, d, v.P.T("order.again"))
		return
	default:
		var err error
		g, err = p.Auth.Proof(ctx, d.Intent, txclient.ProofRequest{ChallengeID: m.f.ChallengeID, Response: r.PostFormValue("response"), ClientIP: clientIP(r), Intent: &m.in})
		if err != nil {
			p.authErr(w, r, v, m.f, err)
			return
		}
	}
	if _, err := p.Auth.Execute(ctx, g.Token, m.in); err != nil {
		if p.done(w, r, v, m.f) { // a double submit: the first consumed the grant
			return
		}
		p.authErr(w, r, v, m.f, err)
		return
	}
	t, err := p.Ledger.Transfer(ctx, ledger.Request{Origin: Origin, Key: m.f.Key, Debit: m.debit.Number, Credit: m.credit.Number,
		Amount: m.amount, Grant: d.Intent, Code: m.code, Memo: m.memo})
	if err != nil {
		p.Auth.Cancel(ctx, d.Intent, "ledger refused: "+ledger.Code(err))
		switch ledger.Code(err) {
		case "insufficient_funds":
			p.refuse(w, r, v, m.f, "xfer.funds")
		case "account_not_open":
			p.refuse(w, r, v, m.f, "xfer.not_open")
		case "":
			p.fail(w, r, v, err)
		default:
			p.refuse(w, r, v, m.f, "xfer.unknown")
		}
		return
	}
	if t.Replayed {
		v.Notice = v.P.T("xfer.replayed")
	} else {
		p.alert(r, t)
		p.savePayee(r, v, m)
	}
	p.showDone(w, v, t)
}

// alert posts the balance-change alerts of t: money out of the payer's
// account, and into the payee's when it is a customer's. An alert that
// cannot be posted is reported to OnError; the transfer stands. The ids
// are the transfer's, so a retry never alerts twice.
func (p *Pages) alert(r *http.Request, t ledger.Transfer) {
	if p.Alerts == nil {
		return
	}
	for _, side := range []struct {
		number string
		sign   int64
		id     string
	}{{t.Debit, -1, t.ID + ":out"}, {t.Credit, 1, t.ID + ":in"}} {
		a, err := p.Ledger.Account(r.Context(), side.number)
		if err != nil || a.Owner == ledger.BankOwner {
			continue
		}
		_, err = p.Alerts.Balance(r.Context(), txclient.BalanceAlert{ID: side.id, Customer: a.Owner, Account: a.Number,
			Amount: side.sign * t.Amount, Balance: a.Balance(), Currency: ledger.Currency, Description: t.Code})
		if err != nil && p.OnError != nil {
			p.OnError(r, err)
		}
	}
}

// signingTools sign the transaction text on a device with its own display
// or the customer's screen: what they sign is the service's text.
var signingTools = map[string]bool{"ushield": true, "ushield2": true, "piv": true, "phone": true}

// denied says why: in English the service's sentence, in Chinese the same
// said from the decision's reasons (decisionText).
func (p *Pages) denied(w http.ResponseWriter, r *http.Request, v *view, f form, d txclient.Decision, amount int64) {
	if why := decisionText(v.P, d, amount); why != "" {
		p.refuse(w, r, v, f, "xfer.denied_why", why)
		return
	}
	p.refuse(w, r, v, f, "xfer.denied")
}

// savePayee keeps the payee of a transfer made with "save" ticked: another
// customer's account or another bank's, never the customer's own.
func (p *Pages) savePayee(r *http.Request, v *view, m movement) {
	if p.Payees == nil || !m.f.Save || m.f.ToKind == ToOwn || m.f.ToKind == ToMobile {
		return
	}
	y := ebank.Payee{Kind: m.f.ToKind, Account: m.payee, Name: m.f.ToName, Bank: m.f.Bank}
	if err := p.Payees.Save(r.Context(), v.C.ID, y); err != nil && p.OnError != nil {
		p.OnError(r, err)
	}
}
