// Package backend authenticates the bank's back-end systems (core banking,
// the call centre's desk, a branch teller system, the platforms' servers)
// that call authsvc's server-to-server APIs: the OTP verify API (POST
// /v1/otp/verify and /v1/otp/resync) and transaction authorization
// (/v1/tx/, /v1/alerts/; authsvc/txauth). Customers' browsers never call
// them.
//
// A back-end client is registered in the config (authsvc.backend-clients)
// with an id, a secret and the scopes it may use. It sends its id and
// secret as HTTP Basic (RFC 7617) over TLS on every request. The config never
// holds the secret itself: either its SHA-256 in hex (secret-sha256), or a
// pin-source (secret-source: file:/path with mode 0600, or env:NAME) that is
// read once at start. The secret is a machine-made random string of at least
// MinSecretLen characters (openssl rand -hex 32), not a password, so one
// SHA-256 is enough to keep it out of the config and the comparison costs
// nothing beside the API call it guards.
//
// Require answers a request without credentials, or with other credentials
// than Basic, 401 "unauthorized", an unknown id or a wrong secret 401
// "invalid_client" (both with WWW-Authenticate: Basic), and a client without
// the scope 403 "insufficient_scope", in egate's JSON error shape; the
// wrapped handler never sees such a request.
package backend

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/devices/pinsource"
)

// The scopes a back-end client may be given.
const (
	// ScopeOTPVerify allows POST /v1/otp/verify.
	ScopeOTPVerify = "otp:verify"
	// ScopeOTPResync allows POST /v1/otp/resync.
	ScopeOTPResync = "otp:resync"
	// ScopeEbankHolds allows ebank's holds and transfers API (/v1/holds,
	// /v1/transfers; platform/ebank), served by the ebank platform.
	ScopeEbankHolds = "ebank:holds"
	// ScopeTxAuthorize allows the transaction authorization API of the
	// platforms: authorize, challenge, proof, read (authsvc/txauth).
	ScopeTxAuthorize = "tx:authorize"
	// ScopeTxExecute allows the check before execution and cancel/reverse.
	ScopeTxExecute = "tx:execute"
	// ScopeAlertsBalance allows balance-change alerts and customers' alert
	// preferences.
	ScopeAlertsBalance = "alerts:balance"
	// ScopeATMWithdrawals allows opening a QR withdrawal session on an ATM
	// (POST /atm/withdrawals on egate agent-gateway and egate demo;
	// atm/withdrawal): the bank's ATM application side.
	ScopeATMWithdrawals = "atm:withdrawals"
)

// Scopes lists every known scope.
var Scopes = []string{ScopeOTPVerify, ScopeOTPResync, ScopeEbankHolds, ScopeTxAuthorize, ScopeTxExecute, ScopeAlertsBalance, ScopeATMWithdrawals}

// MinSecretLen is the shortest secret a secret-source may hold.
const MinSecretLen = 32

// Realm is the realm of the WWW-Authenticate challenge.
const Realm = "egate back-end API"

// ClientConfig registers one back-end client (authsvc.backend-clients[i]).
type ClientConfig struct {
	// ID is the client's name, sent as the Basic user name: letters,
	// digits, '.', '_' and '-', at most 64.
	ID string `yaml:"id"`
	// SecretSHA256 is the hex SHA-256 of the secret
	// (printf %s "$SECRET" | sha256sum). Exactly one of it and SecretSource.
	SecretSHA256 string `yaml:"secret-sha256"`
	// SecretSource says where the secret is: file:/path (mode 0600) or
	// env:NAME, like hsm.pin-source; read once, when the process starts.
	SecretSource string `yaml:"secret-source"`
	// Scopes the client may use: otp:verify, otp:resync, ebank:holds,
	// tx:authorize, tx:execute, alerts:balance, atm:withdrawals.
	Scopes []string `yaml:"scopes"`
}

// ErrConfig wraps every configuration error of this package.
var ErrConfig = errors.New("back-end client config")

// Validate checks the clients' syntax without reading any secret.
func Validate(clients []ClientConfig) error {
	seen := map[string]bool{}
	for i, c := range clients {
		where := fmt.Sprintf("authsvc.backend-clients[%d] (%s)", i, c.ID)
		if !validID(c.ID) {
			return fmt.Errorf("%w: %s: id must be 1–64 letters, digits, '.', '_' or '-'", ErrConfig, where)
		}
		if seen[c.ID] {
			return fmt.Errorf("%w: %s: duplicate id", ErrConfig, where)
		}
		seen[c.ID] = true
		switch {
		case (c.SecretSHA256 == "") == (c.SecretSource == ""):
			return fmt.Errorf("%w: %s: give exactly one of secret-sha256 (hex SHA-256 of the secret) and secret-source (file:/path or env:NAME)", ErrConfig, where)
		case c.SecretSHA256 != "":
			if b, err := hex.DecodeString(c.SecretSHA256); err != nil || len(b) != sha256.Size {
				return fmt.Errorf("%w: %s: secret-sha256 must be 64 hex digits (printf %%s \"$SECRET\" | sha256sum)", ErrConfig, where)
			}
		default:
			if _, err := pinsource.Parse(c.SecretSource); err != nil {
				return fmt.Errorf("%w: %s: secret-source: %w", ErrConfig, where, err)
			}
		}
		if len(c.Scopes) == 0 {
			return fmt.Errorf("%w: %s: no scopes; give some of %s", ErrConfig, where, strings.Join(Scopes, ", "))
		}
		for j, s := range c.Scopes {
			if !slices.Contains(Scopes, s) {
				return fmt.Errorf("%w: %s: unknown scope %q; known: %s", ErrConfig, where, s, strings.Join(Scopes, ", "))
			}
			if slices.Contains(c.Scopes[:j], s) {
				return fmt.Errorf("%w: %s: scope %q twice", ErrConfig, where, s)
			}
		}
	}
	return nil
}

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

// HashSecret is what secret-sha256 holds for a secret: its SHA-256 in hex.
func HashSecret(secret []byte) string {
	h := sha256.Sum256(secret)
	return hex.EncodeToString(h[:])
}

// Registry holds the registered back-end clients. It is safe for
// concurrent use and never changes after New.
type Registry struct {
	clients map[string]*client
}

type client struct {
	id     string
	hash   [sha256.Size]byte
	scopes []string
}

// New validates the clients and reads the secrets of those with a
// secret-source. An empty list gives a registry that refuses everybody.
func New(clients []ClientConfig) (*Registry, error) {
	if err := Validate(clients); err != nil {
		return nil, err
	}
	r := &Registry{clients: map[string]*client{}}
	for i, c := range clients {
		cl := &client{id: c.ID, scopes: slices.Clone(c.Scopes)}
		if c.SecretSHA256 != "" {
			b, _ := hex.DecodeString(c.SecretSHA256)
			copy(cl.hash[:], b)
		} else {
			secret, err := pinsource.Read(c.SecretSource)
			if err != nil {
				return nil, fmt.Errorf("%w: authsvc.backend-clients[%d] (%s): secret-source: %w", ErrConfig, i, c.ID, err)
			}
			if len(secret) < MinSecretLen {
				clear(secret)
				return nil, fmt.Errorf("%w: authsvc.backend-clients[%d] (%s): the secret in %s is shorter than %d characters; make one with openssl rand -hex 32", ErrConfig, i, c.ID, c.SecretSource, MinSecretLen)
			}
			cl.hash = sha256.Sum256(secret)
			clear(secret)
		}
		r.clients[c.ID] = cl
	}
	return r, nil
}

// IDs lists the registered clients' ids, sorted.
func (r *Registry) IDs() []string {
	ids := make([]string, 0, len(r.clients))
	for id := range r.clients {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Errors of Authenticate.
var (
	// ErrNoCredentials: the request carries no HTTP Basic credentials.
	ErrNoCredentials = errors.New("no back-end client credentials: send the client id and secret as HTTP Basic")
	// ErrInvalidClient: an unknown client id, or a wrong secret.
	ErrInvalidClient = errors.New("unknown back-end client or wrong secret")
)

// Client is an authenticated back-end client.
type Client struct {
	ID     string
	Scopes []string
}

// Has says whether the client may use scope.
func (c Client) Has(scope string) bool { return slices.Contains(c.Scopes, scope) }

// Authenticate checks the request's HTTP Basic credentials.
func (r *Registry) Authenticate(req *http.Request) (Client, error) {
	id, secret, ok := req.BasicAuth()
	if !ok {
		if s, _, _ := strings.Cut(strings.TrimSpace(req.Header.Get("Authorization")), " "); strings.EqualFold(s, "Basic") {
			return Client{}, ErrInvalidClient // Basic, but not base64 of id:secret
		}
		return Client{}, ErrNoCredentials
	}
	h := sha256.Sum256([]byte(secret))
	c, known := r.clients[id]
	var want [sha256.Size]byte // an unknown id is compared with zeros: no early exit
	if known {
		want = c.hash
	}
	if subtle.ConstantTimeCompare(h[:], want[:]) != 1 || !known {
		return Client{}, ErrInvalidClient
	}
	return Client{ID: c.id, Scopes: c.scopes}, nil
}

type ctxKey struct{}

// ClientFrom returns the client that Require let through.
func ClientFrom(ctx context.Context) (Client, bool) {
	c, ok := ctx.Value(ctxKey{}).(Client)
	return c, ok
}

// Require serves next only to a registered client holding scope.
func (r *Registry) Require(scope string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c, err := r.Authenticate(req)
		switch {
		case errors.Is(err, ErrNoCredentials):
			msg := "this API is for the bank's registered back-end clients: send the client id and secret as HTTP Basic (authsvc.backend-clients)"
			if a := req.Header.Get("Authorization"); a != "" {
				msg = "this API takes HTTP Basic with a back-end client's id and secret (authsvc.backend-clients), not " + authScheme(a) + " credentials"
			}
			challenge(w)
			apierr.WriteCode(w, req, apierr.Unauthorized, msg)
			return
		case err != nil:
			challenge(w)
			apierr.WriteCode(w, req, apierr.InvalidClient, "")
			return
		case !c.Has(scope):
			apierr.WriteCode(w, req, apierr.InsufficientScope, fmt.Sprintf("back-end client %q may not use this API: it needs the scope %s", c.ID, scope))
			return
		}
		next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), ctxKey{}, c)))
	})
}

// authScheme names the scheme of an Authorization header without its
// credentials.
func authScheme(h string) string {
	s, _, _ := strings.Cut(strings.TrimSpace(h), " ")
	if len(s) > 20 || s == "" {
		return "other"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-') {
			return "other"
		}
	}
	return s
}

func challenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
}
