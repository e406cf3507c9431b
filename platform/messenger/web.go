package messenger

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/egate-bank/egate/internal/i18n"
	"github.com/egate-bank/egate/internal/money"
	"github.com/egate-bank/egate/platform"
	"github.com/egate-bank/egate/platform/ebank/web"
)

// Customer is the logged-in customer as the platform's session knows them
// (passport id and login name), as for ebank's pages.
type Customer = web.Customer

// Pages serves the messenger's pages. Mount Handler under the platform
// site at Routes.
type Pages struct {
	Svc *Service
	// Customer returns the request's logged-in customer; false sends the
	// browser to /login.
	Customer func(r *http.Request) (Customer, bool)
	// Alerts reads the customer's alerts from the passport (the site's
	// Alerts); nil: the alert conversation shows what it has.
	Alerts func(r *http.Request) ([]platform.InboxAlert, error)
	// PublicURL is where browsers reach the messenger: the receive QR
	// holds PublicURL/pay/<token>.
	PublicURL string
	// QRTTL is how long a receive QR is valid (default 10 minutes).
	QRTTL time.Duration
	// Poll is how often a page's event stream looks in the database for
	// messages posted on other replicas (default 3 s).
	Poll time.Duration
	// Stop ends the pages' event streams (the process is stopping; the
	// browsers reconnect to another replica). Nil: never.
	Stop <-chan struct{}
	// Zone is the customers' time zone (nil: Asia/Shanghai).
	Zone *time.Location
	// OnError receives unexpected errors (the page shows a plain sentence).
	OnError func(r *http.Request, err error)
}

//go:embed templates/*.html
var files embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"yuan": money.Yuan,
}).ParseFS(files, "templates/*.html"))

// Routes are the paths Handler serves, for the platform's mux.
var Routes = []string{"/chats", "/chats/", "/aa/", "/pay", "/pay/", "/receive", "/receive/", "/alerts", "/service"}

// Handler serves the pages.
func (p *Pages) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /chats", p.logged(p.list))
	m.HandleFunc("POST /chats", p.logged(p.newDirect))
	m.HandleFunc("POST /chats/group", p.logged(p.newGroup))
	m.HandleFunc("GET /chats/{id}", p.logged(p.chat))
	m.HandleFunc("POST /chats/{id}/messages", p.logged(p.send))
	m.HandleFunc("GET /chats/{id}/events", p.events)
	m.HandleFunc("GET /chats/{id}/aa/new", p.logged(p.aaForm))
	m.HandleFunc("POST /chats/{id}/aa", p.logged(p.aaCreate))
	m.HandleFunc("GET /aa/{id}", p.logged(p.aaView))
	m.HandleFunc("POST /aa/{id}/close", p.logged(p.aaClose))
	m.HandleFunc("GET /receive", p.logged(p.receiveForm))
	m.HandleFunc("POST /receive", p.logged(p.receiveCreate))
	m.HandleFunc("GET /receive/{token}", p.logged(p.receiveShow))
	m.HandleFunc("GET /receive/{token}/qr.png", p.logged(p.receivePNG))
	m.HandleFunc("GET /pay/{token}", p.logged(p.payQRForm))
	m.HandleFunc("POST /pay", p.logged(p.payAuthorize))
	m.HandleFunc("POST /pay/challenge", p.logged(p.payChallenge))
	m.HandleFunc("POST /pay/confirm", p.logged(p.payConfirm))
	m.HandleFunc("POST /pay/cancel", p.logged(p.payCancel))
	m.HandleFunc("GET /alerts", p.logged(p.alerts))
	m.HandleFunc("GET /service", p.logged(p.service))
	return m
}

// view is what every template gets.
type view struct {
	i18n.Page
	C      Customer
	Title  string
	Error  string
	Code   string
	Notice string
	Unread int64
	Data   any
}

type handler func(w http.ResponseWriter, r *http.Request, v *view)

func (p *Pages) logged(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := p.Customer(r)
		if !ok {
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}
		v := &view{Page: i18n.PageFor(w, r, p.Zone, "/chats"), C: c}
		w.Header().Set("Cache-Control", "no-store")
		h(w, r, v)
	}
}

func (p *Pages) render(w http.ResponseWriter, status int, name string, v *view) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, v); err != nil {
		http.Error(w, "page error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// refuse answers err: a refusal of the messenger as its status, code and
// sentence on page name (or a page of its own); anything else as a fault.
func (p *Pages) refuse(w http.ResponseWriter, r *http.Request, v *view, err error, name string) {
	var e *Error
	if !errors.As(err, &e) {
		if p.OnError != nil {
			p.OnError(r, err)
		}
		v.Error, v.Code = v.P.T("err.generic"), "internal"
		p.render(w, http.StatusInternalServerError, "error", v)
		return
	}
	v.Error, v.Code = v.P.T("msg.err."+e.Code), e.Code
	if name == "" {
		name = "error"
	}
	p.render(w, e.Status, name, v)
}

func (p *Pages) ctxErr(r *http.Request, err error) {
	if err != nil && p.OnError != nil {
		p.OnError(r, err)
	}
}

func newKey() string {
	var b [18]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// device is the browser's fingerprint: a hash of its user agent and
// languages (as ebank's pages make it).
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

// title is how a conversation is named to the customer.
func title(pr i18n.Printer, c Conversation, me string) string {
	switch c.Kind {
	case ServiceChat:
		return pr.T("msg.service")
	case Alerts:
		return pr.T("msg.alerts")
	case Group:
		return c.Title
	}
	for _, m := range c.Members {
		if m.ID != me {
			return m.Name
		}
	}
	return c.Title
}

type listRow struct {
	Conversation
	Name string
}

func (p *Pages) list(w http.ResponseWriter, r *http.Request, v *view) {
	ctx := r.Context()
	if err := p.Svc.Store.Profile(ctx, v.C.ID, v.C.Name); err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	p.syncAlerts(r, v.C)
	if err := p.Svc.ExpireFor(ctx, v.C.ID); err != nil { // abandoned pending transfers, as listed
		p.refuse(w, r, v, err, "")
		return
	}
	list, err := p.Svc.Store.List(ctx, v.C.ID)
	if err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	rows := make([]listRow, 0, len(list))
	for _, c := range list {
		rows = append(rows, listRow{Conversation: c, Name: title(v.P, c, v.C.ID)})
		v.Unread += c.Unread
	}
	v.Title, v.Data = v.P.T("msg.chats"), rows
	status := http.StatusOK
	if v.Code != "" {
		status = http.StatusUnprocessableEntity
	}
	p.render(w, status, "chats", v)
}

func (p *Pages) newDirect(w http.ResponseWriter, r *http.Request, v *view) {
	ctx := r.Context()
	to, err := p.Svc.Store.ByName(ctx, r.PostFormValue("name"))
	if err == nil && to.ID == v.C.ID {
		err = ErrSelf
	}
	var id string
	if err == nil {
		id, err = p.Svc.Store.Direct(ctx, v.C.ID, to.ID)
	}
	if err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	http.Redirect(w, r, "/chats/"+id, http.StatusSeeOther)
}

func (p *Pages) newGroup(w http.ResponseWriter, r *http.Request, v *view) {
	ctx := r.Context()
	var ids []string
	for _, n := range strings.FieldsFunc(r.PostFormValue("members"), func(c rune) bool { return c == ',' || c == ' ' || c == '，' }) {
		m, err := p.Svc.Store.ByName(ctx, n)
		if err != nil {
			p.refuse(w, r, v, err, "")
			return
		}
		if m.ID != v.C.ID {
			ids = append(ids, m.ID)
		}
	}
	if len(ids) == 0 {
		p.refuse(w, r, v, ErrAANoMembers, "")
		return
	}
	id, err := p.Svc.Store.NewGroup(ctx, v.C.ID, r.PostFormValue("title"), ids)
	if err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	http.Redirect(w, r, "/chats/"+id, http.StatusSeeOther)
}

// msgView is one message as a page shows it.
type msgView struct {
	Seq       int64
	Kind      string
	Mine      bool
	Who       string
	Time      string
	Text      template.HTML
	State     string
	StateText string
	Link      string
	LinkText  string
}

// viewer is how me sees m, for the per-event render cache: its sender,
// the payee of a transfer (who reads "… is sending you …"), or another.
func viewer(m Message, me string) string {
	if m.Sender == me {
		return ":sender"
	}
	if m.Kind == KindTransfer || m.Kind == KindQR {
		var b PayBody
		if json.Unmarshal([]byte(m.Body), &b) == nil && b.Payee == me {
			return ":payee"
		}
	}
	return ":other"
}

// show renders m for the customer me in pr's language.
func (p *Pages) show(ctx context.Context, pr i18n.Printer, me string, m Message) msgView {
	e := template.HTMLEscapeString
	v := msgView{Seq: m.Seq, Kind: m.Kind, Mine: m.Sender == me, Who: m.SenderName, Time: pr.Time(m.Created), State: m.State}
	if m.Sender == Staff {
		v.Who = pr.T("msg.staff")
	}
	if m.State != "" && i18n.Has("msg.state."+m.State) {
		v.StateText = pr.T("msg.state." + m.State)
	}
	switch m.Kind {
	case KindText:
		v.Text = template.HTML(e(m.Body))
	case KindTransfer, KindQR:
		var b PayBody
		json.Unmarshal([]byte(m.Body), &b)
		key := "msg.sent"
		if m.Kind == KindQR {
			key = "msg.qr_paid"
		}
		switch {
		case m.State == StatePending && b.Payee == me:
			v.Text = template.HTML(pr.T("msg.sending_you", e(m.SenderName), e(money.Yuan(m.Amount)), e(m.SenderName)))
		case m.State == StatePending:
			v.Text = template.HTML(pr.T("msg.sending", e(m.SenderName), e(b.PayeeName), e(money.Yuan(m.Amount)), e(m.SenderName)))
		case m.State == StateRefused || m.State == StateCancelled || m.State == StateExpired:
			v.Text = template.HTML(pr.T("msg.not_sent", e(m.SenderName), e(b.PayeeName), e(money.Yuan(m.Amount))))
		default:
			v.Text = template.HTML(pr.T(key, e(m.SenderName), e(b.PayeeName), e(money.Yuan(m.Amount))))
		}
		if b.Memo != "" {
			v.Text += template.HTML(" · " + e(b.Memo))
		}
		if b.Reason != "" && i18n.Has("msg.err."+b.Reason) {
			v.Text += template.HTML(" — " + e(pr.T("msg.err."+b.Reason)))
		}
	case KindAA:
		v.Text = template.HTML(pr.T("msg.aa_opened", e(m.SenderName), e(money.Yuan(m.Amount)), e(m.Body)))
		v.Link, v.LinkText = "/aa/"+strings.TrimPrefix(m.Ref, "aa:"), pr.T("msg.aa_view")
	case KindAAPaid:
		v.Text = template.HTML(pr.T("msg.aa_paid", e(m.SenderName), e(money.Yuan(m.Amount))))
		v.Link, v.LinkText = "/aa/"+m.Body, pr.T("msg.aa_view")
	case KindAlert:
		var a platform.InboxAlert
		json.Unmarshal([]byte(m.Body), &a)
		v.Who, v.Time, v.StateText = pr.T("msg.bank"), "", "" // the sentence says when
		v.Text = platform.InboxText(pr, a)
	default:
		v.Text = template.HTML(e(m.Body))
	}
	return v
}

type chatData struct {
	C        Conversation
	Name     string
	Messages []msgView
	Others   []Member
	Key      string
	Text     string
	Payable  bool
}

func (p *Pages) chat(w http.ResponseWriter, r *http.Request, v *view) {
	p.showChat(w, r, v, r.PathValue("id"), http.StatusOK, "")
}

func (p *Pages) showChat(w http.ResponseWriter, r *http.Request, v *view, id string, status int, text string) {
	ctx := r.Context()
	c, err := p.Svc.Store.Get(ctx, id, v.C.ID)
	if err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	if err := p.Svc.Expire(ctx, id); err != nil { // pending transfers their payer abandoned
		p.refuse(w, r, v, err, "")
		return
	}
	if c.Kind == Alerts {
		p.syncAlerts(r, v.C)
		if c, err = p.Svc.Store.Get(ctx, id, v.C.ID); err != nil {
			p.refuse(w, r, v, err, "")
			return
		}
	}
	msgs, err := p.Svc.Store.Messages(ctx, id, -1, 100)
	if err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	d := chatData{C: c, Name: title(v.P, c, v.C.ID), Key: newKey(), Text: text, Payable: c.Kind == Direct || c.Kind == Group}
	for _, m := range msgs {
		d.Messages = append(d.Messages, p.show(ctx, v.P, v.C.ID, m))
	}
	for _, m := range c.Members {
		if m.ID != v.C.ID {
			d.Others = append(d.Others, m)
		}
	}
	p.ctxErr(r, p.Svc.Store.MarkRead(ctx, id, v.C.ID, c.LastSeq))
	v.Title, v.Data = d.Name, d
	p.render(w, status, "chat", v)
}

func (p *Pages) send(w http.ResponseWriter, r *http.Request, v *view) {
	id := r.PathValue("id")
	text := r.PostFormValue("text")
	c, err := p.Svc.Store.Get(r.Context(), id, v.C.ID)
	if err == nil && c.Kind == Alerts {
		err = ErrNotMember // nobody writes into the alert inbox
	}
	if err == nil {
		_, err = p.Svc.Send(r.Context(), id, v.C.ID, text)
	}
	var e *Error
	if errors.As(err, &e) && (e == ErrEmptyMessage || e == ErrMessageTooLong) {
		v.Error, v.Code = v.P.T("msg.err."+e.Code), e.Code
		p.showChat(w, r, v, id, e.Status, text)
		return
	}
	if err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	if r.Header.Get("X-Requested-With") == "fetch" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, "/chats/"+id+"#send", http.StatusSeeOther)
}

// events streams the conversation's new and changed messages as
// server-sent events (event "message", data {"seq","update","html"}),
// from ?after=SEQ (or Last-Event-ID); messages posted on other replicas
// are found by polling the database every Poll.
func (p *Pages) events(w http.ResponseWriter, r *http.Request) {
	c, ok := p.Customer(r)
	if !ok {
		http.Error(w, "log in first", http.StatusUnauthorized)
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	if err := p.Svc.Store.CheckMember(ctx, id, c.ID); err != nil {
		var e *Error
		if errors.As(err, &e) {
			http.Error(w, e.Error(), e.Status)
		} else {
			http.Error(w, "try again", http.StatusServiceUnavailable)
		}
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if le, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		after = le
	}
	pr := i18n.For(r, p.Zone)
	sub := p.Svc.Hub.Subscribe(id)
	defer p.Svc.Hub.Unsubscribe(sub)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	last := after
	var buf bytes.Buffer
	write := func(e Event) error {
		m := e.Message
		data, err := e.Rendered(pr.Lang+viewer(m, c.ID), func() ([]byte, error) {
			buf.Reset()
			if err := pages.ExecuteTemplate(&buf, "msg", p.show(ctx, pr, c.ID, m)); err != nil {
				return nil, err
			}
			return json.Marshal(struct {
				Seq    int64  `json:"seq"`
				Update bool   `json:"update,omitempty"`
				HTML   string `json:"html"`
			}{m.Seq, e.Update, buf.String()})
		})
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte("id: " + strconv.FormatInt(max(m.Seq, last), 10) + "\nevent: message\ndata: " + string(data) + "\n\n")); err != nil {
			return err
		}
		last = max(last, m.Seq)
		return nil
	}
	catchUp := func() error {
		msgs, err := p.Svc.Store.Messages(ctx, id, last, 200)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := write(Event{Message: m}); err != nil {
				return err
			}
		}
		return rc.Flush()
	}
	// What the page showed counts as read: noted on every poll and when the
	// stream ends, not per message (a database write per message and open
	// page would cost more than the delivery).
	read := after
	markRead := func() {
		if last > read {
			p.ctxErr(r, p.Svc.Store.MarkRead(context.WithoutCancel(ctx), id, c.ID, last))
			read = last
		}
	}
	defer markRead()
	if _, err := w.Write([]byte("retry: 3000\n\n")); err != nil {
		return
	}
	if catchUp() != nil {
		return
	}
	poll := p.Poll
	if poll <= 0 {
		poll = 3 * time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.Stop:
			return
		case e := <-sub.C:
			if !e.Update && e.Message.Seq <= last {
				continue
			}
			if !e.Update && e.Message.Seq > last+1 { // a gap: read it from the database
				if catchUp() != nil {
					return
				}
				continue
			}
			if write(e) != nil || rc.Flush() != nil {
				return
			}
		case <-sub.Lag:
			if catchUp() != nil {
				return
			}
		case <-t.C:
			if catchUp() != nil {
				return
			}
			markRead()
		}
	}
}

// syncAlerts copies the customer's alerts from the passport into their
// alert conversation (each once: its ref is the alert's id).
func (p *Pages) syncAlerts(r *http.Request, c Customer) {
	if p.Alerts == nil {
		return
	}
	alerts, err := p.Alerts(r)
	if err != nil {
		return // the conversation shows what it has; the inbox link logs in again
	}
	ctx := r.Context()
	id, err := p.Svc.Store.AlertsChat(ctx, c.ID)
	if err != nil {
		p.ctxErr(r, err)
		return
	}
	for i := len(alerts) - 1; i >= 0; i-- { // oldest first
		a := alerts[i]
		b, _ := json.Marshal(a)
		_, err := p.Svc.Post(ctx, Message{Conversation: id, Sender: AlertsSender, Kind: KindAlert, Body: string(b), Ref: "alert:" + a.ID, State: a.Kind})
		p.ctxErr(r, err)
	}
}

// alerts opens the customer's alert conversation.
func (p *Pages) alerts(w http.ResponseWriter, r *http.Request, v *view) {
	id, err := p.Svc.Store.AlertsChat(r.Context(), v.C.ID)
	if err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	http.Redirect(w, r, "/chats/"+id, http.StatusSeeOther)
}

// service opens the customer's conversation with the bank's staff.
func (p *Pages) service(w http.ResponseWriter, r *http.Request, v *view) {
	if err := p.Svc.Store.Profile(r.Context(), v.C.ID, v.C.Name); err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	id, err := p.Svc.Store.ServiceConversation(r.Context(), v.C.ID)
	if err != nil {
		p.refuse(w, r, v, err, "")
		return
	}
	http.Redirect(w, r, "/chats/"+id, http.StatusSeeOther)
}
