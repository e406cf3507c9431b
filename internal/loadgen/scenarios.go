package loadgen

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/egate-bank/egate/devices/otp"
)

// Scenarios egate load knows, in the order it runs them.
var Scenarios = []string{"login", "refresh", "otp"}

// Target is the egate under load and the credentials the scenarios use.
type Target struct {
	Base   *url.URL     // the passport, e.g. http://127.0.0.1:8080 (CheckTarget)
	Client *http.Client // from Client: loopback only, no redirects followed
	// Workers, when set, are each worker's own client (ClientFrom with
	// WorkerAddr), so that each login comes from its own address; else
	// every worker uses Client.
	Workers []*http.Client
	Tally   *Tally // every request sent to Base and the status it got

	// ClientID is the OIDC client the logins are for: a public client
	// (PKCE, no secret) whose redirect URI is RedirectURI, never visited.
	ClientID, RedirectURI string
	// BackendID and BackendSecret are the back-end client of the OTP
	// verify API (scope otp:verify).
	BackendID, BackendSecret string

	Customers *Customers

	mu      sync.Mutex
	refresh map[int]string // worker → its current refresh token
}

// page is one answered request.
type page struct {
	status int
	loc    string
	body   string
}

func (t *Target) abs(u string) string {
	if strings.HasPrefix(u, "/") {
		return strings.TrimRight(t.Base.String(), "/") + u
	}
	return u
}

func (t *Target) inside(u string) bool {
	return strings.HasPrefix(u, "/") || strings.HasPrefix(u, strings.TrimRight(t.Base.String(), "/")+"/")
}

func (t *Target) do(c *http.Client, req *http.Request) (page, error) {
	r, err := c.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return page{}, req.Context().Err()
		}
		return page{}, &Failure{Code: "transport"}
	}
	defer r.Body.Close()
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	t.Tally.Add(req.Method, r.StatusCode)
	if err != nil {
		return page{}, &Failure{Status: r.StatusCode, Code: "transport"}
	}
	return page{status: r.StatusCode, loc: r.Header.Get("Location"), body: string(b)}, nil
}

func (t *Target) get(ctx context.Context, c *http.Client, u string) (page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.abs(u), nil)
	if err != nil {
		return page{}, err
	}
	return t.do(c, req)
}

func (t *Target) postForm(ctx context.Context, c *http.Client, u string, form url.Values) (page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.abs(u), strings.NewReader(form.Encode()))
	if err != nil {
		return page{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return t.do(c, req)
}

// follow follows redirects inside the passport and stops at one leading
// elsewhere (the client's redirect URI), which it does not visit.
// Use it as t.follow(ctx, c)(t.get(…)).
func (t *Target) follow(ctx context.Context, c *http.Client) func(page, error) (page, error) {
	return func(p page, err error) (page, error) {
		for i := 0; err == nil && i < 10 && p.loc != "" && t.inside(p.loc); i++ {
			p, err = t.get(ctx, c, p.loc)
		}
		return p, err
	}
}

var (
	formIDRE   = regexp.MustCompile(`name="id" value="([^"]+)"`)
	dataCodeRE = regexp.MustCompile(`data-code="([^"]+)"`)
)

// failure describes an unexpected answer: the server's error code (a
// page's data-code or a JSON body's "error") or what was expected.
func failure(p page, expected string) *Failure {
	if m := dataCodeRE.FindStringSubmatch(p.body); m != nil {
		return &Failure{Status: p.status, Code: m[1]}
	}
	var j struct {
		Error json.RawMessage `json:"error"` // OAuth: a string; egate's APIs: {"code": …}
	}
	if json.Unmarshal([]byte(p.body), &j) == nil && len(j.Error) > 0 {
		var code string
		var obj struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(j.Error, &code) == nil && code != "" {
			return &Failure{Status: p.status, Code: code}
		}
		if json.Unmarshal(j.Error, &obj) == nil && obj.Code != "" {
			return &Failure{Status: p.status, Code: obj.Code}
		}
	}
	return &Failure{Status: p.status, Code: expected}
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
}

// Login is one whole login of worker w's customer: the authorization
// request with PKCE (S256), the passport's name, password and token pages
// with an HOTP code of the customer's token, and the code exchange at
// /oauth/token. It keeps the refresh token for the refresh scenario.
func (t *Target) Login(ctx context.Context, w int) error {
	cu, err := t.Customers.For(w)
	if err != nil {
		return err
	}
	jar, _ := cookiejar.New(nil)
	c := *t.clientFor(w)
	c.Jar = jar
	verifier, state := randomToken(), randomToken()[:16]
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {t.ClientID}, "redirect_uri": {t.RedirectURI}, "response_type": {"code"},
		"scope": {"openid offline_access"}, "state": {state}, "nonce": {randomToken()[:16]},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	p, err := t.follow(ctx, &c)(t.get(ctx, &c, "/authorize?"+q.Encode()))
	if err != nil {
		return err
	}
	m := formIDRE.FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil {
		return failure(p, "no_login_page")
	}
	id := m[1]
	if p, err = t.postForm(ctx, &c, "/login/name", url.Values{"id": {id}, "login_name": {cu.Login}}); err != nil {
		return err
	}
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="password"`) {
		return failure(p, "no_password_page")
	}
	if p, err = t.follow(ctx, &c)(t.postForm(ctx, &c, "/login/password", url.Values{"id": {id}, "password": {t.Customers.Password}})); err != nil {
		return err
	}
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="response"`) && !strings.Contains(p.body, `factor-otp`) {
		return failure(p, "no_factor_page")
	}
	if p, err = t.follow(ctx, &c)(t.postForm(ctx, &c, "/login/factor/begin", url.Values{"id": {id}, "factor": {"otp"}})); err != nil {
		return err
	}
	if p.status != http.StatusOK || !strings.Contains(p.body, `name="response"`) {
		return failure(p, "no_token_page")
	}
	code, err := t.Customers.NextCode(ctx, w)
	if err != nil {
		return err
	}
	if p, err = t.follow(ctx, &c)(t.postForm(ctx, &c, "/login/factor", url.Values{"id": {id}, "response": {code}})); err != nil {
		return err
	}
	if !strings.HasPrefix(p.loc, t.RedirectURI+"?") {
		return failure(p, "no_redirect_to_client")
	}
	back, err := url.Parse(p.loc)
	if err != nil || back.Query().Get("state") != state || back.Query().Get("code") == "" {
		return &Failure{Status: p.status, Code: "bad_redirect"}
	}
	tok, err := t.token(ctx, w, url.Values{
		"grant_type": {"authorization_code"}, "code": {back.Query().Get("code")}, "redirect_uri": {t.RedirectURI},
		"code_verifier": {verifier}, "client_id": {t.ClientID},
	})
	if err != nil {
		return err
	}
	t.mu.Lock()
	if t.refresh == nil {
		t.refresh = map[int]string{}
	}
	t.refresh[w] = tok.RefreshToken
	t.mu.Unlock()
	return nil
}

func (t *Target) clientFor(w int) *http.Client {
	if w < len(t.Workers) {
		return t.Workers[w]
	}
	return t.Client
}

func (t *Target) token(ctx context.Context, w int, form url.Values) (tokenResponse, error) {
	var tok tokenResponse
	p, err := t.postForm(ctx, t.clientFor(w), "/oauth/token", form)
	if err != nil {
		return tok, err
	}
	if p.status != http.StatusOK || json.Unmarshal([]byte(p.body), &tok) != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		return tok, failure(p, "no_tokens")
	}
	return tok, nil
}

// HasRefreshToken says whether worker w holds a refresh token (from a
// login), which Refresh needs.
func (t *Target) HasRefreshToken(w int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.refresh[w] != ""
}

// Refresh rotates worker w's refresh token at /oauth/token (the old one is
// spent, the new one kept).
func (t *Target) Refresh(ctx context.Context, w int) error {
	t.mu.Lock()
	rt := t.refresh[w]
	t.mu.Unlock()
	if rt == "" {
		return &Failure{Code: "no_refresh_token"}
	}
	tok, err := t.token(ctx, w, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {t.ClientID}})
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.refresh[w] = tok.RefreshToken
	t.mu.Unlock()
	return nil
}

// VerifyOTP calls POST /v1/otp/verify as the back-end client with the next
// code of worker w's customer's token.
func (t *Target) VerifyOTP(ctx context.Context, w int) error {
	cu, err := t.Customers.For(w)
	if err != nil {
		return err
	}
	code, err := t.Customers.NextCode(ctx, w)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"passport_id": cu.PassportID, "code": code})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.abs("/v1/otp/verify"), strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(t.BackendID, t.BackendSecret)
	p, err := t.do(t.clientFor(w), req)
	if err != nil {
		return err
	}
	var ok struct {
		OK bool `json:"ok"`
	}
	if p.status != http.StatusOK || json.Unmarshal([]byte(p.body), &ok) != nil || !ok.OK {
		return failure(p, "not_accepted")
	}
	return nil
}

// Customer is one load-test customer: a login name, its passport id, and
// its HOTP token (seed and the next counter to use).
type Customer struct {
	Login      string `json:"login"`
	PassportID string `json:"passport_id"`
	Serial     string `json:"serial"`
	Seed       []byte `json:"seed"`
	Counter    uint64 `json:"counter"`
}

// Customers is the file egate load seed writes: the customers' common
// password and each one's token. Worker w uses customer w only, so a
// token's codes are used in order.
type Customers struct {
	Password string     `json:"password"`
	List     []Customer `json:"customers"`
	mu       sync.Mutex
}

// ErrTooFewCustomers reports more workers than seeded customers.
var ErrTooFewCustomers = errors.New("loadgen: fewer load-test customers than --concurrency (egate load seed --customers N makes more)")

// For is worker w's customer.
func (cs *Customers) For(w int) (Customer, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if w >= len(cs.List) {
		return Customer{}, ErrTooFewCustomers
	}
	return cs.List[w], nil
}

// NextCode is the next HOTP code of worker w's customer's token; the
// counter moves on whether the server accepts it or not (the server looks
// ahead, never behind).
func (cs *Customers) NextCode(ctx context.Context, w int) (string, error) {
	cs.mu.Lock()
	if w >= len(cs.List) {
		cs.mu.Unlock()
		return "", ErrTooFewCustomers
	}
	cu := &cs.List[w]
	seed, c := cu.Seed, cu.Counter
	cu.Counter++
	cs.mu.Unlock()
	return otp.HOTP(ctx, otp.SoftwareMAC{Key: seed}, crypto.SHA1, c, 6)
}

// Marshal is the customers file's content.
func (cs *Customers) Marshal() ([]byte, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return json.MarshalIndent(cs, "", "  ")
}

// ParseCustomers reads a customers file.
func ParseCustomers(b []byte) (*Customers, error) {
	var cs Customers
	if err := json.Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("loadgen: the customers file: %w", err)
	}
	if cs.Password == "" || len(cs.List) == 0 {
		return nil, errors.New("loadgen: the customers file names no customer (egate load seed writes it)")
	}
	return &cs, nil
}
