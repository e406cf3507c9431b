package platform

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/egate-bank/egate/authsvc/oidcop"
	"github.com/egate-bank/egate/internal/i18n"
)

// Names of the platforms.
var Names = []string{"ebank", "mall", "messenger"}

// Config is one platform's section of the config file (platforms.ebank,
// platforms.mall, platforms.messenger: internal/config embeds it, so the
// keys are declared here only), plus what the process fills in when it
// starts the site (the fields tagged yaml:"-").
type Config struct {
	// Listen is where the platform's process listens (host:port).
	Listen string `yaml:"listen"`
	// PublicURL is where customers' browsers reach this platform; the OIDC
	// redirect URI is PublicURL + "/callback". Empty in the file:
	// http://<listen>.
	PublicURL    string `yaml:"public-url"`
	ClientSecret string `yaml:"client-secret" secret:"true"`
	// CookieKey encrypts and authenticates the session cookie; at least 32
	// characters, the same on every replica.
	CookieKey string `yaml:"cookie-key" secret:"true"`
	// Level is the authentication level a login asks for (acr_values);
	// the passport never grants less than the client's fixed minimum.
	Level int `yaml:"level"`
	// SessionTTL is how long a platform session lasts (default 8h, the
	// passport's session-ttl).
	SessionTTL time.Duration `yaml:"session-ttl"`
	// TxClient and TxSecret are the back-end client (authsvc.backend-clients,
	// scopes tx:authorize, tx:execute) with which the platform's pages call
	// the passport's transaction authorization API. Empty: the pages show
	// what they can and refuse to move money. The mall also calls ebank's
	// holds API (scope ebank:holds) as this client, and the messenger its
	// transfers API.
	TxClient string `yaml:"tx-client"`
	TxSecret string `yaml:"tx-secret" secret:"true"`
	// StatementFont (ebank only) is the TrueType font with Chinese glyphs
	// that the Chinese PDF statement embeds: an absolute path to a .ttf
	// file (fonts-droid-fallback's DroidSansFallbackFull.ttf by default).
	// Read when a statement is printed; when it cannot be, ebank warns at
	// start and prints the Chinese statement in English, saying why.
	StatementFont string `yaml:"statement-font"`

	// Name is ebank, mall or messenger: the section's key.
	Name string `yaml:"-"`
	// Issuer is the passport's issuer URL (platforms.issuer).
	Issuer string `yaml:"-"`
	// ClientID is the platform's OIDC client id (its name).
	ClientID string `yaml:"-"`
	// Others are the other platforms' URLs, linked from the home page.
	Others map[string]string `yaml:"-"`
	// Logouts remembers back-channel logouts (POST /backchannel-logout,
	// registered at the passport as the client's backchannel-logout-uri).
	// Default: in this process's memory (one replica); replicas of a
	// platform must share one.
	Logouts Logouts `yaml:"-"`
	// Now is the clock (default time.Now).
	Now func() time.Time `yaml:"-"`
}

// ErrConfig wraps configuration errors.
var ErrConfig = errors.New("platform config")

// ValidateSection checks what the config file sets for the platform whose
// keys start with prefix (platforms.ebank). Empty public-url, client-secret
// and cookie-key are allowed here: egate demo fills them in, and Validate
// refuses them when a site starts without them.
func (c Config) ValidateSection(prefix string) error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("%w: %s.listen %q: give host:port", ErrConfig, prefix, c.Listen)
	}
	if c.PublicURL != "" {
		if err := checkURL(prefix+".public-url", c.PublicURL); err != nil {
			return err
		}
	}
	if c.CookieKey != "" {
		if err := checkCookieKey(prefix+".cookie-key", c.CookieKey); err != nil {
			return err
		}
	}
	if c.StatementFont != "" {
		if prefix != "platforms.ebank" {
			return fmt.Errorf("%w: %s.statement-font: only ebank prints statements; remove the key", ErrConfig, prefix)
		}
		if !filepath.IsAbs(c.StatementFont) || !strings.EqualFold(filepath.Ext(c.StatementFont), ".ttf") {
			return fmt.Errorf("%w: %s.statement-font %q: give the absolute path of a TrueType (.ttf) font with Chinese glyphs, e.g. /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", ErrConfig, prefix, c.StatementFont)
		}
	}
	if (c.TxClient == "") != (c.TxSecret == "") {
		return fmt.Errorf("%w: %s.tx-client and %s.tx-secret go together: set both or neither", ErrConfig, prefix, prefix)
	}
	return checkLevelTTL(prefix, c.Level, c.SessionTTL)
}

// Validate checks a config ready to start a site.
func (c Config) Validate() error {
	known := false
	for _, n := range Names {
		known = known || n == c.Name
	}
	if !known {
		return fmt.Errorf("%w: name %q: use ebank, mall or messenger", ErrConfig, c.Name)
	}
	for k, v := range map[string]string{"public-url": c.PublicURL, "issuer": c.Issuer} {
		if err := checkURL(k, v); err != nil {
			return err
		}
	}
	if c.ClientID == "" {
		return fmt.Errorf("%w: client-id is empty", ErrConfig)
	}
	if err := checkCookieKey("cookie-key", c.CookieKey); err != nil {
		return err
	}
	return checkLevelTTL("", c.Level, c.SessionTTL)
}

func checkURL(key, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: %s %q: give an absolute http(s) URL", ErrConfig, key, v)
	}
	return nil
}

func checkCookieKey(key, v string) error {
	if len(v) < 32 {
		return fmt.Errorf("%w: %s must be at least 32 characters", ErrConfig, key)
	}
	return nil
}

func checkLevelTTL(prefix string, level int, ttl time.Duration) error {
	if prefix != "" {
		prefix += "."
	}
	if level < 1 || level > 5 {
		return fmt.Errorf("%w: %slevel %d: use 1 to 5", ErrConfig, prefix, level)
	}
	if ttl < 0 {
		return fmt.Errorf("%w: %ssession-ttl must not be negative", ErrConfig, prefix)
	}
	return nil
}

// Session is what the platform knows of the logged-in customer.
type Session struct {
	Subject  string    `json:"sub"`
	Name     string    `json:"name,omitempty"`
	Level    int       `json:"level"`
	ACR      string    `json:"acr"`
	AMR      []string  `json:"amr,omitempty"`
	AuthTime time.Time `json:"auth_time"`
	// Created is when the platform made the session (its clock): a
	// back-channel logout ends the sessions made before it.
	Created time.Time `json:"created"`
	IDToken string    `json:"id_token"` // the logout hint
	// AccessToken calls the passport's APIs for the customer (the
	// messenger's alert inbox). Never shown by /session.
	AccessToken string `json:"access_token,omitempty"`
}

// SessionCookie names a platform's session cookie. Browsers scope cookies
// by host, not port, so each platform has its own name: on one host (the
// demo) they would otherwise overwrite each other.
func SessionCookie(platform string) string { return "egate_" + platform + "_session" }

// Site is one platform's web front: login, callback, home, logout.
type Site struct {
	cfg     Config
	rp      rp.RelyingParty
	cookies *httphelper.CookieHandler
	mux     *http.ServeMux
	client  *http.Client
	logouts Logouts
	now     func() time.Time
	extra   bool         // Mount added pages (ebank's accounts and transfers)
	homeFor http.Handler // the logged-in customer's home page (SetHome), when set
}

// New discovers the passport and builds the site. The passport must be up.
func New(ctx context.Context, cfg Config, client *http.Client) (*Site, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	k := sha256.Sum256([]byte("egate-platform-cookie-hash\x00" + cfg.CookieKey))
	e := sha256.Sum256([]byte("egate-platform-cookie-enc\x00" + cfg.CookieKey))
	var copts []httphelper.CookieHandlerOpt
	if strings.HasPrefix(cfg.PublicURL, "http://") {
		copts = append(copts, httphelper.WithUnsecure())
	}
	cookies := httphelper.NewCookieHandler(k[:], e[:], copts...)
	opts := []rp.Option{
		rp.WithPKCE(cookies),
		rp.WithCookieHandler(cookies),
		rp.WithVerifierOpts(rp.WithIssuedAtOffset(5 * time.Second)),
		rp.WithErrorHandler(signinError(cfg.Name)),
	}
	if client != nil {
		opts = append(opts, rp.WithHTTPClient(client))
	}
	redirect := strings.TrimRight(cfg.PublicURL, "/") + "/callback"
	party, err := rp.NewRelyingPartyOIDC(ctx, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, redirect, []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeOfflineAccess}, opts...)
	if err != nil {
		return nil, fmt.Errorf("platform %s: discovering the passport at %s: %w", cfg.Name, cfg.Issuer, err)
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	s := &Site{cfg: cfg, rp: party, cookies: cookies, mux: http.NewServeMux(), logouts: cfg.Logouts, now: cfg.Now}
	if s.logouts == nil {
		s.logouts = NewMemoryLogouts(cfg.SessionTTL)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.mux.HandleFunc("GET /{$}", s.home)
	s.mux.HandleFunc("GET /login", s.login)
	s.mux.HandleFunc("GET /callback", rp.CodeExchangeHandler(s.callback, party))
	s.mux.HandleFunc("POST /logout", s.logout)
	s.mux.HandleFunc("GET /session", s.sessionJSON)
	s.mux.HandleFunc("POST /backchannel-logout", s.backchannelLogout)
	if cfg.Name == "messenger" {
		s.mux.HandleFunc("GET /inbox", s.inbox)
	}
	s.client = client
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	return s, nil
}

// ServeHTTP serves the site.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Session returns the request's platform session, if any: not expired,
// and not ended by a back-channel logout from the passport.
func (s *Site) Session(r *http.Request) (*Session, bool) {
	v, err := s.cookies.CheckCookie(r, SessionCookie(s.cfg.Name))
	if err != nil {
		return nil, false
	}
	var ss Session
	if json.Unmarshal([]byte(v), &ss) != nil || ss.Subject == "" {
		return nil, false
	}
	if ss.Created.IsZero() || s.now().Sub(ss.Created) > s.cfg.SessionTTL {
		return nil, false
	}
	if ended, err := s.logouts.Ended(r.Context(), ss.Subject, ss.Created); err != nil || ended {
		return nil, false
	}
	return &ss, true
}

func newState() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// login starts an authorization request at the platform's level, or at a
// higher one given by ?level=N (step-up).
func (s *Site) login(w http.ResponseWriter, r *http.Request) {
	level := s.cfg.Level
	if l := r.URL.Query().Get("level"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 5 {
			http.Error(w, "level must be 1 to 5", http.StatusBadRequest)
			return
		}
		if n > level {
			level = n
		}
	}
	rp.AuthURLHandler(newState, s.rp, acrValues(level))(w, r)
}

func (s *Site) callback(w http.ResponseWriter, r *http.Request, tokens *oidc.Tokens[*oidc.IDTokenClaims], state string, party rp.RelyingParty) {
	c := tokens.IDTokenClaims
	ss := Session{
		Subject: c.Subject, Name: c.PreferredUsername, ACR: c.AuthenticationContextClassReference,
		AMR: c.AuthenticationMethodsReferences, AuthTime: c.AuthTime.AsTime(), IDToken: tokens.IDToken, Created: s.now(),
	}
	if (s.cfg.Name == "messenger" || s.cfg.Name == "ebank") && tokens.Token != nil {
		ss.AccessToken = tokens.AccessToken
	}
	if ss.Name == "" {
		ss.Name = c.Name
	}
	ss.Level = oidcop.ParseACR(ss.ACR)
	b, _ := json.Marshal(ss)
	if err := s.cookies.SetCookie(w, SessionCookie(s.cfg.Name), string(b)); err != nil {
		http.Error(w, "could not keep the session", http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, "/", http.StatusFound)
}

func (s *Site) logout(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.Session(r)
	s.cookies.DeleteCookie(w, SessionCookie(s.cfg.Name))
	if !ok {
		http.Redirect(w, r, "/", http.StatusFound)
		return
	}
	u, err := rp.EndSession(r.Context(), s.rp, ss.IDToken, strings.TrimRight(s.cfg.PublicURL, "/")+"/", "", "", nil)
	if err != nil || u == nil {
		http.Redirect(w, r, "/", http.StatusFound)
		return
	}
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Site) sessionJSON(w http.ResponseWriter, r *http.Request) {
	ss, ok := s.Session(r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"code":"login_required","message":"log in first"}}`))
		return
	}
	cp := *ss
	cp.IDToken, cp.AccessToken = "", ""
	json.NewEncoder(w).Encode(cp)
}

var homePage = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="{{.P.HTMLLang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.Title}}</title>
<style>body{font-family:system-ui,"Noto Sans CJK SC",sans-serif;max-width:40em;margin:2em auto;color:#1a1a1a}.who{padding:1em;background:#eef}:focus-visible{outline:3px solid #e08a00}</style></head>
<body><p><a id="lang" href="/?lang={{.LangCode}}" lang="{{.LangCode}}" hreflang="{{.LangCode}}">{{.LangName}}</a></p><h1>{{.Title}}</h1>
{{if .S}}<div class="who" id="who">{{.Who}}</div>
<p>{{if .Ebank}}<a id="accounts" href="/accounts">{{.P.T "nav.accounts"}}</a> · <a id="transfer" href="/transfer">{{.P.T "nav.transfer"}}</a> · <a id="logins" href="/logins">{{.P.T "inbox.logins"}}</a> · <a id="settings" href="/settings">{{.P.T "self.title"}}</a> · {{end}}{{if .Mall}}<a id="shop" href="/shop">{{.P.T "mall.shop"}}</a> · <a id="cart" href="/cart">{{.P.T "mall.cart"}}</a> · <a id="orders" href="/orders">{{.P.T "mall.orders"}}</a> · <a id="merchant" href="/merchant">{{.P.T "mall.merchant"}}</a> · {{end}}{{if .Messenger}}<a id="chats" href="/chats">{{.P.T "msg.chats"}}</a> · <a id="receive" href="/receive">{{.P.T "msg.receive"}}</a> · <a id="service" href="/service">{{.P.T "msg.service"}}</a> · {{end}}<a href="/login?level={{.Next}}">{{.P.T "home.raise" .Next}}</a>{{if .Inbox}} · <a id="inbox" href="{{if .Messenger}}/alerts{{else}}/inbox{{end}}">{{.P.T "home.alerts"}}</a>{{end}}</p>
<form method="post" action="/logout"><button id="logout">{{.P.T "nav.logout"}}</button></form>
{{else}}<p><a id="login" href="/login">{{.P.T "home.login"}}</a></p>{{end}}
<h2>{{.P.T "home.others"}}</h2><ul>{{range $n, $u := .Others}}<li><a href="{{$u}}">{{$.P.T (print "platform." $n)}}</a></li>{{end}}</ul>
</body></html>`))

func (s *Site) home(w http.ResponseWriter, r *http.Request) {
	if s.homeFor != nil {
		s.homeFor.ServeHTTP(w, r)
		return
	}
	ss, _ := s.Session(r)
	next := s.cfg.Level + 1
	if ss != nil && ss.Level >= next {
		next = ss.Level + 1
	}
	if next > 5 {
		next = 5
	}
	i18n.Remember(w, r)
	p := i18n.For(r, nil)
	code, name := p.Other()
	var who template.HTML
	if ss != nil {
		e := template.HTMLEscapeString
		who = template.HTML(p.T("home.who", `<b id="name">`+e(ss.Name)+`</b>`, e(ss.Subject), `<b id="level">`+strconv.Itoa(ss.Level)+`</b>`,
			e(strings.Join(ss.AMR, " ")), e(p.Time(ss.AuthTime))))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	homePage.Execute(w, map[string]any{"P": p, "LangCode": code, "LangName": name, "Title": p.T("platform." + s.cfg.Name), "S": ss, "Who": who,
		"Next": next, "Others": s.cfg.Others, "Inbox": s.cfg.Name == "messenger", "Ebank": s.cfg.Name == "ebank" && s.extra,
		"Mall": s.cfg.Name == "mall" && s.extra, "Messenger": s.cfg.Name == "messenger" && s.extra})
}

// Mount serves h on the site's mux at each of paths (patterns of
// http.ServeMux), beside login, callback, home and logout: the ebank's
// customer pages. Call before serving.
func (s *Site) Mount(h http.Handler, paths ...string) {
	for _, p := range paths {
		s.mux.Handle(p, h)
	}
	s.extra = true
}

// SetHome serves h as the home page (ebank's: a visitor's welcome, a
// customer's overview of their accounts) instead of the site's own.
// Call before serving.
func (s *Site) SetHome(h http.Handler) { s.homeFor = h }

var titles = map[string]string{"ebank": "eBank", "mall": "Mall", "messenger": "Messenger"}
