// Package txclient is what a platform (ebank, mall, messenger, the ATM
// agent) uses to call egate's transaction authorization API: authorize an
// intent, begin a challenge with one of the customer's tools, send the
// proof for a grant, check and consume the grant just before executing,
// cancel or reverse, and post a balance-change alert. The types here are
// the API's JSON bodies; authsvc/txauth serves them.
//
// The client authenticates as a registered back-end client (HTTP Basic,
// authsvc.backend-clients) with the scopes tx:authorize, tx:execute and
// alerts:balance as needed. Every error the API answers is an *APIError
// carrying the HTTP status and the stable code (see authsvc/txauth/README.md).
// With EncryptTo set (FetchEncryptionKey), intents and proofs travel as a
// JWE that only egate's HSM key opens.
package txclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/jwe"
)

// Decisions.
const (
	Allow  = "allow"
	Review = "review"
	Deny   = "deny"
)

// States of an intent.
const (
	StateAllowed   = "allowed"   // waiting for a proof at Level
	StateReview    = "review"    // held for the bank's staff
	StateDenied    = "denied"    // refused when authorized
	StateRefused   = "refused"   // refused by staff after review
	StateGranted   = "granted"   // proved; a grant is out
	StateExecuted  = "executed"  // the grant was consumed
	StateCancelled = "cancelled" // cancelled or reversed; what was counted is released
)

// Tool is an authentication tool the customer has that reaches a level.
type Tool struct {
	Name  string `json:"name"`  // the factor: sms, gridcard, otp, ushield, piv, ushield2
	Level int    `json:"level"` // the level it proves
}

// Reason is one machine-readable reason of a decision.
type Reason struct {
	// Code: "limit" (a limit of the table raised the level or stops the
	// intent), "own_limit" (the customer's own lower limit did), "rule" (a
	// risk rule fired), "review" (staff decided).
	Code   string `json:"code"`
	Limit  string `json:"limit,omitempty"` // per-transaction, per-day, per-year
	Level  int    `json:"level,omitempty"` // the level whose limit it is, or a step-up's level
	Max    int64  `json:"max,omitempty"`   // the limit, fen
	Used   int64  `json:"used,omitempty"`  // already used in the period, fen
	Rule   string `json:"rule,omitempty"`
	Action string `json:"action,omitempty"` // a rule's: step-up, review, deny
	Text   string `json:"text"`             // a sentence a customer can read
}

// Decision is the answer to an authorize call (and to GET /v1/tx/{hash}).
type Decision struct {
	Intent   string `json:"intent"`   // the intent's hash (hex): its id in every later call
	Decision string `json:"decision"` // allow, review, deny
	State    string `json:"state"`    // see the State constants
	// Level is the authentication level a proof must reach (allow; review
	// once approved). BaseLevel is what the limit table alone asked.
	Level     int `json:"level,omitempty"`
	BaseLevel int `json:"base_level,omitempty"`
	// Tools are the customer's tools at or above Level.
	Tools   []Tool   `json:"tools"`
	Reasons []Reason `json:"reasons"`
	// Message is a sentence for the customer: which limit stopped the
	// intent and which tool would allow it, or why it is held.
	Message string `json:"message"`
	// Text is what the customer confirms (what a 2nd-generation U-shield
	// shows): "Pay 1,234.56 yuan to 6222…0002 from 6222…0001".
	Text      string    `json:"text"`
	DecidedAt time.Time `json:"decided_at"`
	// Replayed is true when the same intent was authorized before: this
	// is the stored decision and nothing was counted again.
	Replayed bool `json:"replayed,omitempty"`
	// Challenge is the challenge begun by an authorize call that asked
	// for one (AuthorizeRequest.Challenge) and was allowed at a level its
	// tool reaches: answer it with Proof, as one of POST …/challenge.
	// ChallengeError instead says why none was begun; the intent stays
	// allowed, and the platform asks the customer for a tool. Neither is
	// stored with the decision: GET /v1/tx/{hash} has none.
	Challenge      *Challenge      `json:"challenge,omitempty"`
	ChallengeError *ChallengeError `json:"challenge_error,omitempty"`
}

// AuthorizeRequest is the body of POST /v1/tx/authorize: the intent, and
// optionally the challenge to begin when the decision is allow (what POST
// /v1/tx/{hash}/challenge would begin, in the same call). The challenge is
// no part of the intent nor of its hash.
type AuthorizeRequest struct {
	intent.Intent
	Challenge *ChallengeRequest `json:"challenge,omitempty"`
}

// ChallengeError is why an authorize call did not begin the challenge it
// asked for: the status, code and message POST /v1/tx/{hash}/challenge
// would answer (unknown_factor, level_too_low, not_enrolled, locked, …),
// or challenge_open for a repeated authorize whose intent has a challenge
// still open.
type ChallengeError struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Err is e as the *APIError the challenge call would have returned.
func (e *ChallengeError) Err() error {
	return &APIError{Status: e.Status, Code: e.Code, Message: e.Message}
}

// ChallengeRequest begins a challenge for an intent.
type ChallengeRequest struct {
	Factor   string `json:"factor"`
	ClientIP string `json:"client_ip,omitempty"`
}

// Challenge is what the customer is asked.
type Challenge struct {
	ID        string    `json:"challenge_id"`
	Factor    string    `json:"factor"`
	Level     int       `json:"level"`
	Prompt    string    `json:"prompt"`
	Data      []byte    `json:"data,omitempty"` // what a device signs or computes over (base64)
	Text      string    `json:"text"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ProofRequest answers a challenge. Intent, when set, is the intent the
// platform still holds: a proof is refused if it is not the intent the
// challenge was begun for (fields changed after the challenge).
//
// A proof by a signing order (a tool the customer holds: U-shield, PIV,
// phone app) names the Order and the Browser that follows it instead of a
// challenge and a response: the order's signature, already checked when
// the device posted it, buys the grant once.
type ProofRequest struct {
	ChallengeID string         `json:"challenge_id,omitempty"`
	Response    string         `json:"response,omitempty"`
	Order       string         `json:"order,omitempty"`
	Browser     string         `json:"browser,omitempty"`
	ClientIP    string         `json:"client_ip,omitempty"`
	Intent      *intent.Intent `json:"intent,omitempty"`
}

// OrderRequest asks for a signing order for an intent: the customer's tool
// (ushield, ushield2, piv, phone) signs the intent's text and a challenge
// bound to its hash. Browser is the SHA-256 (hex) of a secret only the
// confirming browser holds (a cookie of the platform's): only a call
// naming it collects the order or proves with it.
type OrderRequest struct {
	Factor   string `json:"factor"`
	Browser  string `json:"browser"`
	ClientIP string `json:"client_ip,omitempty"`
}

// Order is a signing order made for an intent. A desktop tool is reached
// by the Autostart link (egate://order?…, which starts egate helper), the
// phone app by the animated QR of OrderStatus (ByQR).
type Order struct {
	Ref       string    `json:"ref"`
	Factor    string    `json:"factor"`
	Level     int       `json:"level"`
	Text      string    `json:"text"` // what the device shows and signs, with the challenge
	Autostart string    `json:"autostart,omitempty"`
	ByQR      bool      `json:"by_qr"`
	ExpiresAt time.Time `json:"expires_at"`
}

// OrderCollect asks where an order is, for the browser that follows it.
type OrderCollect struct {
	Ref     string `json:"ref"`
	Browser string `json:"browser"`
}

// OrderStatus is where a signing order is: pending, user_sign, complete,
// failed, cancelled or expired, with the code of a failure or a device's
// reason, a sentence for the customer, and (pending, phone app) the
// animated QR's current image as a data: URL.
type OrderStatus struct {
	Ref     string `json:"ref"`
	State   string `json:"state"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
	QR      string `json:"qr,omitempty"`
}

// Grant is what a proof buys: a single-use token bound to the intent.
type Grant struct {
	Token     string    `json:"grant"`
	Intent    string    `json:"intent"`
	Level     int       `json:"level"`
	Factor    string    `json:"factor"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ExecuteRequest is the check a platform makes just before it executes:
// the grant and the intent it is about to execute.
type ExecuteRequest struct {
	Grant  string        `json:"grant"`
	Intent intent.Intent `json:"intent"`
}

// Executed says the grant was consumed: execute the movement now.
type Executed struct {
	Intent string `json:"intent"`
	State  string `json:"state"`
	Amount int64  `json:"amount"`
}

// CancelRequest cancels an intent or reverses an executed one.
type CancelRequest struct {
	Reason string `json:"reason,omitempty"`
}

// Cancelled says what a cancel did.
type Cancelled struct {
	Intent string `json:"intent"`
	State  string `json:"state"`
	// Released is true when the limit usage counted for the intent was
	// given back (by this call).
	Released bool `json:"released"`
}

// BalanceAlert is a balance change a platform reports after it executed a
// movement.
type BalanceAlert struct {
	// ID is the platform's id of the movement: posting the same id again
	// posts nothing.
	ID          string `json:"id"`
	Customer    string `json:"customer"`
	Account     string `json:"account"`
	Amount      int64  `json:"amount"`  // fen; negative for money out
	Balance     int64  `json:"balance"` // fen, after the movement
	Currency    string `json:"currency"`
	Description string `json:"description,omitempty"`
}

// AlertPosted answers a balance alert.
type AlertPosted struct {
	Posted bool `json:"posted"` // false: the id was posted before, or the customer turned these alerts off
}

// Preferences are a customer's alert preferences.
type Preferences struct {
	Customer string `json:"customer"`
	Risk     bool   `json:"risk"`    // risk alerts (denied, stepped up, held for review)
	Balance  bool   `json:"balance"` // balance-change alerts
	// SMSMinAmount: alerts for smaller amounts (fen) go to the messenger
	// inbox only, not by SMS.
	SMSMinAmount int64 `json:"sms_min_amount"`
}

// APIError is an error answer of the API.
type APIError struct {
	Status    int
	Code      string
	Message   string
	RequestID string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("egate tx API: %d %s: %s", e.Status, e.Code, e.Message)
}

// Code returns the API error code of err, or "".
func Code(err error) string {
	var e *APIError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Client calls the API as one back-end client.
type Client struct {
	BaseURL string       // e.g. https://auth.bank.example
	ID      string       // the back-end client id
	Secret  string       // its secret (never logged)
	HTTP    *http.Client // nil, or one without a Transport: a pool that keeps 64 idle connections to egate
	// EncryptTo, when set, is egate's transaction-encryption key
	// (FetchEncryptionKey): Authorize and Proof then send their bodies as
	// a compact JWE encrypted to it, which only egate's HSM opens.
	EncryptTo *jose.JSONWebKey
}

// pooled is the transport of a Client whose HTTP client names none: Go's
// default transport keeps 2 idle connections a host, so a platform with
// more calls than that in flight to egate opened (and left in TIME_WAIT) a
// new TCP connection for most of them.
var pooled = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	return t
}()

// httpClient is c.HTTP, with the pooled transport when it has none.
func (c *Client) httpClient() *http.Client {
	switch {
	case c.HTTP == nil:
		return &http.Client{Transport: pooled}
	case c.HTTP.Transport == nil:
		hc := *c.HTTP
		hc.Transport = pooled
		return &hc
	}
	return c.HTTP
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	return c.send(ctx, method, path, in, out, false)
}

// send is do, with the body sealed to EncryptTo when seal is set.
func (c *Client) send(ctx context.Context, method, path string, in, out any, seal bool) error {
	var body io.Reader
	ctype := "application/json"
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		if seal && c.EncryptTo != nil {
			s, err := jwe.Seal(*c.EncryptTo, b)
			if err != nil {
				return fmt.Errorf("encrypting the request to egate's key: %w", err)
			}
			b, ctype = []byte(s), jwe.ContentType
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", ctype)
	}
	req.SetBasicAuth(c.ID, c.Secret)
	hc := c.httpClient()
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("egate tx API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("egate tx API %s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Code      string `json:"code"`
				Message   string `json:"message"`
				RequestID string `json:"request_id"`
			} `json:"error"`
		}
		json.Unmarshal(b, &e)
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message, RequestID: e.Error.RequestID}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("egate tx API %s %s: decoding answer: %w", method, path, err)
	}
	return nil
}

// Authorize posts an intent and returns the decision.
func (c *Client) Authorize(ctx context.Context, in intent.Intent) (Decision, error) {
	var d Decision
	return d, c.send(ctx, http.MethodPost, "/v1/tx/authorize", in, &d, true)
}

// AuthorizeWithChallenge posts an intent and asks egate to begin a
// challenge with ch.Factor in the same call when the decision is allow and
// the tool reaches the level: the decision then carries the Challenge (one
// HTTP round trip fewer than Authorize and Challenge), or a
// ChallengeError when none was begun (a tool below the level, one the
// customer lacks: ask the customer for a tool and call Challenge). The
// same intent posted again returns the stored decision and begins a
// challenge only when none of the intent's is still open (otherwise
// ChallengeError challenge_open).
func (c *Client) AuthorizeWithChallenge(ctx context.Context, in intent.Intent, ch ChallengeRequest) (Decision, error) {
	var d Decision
	return d, c.send(ctx, http.MethodPost, "/v1/tx/authorize", AuthorizeRequest{Intent: in, Challenge: &ch}, &d, true)
}

// Get returns an intent's decision and state.
func (c *Client) Get(ctx context.Context, hash string) (Decision, error) {
	var d Decision
	return d, c.do(ctx, http.MethodGet, "/v1/tx/"+url.PathEscape(hash), nil, &d)
}

// Challenge begins a challenge with factor for the intent.
func (c *Client) Challenge(ctx context.Context, hash string, r ChallengeRequest) (Challenge, error) {
	var ch Challenge
	return ch, c.do(ctx, http.MethodPost, "/v1/tx/"+url.PathEscape(hash)+"/challenge", r, &ch)
}

// Proof answers a challenge and returns the grant.
func (c *Client) Proof(ctx context.Context, hash string, r ProofRequest) (Grant, error) {
	var g Grant
	return g, c.send(ctx, http.MethodPost, "/v1/tx/"+url.PathEscape(hash)+"/proof", r, &g, true)
}

// Order makes a signing order for the intent with one of the customer's
// tools that sign (OrderRequest).
func (c *Client) Order(ctx context.Context, hash string, r OrderRequest) (Order, error) {
	var o Order
	return o, c.do(ctx, http.MethodPost, "/v1/tx/"+url.PathEscape(hash)+"/order", r, &o)
}

// CollectOrder says where the intent's signing order is (polled by the
// confirming page, a new QR image every second).
func (c *Client) CollectOrder(ctx context.Context, hash string, r OrderCollect) (OrderStatus, error) {
	var st OrderStatus
	return st, c.do(ctx, http.MethodPost, "/v1/tx/"+url.PathEscape(hash)+"/order/collect", r, &st)
}

// Execute checks and consumes a grant for the intent about to be executed.
func (c *Client) Execute(ctx context.Context, grant string, in intent.Intent) (Executed, error) {
	var e Executed
	return e, c.do(ctx, http.MethodPost, "/v1/tx/execute", ExecuteRequest{Grant: grant, Intent: in}, &e)
}

// Cancel cancels an intent, or reverses an executed one.
func (c *Client) Cancel(ctx context.Context, hash, reason string) (Cancelled, error) {
	var r Cancelled
	return r, c.do(ctx, http.MethodPost, "/v1/tx/"+url.PathEscape(hash)+"/cancel", CancelRequest{Reason: reason}, &r)
}

// Balance posts a balance-change alert.
func (c *Client) Balance(ctx context.Context, a BalanceAlert) (AlertPosted, error) {
	var p AlertPosted
	return p, c.do(ctx, http.MethodPost, "/v1/alerts/balance", a, &p)
}

// SetPreferences stores a customer's alert preferences.
func (c *Client) SetPreferences(ctx context.Context, p Preferences) (Preferences, error) {
	var out Preferences
	return out, c.do(ctx, http.MethodPut, "/v1/alerts/preferences", p, &out)
}

// FetchEncryptionKey reads egate's transaction-encryption key (GET
// /keys/encryption: a JWKS of one RSA key, use enc); set it as EncryptTo
// to send intents and proofs encrypted.
func (c *Client) FetchEncryptionKey(ctx context.Context) (jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := c.do(ctx, http.MethodGet, "/keys/encryption", nil, &set); err != nil {
		return jose.JSONWebKey{}, err
	}
	for _, k := range set.Keys {
		if k.Use == "enc" && k.IsPublic() && k.KeyID != "" {
			return k, nil
		}
	}
	return jose.JSONWebKey{}, fmt.Errorf("egate tx API GET /keys/encryption: no public encryption key with a kid in the set")
}
