package sms

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/egate-bank/egate/devices/pinsource"
)

// DefaultGatewayTimeout bounds one send to the operator when
// HTTPGatewayConfig.Timeout is zero.
const DefaultGatewayTimeout = 10 * time.Second

// ErrGateway is matched (errors.Is) by every error of the HTTP gateway.
var ErrGateway = errors.New("SMS gateway")

// GatewayError says why the operator did not take a message. It names the
// operator's host and the HTTP status, never the message text (which holds
// the code), the phone number or the token.
type GatewayError struct {
	Host    string // the operator's host[:port]
	Status  int    // the HTTP status of a non-2xx answer; 0 when there was none
	Timeout bool   // no answer within the gateway's timeout
	Err     error  // the cause without an answer: a context or transport error
}

func (e *GatewayError) Error() string {
	switch {
	case e.Status != 0:
		return fmt.Sprintf("SMS gateway %s answered HTTP %d %s", e.Host, e.Status, http.StatusText(e.Status))
	case e.Timeout:
		return fmt.Sprintf("SMS gateway %s: no answer in time (%v)", e.Host, e.Err)
	default:
		return fmt.Sprintf("SMS gateway %s: %v", e.Host, e.Err)
	}
}

// Unwrap makes errors.Is match ErrGateway and the cause (context.Canceled,
// context.DeadlineExceeded, …).
func (e *GatewayError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrGateway}
	}
	return []error{ErrGateway, e.Err}
}

// HTTPGatewayConfig configures HTTPGateway.
type HTTPGatewayConfig struct {
	// URL is the operator's send endpoint: https, or http to 127.0.0.1,
	// ::1 or localhost (tests).
	URL string
	// TokenSource is where the bearer token is: a pin-source ("file:/path"
	// with mode 0600, or "env:NAME"; see devices/pinsource). The token is
	// read once, by NewHTTPGateway.
	TokenSource string
	// Timeout bounds one send [DefaultGatewayTimeout].
	Timeout time.Duration
	// Client sends the requests; nil: a client of its own. Redirects are
	// never followed (a 3xx is an error), whatever the client.
	Client *http.Client
}

// CheckGatewayURL checks an operator URL: absolute, https (http only to a
// loopback host), without user:password (the token goes in TokenSource).
// Its errors say what is wrong without echoing the URL's query.
func CheckGatewayURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return errors.New("must be an absolute https URL, e.g. https://sms.operator.example/v1/send")
	}
	if u.User != nil {
		return errors.New("must not hold a user or password; the bearer token comes from the token-source")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if h == "localhost" || net.ParseIP(h).IsLoopback() {
			return nil
		}
		return fmt.Errorf("uses http to %s; the gateway must be https (plain http only to 127.0.0.1 or localhost, for tests)", h)
	default:
		return fmt.Errorf("has scheme %q; it must be https", u.Scheme)
	}
}

// HTTPGateway sends SMS through an operator's HTTP API: each message is one
// POST of the JSON {"to": phone, "text": message, "id": unique id} with
// "Authorization: Bearer <token>"; any 2xx answer means the operator took
// it. The id is new for every Send, so the operator can drop a duplicate of
// one request; egate does not retry by itself.
type HTTPGateway struct {
	url     string
	host    string
	token   string
	timeout time.Duration
	client  *http.Client
}

// NewHTTPGateway checks the URL and reads the token from its source. Its
// errors name the source, never the token.
func NewHTTPGateway(cfg HTTPGatewayConfig) (*HTTPGateway, error) {
	if err := CheckGatewayURL(cfg.URL); err != nil {
		return nil, fmt.Errorf("%w: the URL %w", ErrGateway, err)
	}
	u, _ := url.Parse(cfg.URL)
	tok, err := pinsource.Read(cfg.TokenSource)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the bearer token: %w", ErrGateway, err)
	}
	defer pinsource.Wipe(tok)
	for _, b := range tok {
		if b <= ' ' || b >= 0x7f {
			return nil, fmt.Errorf("%w: the bearer token from %s has a space or a character outside printable ASCII", ErrGateway, cfg.TokenSource)
		}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultGatewayTimeout
	}
	c := &http.Client{}
	if cfg.Client != nil {
		cp := *cfg.Client
		c = &cp
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &HTTPGateway{url: cfg.URL, host: u.Host, token: string(tok), timeout: timeout, client: c}, nil
}

// Send implements Gateway.
func (g *HTTPGateway) Send(ctx context.Context, m Message) error {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return &GatewayError{Host: g.host, Err: errors.New("no randomness for the message id")}
	}
	body, err := json.Marshal(struct {
		To   string `json:"to"`
		Text string `json:"text"`
		ID   string `json:"id"`
	}{m.To, m.Body, hex.EncodeToString(id[:])})
	if err != nil {
		return &GatewayError{Host: g.host, Err: errors.New("the message cannot be encoded as JSON")}
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url, bytes.NewReader(body))
	if err != nil {
		return &GatewayError{Host: g.host, Err: errors.New("cannot make the request")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.token)
	resp, err := g.client.Do(req)
	if err != nil {
		return g.transportError(ctx, err)
	}
	// Read a little of the answer so that the connection can be reused; its
	// content is not kept: an operator may echo the message.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &GatewayError{Host: g.host, Status: resp.StatusCode}
	}
	return nil
}

// transportError keeps the cause of a failed request without the request's
// URL (which *url.Error repeats) and without anything the request carried.
func (g *HTTPGateway) transportError(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return &GatewayError{Host: g.host, Timeout: errors.Is(cerr, context.DeadlineExceeded), Err: cerr}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if strings.Contains(msg, g.token) { // never expected; never let it out
		err = errors.New("transport error")
	}
	var ne net.Error
	return &GatewayError{Host: g.host, Timeout: errors.As(err, &ne) && ne.Timeout(), Err: err}
}
