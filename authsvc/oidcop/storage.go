// Package oidcop is the passport's OpenID Connect provider, built on
// github.com/zitadel/oidc/v3/pkg/op. This package implements op.Storage over
// egate's database: authorization requests (PKCE with S256 required of every
// client), single-use codes, JWT access tokens, refresh tokens rotated on
// every use with reuse detection (a refresh token presented twice revokes
// its whole family), introspection, revocation, userinfo and RP-initiated
// logout, and the passport sessions that give single sign-on.
//
// Everything is in the database, so replicas are interchangeable; the state
// changes that must happen once (a code exchanged, a refresh token rotated,
// an auth request completed) are single conditional UPDATEs.
package oidcop

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/egate-bank/egate/internal/store"
)

// UserInfo is the customer data the provider may release.
type UserInfo struct {
	LoginName string
	Mobile    string // masked by the provider
}

// Users looks up customers for userinfo and ID token claims.
type Users interface {
	UserInfo(ctx context.Context, passportID string) (UserInfo, error)
}

// Storage is op.Storage over egate's database.
type Storage struct {
	db       *store.DB
	cfg      Config
	clients  map[string]*Client
	key      *signingKey
	users    Users
	now      func() time.Time
	loginURL func(string) string
}

var _ op.Storage = (*Storage)(nil)

// Errors of the storage that the login pages see.
var (
	ErrNotFound    = errors.New("no such request, or it has expired; start the login again from the platform")
	ErrAlreadyDone = errors.New("this login request was already completed")
	errNotFound    = notFound{}
)

type notFound struct{}

func (notFound) Error() string { return "not found" }
func (notFound) IsNotFound()   {}

// NewStorage returns the storage. signer is the ES256 key (an HSM key in
// production) and kid its key id in the JWKS; loginURL maps an auth
// request id to the first login page.
func NewStorage(db *store.DB, cfg Config, signer crypto.Signer, kid string, users Users, now func() time.Time, loginURL func(string) string) (*Storage, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	k, err := newSigningKey(signer, kid)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	s := &Storage{db: db, cfg: cfg, clients: map[string]*Client{}, key: k, users: users, now: now, loginURL: loginURL}
	for _, c := range cfg.Clients {
		s.clients[c.ID] = &Client{cfg: c, loginURL: loginURL, idTTL: cfg.IDTokenTTL}
	}
	return s, nil
}

// Config returns the effective configuration.
func (s *Storage) Config() Config { return s.cfg }

// Client returns a registered client.
func (s *Storage) Client(id string) (*Client, bool) {
	c, ok := s.clients[id]
	return c, ok
}

func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// ---- authorization requests ----

// CreateAuthRequest stores a validated authorization request. PKCE with
// S256 is required of every client, confidential ones included.
func (s *Storage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, ok := s.clients[r.ClientID]
	if !ok {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	if !slices.Contains(r.Scopes, oidc.ScopeOpenID) {
		return nil, oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	if r.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256")
	}
	if r.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	d := requestData{
		ClientID: r.ClientID, RedirectURI: r.RedirectURI, State: r.State, Nonce: r.Nonce, Scopes: r.Scopes,
		ResponseType: r.ResponseType, ResponseMode: r.ResponseMode, Challenge: r.CodeChallenge, ChallengeMeth: r.CodeChallengeMethod,
		Prompt: r.Prompt, LoginHint: r.LoginHint, ACRValues: r.ACRValues,
		RequiredLevel: RequiredLevel(c.MinLevel(), r.ACRValues),
	}
	if r.MaxAge != nil {
		v := *r.MaxAge
		d.MaxAge = &v
	}
	b, _ := json.Marshal(d)
	now := s.now()
	a := &AuthRequest{ID: randomID(18), data: d, Created: now, Expires: now.Add(s.cfg.AuthRequestTTL), Flow: json.RawMessage("{}")}
	if _, err := s.db.Exec(ctx, `INSERT INTO oidc_auth_requests (id, client_id, request, created_ms, expires_ms) VALUES (?, ?, ?, ?, ?)`,
		a.ID, d.ClientID, string(b), now.UnixMilli(), a.Expires.UnixMilli()); err != nil {
		return nil, fmt.Errorf("storing auth request: %w", err)
	}
	return a, nil
}

const authReqCols = `id, request, created_ms, expires_ms, flow, done, subject, level, amr, auth_time_ms, code_state`

func (s *Storage) scanAuthRequest(row *sql.Row) (*AuthRequest, int, error) {
	var (
		a                          AuthRequest
		req, flow, amr             string
		created, expires, authTime int64
		done, codeState            int
	)
	if err := row.Scan(&a.ID, &req, &created, &expires, &flow, &done, &a.Subject, &a.Level, &amr, &authTime, &codeState); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, 0, errNotFound
		}
		return nil, 0, fmt.Errorf("reading auth request: %w", err)
	}
	if err := json.Unmarshal([]byte(req), &a.data); err != nil {
		return nil, 0, fmt.Errorf("decoding auth request: %w", err)
	}
	a.Created, a.Expires = time.UnixMilli(created), time.UnixMilli(expires)
	a.Flow, a.done, a.AMR = json.RawMessage(flow), done != 0, splitSp(amr)
	if authTime != 0 {
		a.AuthTime = time.UnixMilli(authTime)
	}
	return &a, codeState, nil
}

// AuthRequestByID returns a live auth request (op and the login pages).
func (s *Storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	return s.LoginRequest(ctx, id)
}

// LoginRequest returns a live, not yet exchanged auth request.
func (s *Storage) LoginRequest(ctx context.Context, id string) (*AuthRequest, error) {
	if id == "" || len(id) > 64 {
		return nil, ErrNotFound
	}
	a, codeState, err := s.scanAuthRequest(s.db.QueryRow(ctx, `SELECT `+authReqCols+` FROM oidc_auth_requests WHERE id = ?`, id))
	if errors.Is(err, errNotFound) || (err == nil && (codeState != 0 || !s.now().Before(a.Expires))) {
		return nil, ErrNotFound
	}
	return a, err
}

// SetFlow stores the login pages' state of a request still in progress.
func (s *Storage) SetFlow(ctx context.Context, id string, flow any) error {
	b, err := json.Marshal(flow)
	if err != nil {
		return err
	}
	res, err := s.db.Exec(ctx, `UPDATE oidc_auth_requests SET flow = ? WHERE id = ? AND done = 0 AND expires_ms > ?`, string(b), id, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("storing login state: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// Complete marks the request logged in (once).
func (s *Storage) Complete(ctx context.Context, id, subject string, level int, amr []string, authTime time.Time) error {
	res, err := s.db.Exec(ctx, `UPDATE oidc_auth_requests SET done = 1, subject = ?, level = ?, amr = ?, auth_time_ms = ?
		WHERE id = ? AND done = 0 AND expires_ms > ?`, subject, level, joinSp(amr), authTime.UnixMilli(), id, s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("completing login: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrAlreadyDone
	}
	return nil
}

// SaveAuthCode binds the code op made to the completed request.
func (s *Storage) SaveAuthCode(ctx context.Context, id, code string) error {
	res, err := s.db.Exec(ctx, `UPDATE oidc_auth_requests SET code_hash = ?, code_state = 1, expires_ms = ? WHERE id = ? AND done = 1 AND code_state = 0`,
		hashToken(code), s.now().Add(s.cfg.CodeTTL).UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("storing code: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return oidc.ErrInvalidRequest().WithDescription("the login request was already answered")
	}
	return nil
}

// AuthRequestByCode returns the request of an unexchanged, unexpired code.
// A code presented again after its exchange revokes every token issued
// from it (RFC 6749 §4.1.2).
func (s *Storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	if code == "" || len(code) > 512 {
		return nil, errNotFound
	}
	a, codeState, err := s.scanAuthRequest(s.db.QueryRow(ctx, `SELECT `+authReqCols+` FROM oidc_auth_requests WHERE code_hash = ?`, hashToken(code)))
	if err != nil {
		return nil, err
	}
	switch {
	case codeState == 2:
		if err := s.revokeWhere(ctx, `auth_request_id = ?`, a.ID); err != nil {
			return nil, err
		}
		return nil, errors.New("code already used; tokens issued from it are revoked")
	case codeState != 1 || !s.now().Before(a.Expires):
		return nil, errors.New("code expired")
	}
	return a, nil
}

// DeleteAuthRequest is called by op after a successful exchange. The code
// was already spent with the tokens' INSERT (spendAndInsert); the row
// stays (code_state 2) so that a replayed code is recognised.
func (s *Storage) DeleteAuthRequest(ctx context.Context, id string) error { return nil }

// spendCode spends the code of auth request id, once, across replicas
// (a statement for spendAndInsert).
const spendCode = `UPDATE oidc_auth_requests SET code_state = 2 WHERE id = ? AND code_state = 1`

// spendRefresh spends a live refresh token, once, across replicas (a
// statement for spendAndInsert; arguments: the token's hash and now).
const spendRefresh = `UPDATE oidc_tokens SET used = 1 WHERE token_hash = ? AND kind = 'refresh' AND used = 0 AND revoked = 0 AND expires_ms > ?`

func errCodeUsed() error { return oidc.ErrInvalidGrant().WithDescription("code already used") }

// ---- tokens ----

type tokenRow struct {
	id, kind, family, authReq, clientID, subject string
	scopes, audience                             []string
	level                                        int
	amr                                          []string
	authTime, expires                            time.Time
	used, revoked                                bool
}

const tokenCols = `id, kind, token_hash, family, auth_request_id, client_id, subject, scopes, audience, level, amr, auth_time_ms, expires_ms, created_ms`

// tokenValues is the VALUES list of rows for tokenCols with its arguments.
// The integer columns are cast so that PostgreSQL types them inside a
// VALUES list that is not the INSERT's own (spendAndInsert).
func (s *Storage) tokenValues(rows []tokenRow, refreshHashes []string) (string, []any) {
	var q strings.Builder
	args := make([]any, 0, 14*len(rows))
	created := s.now().UnixMilli()
	for i, t := range rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS INTEGER), ?, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT))")
		var hash any
		if refreshHashes[i] != "" {
			hash = refreshHashes[i]
		}
		args = append(args, t.id, t.kind, hash, t.family, t.authReq, t.clientID, t.subject, joinSp(t.scopes), joinSp(t.audience), t.level, joinSp(t.amr),
			t.authTime.UnixMilli(), t.expires.UnixMilli(), created)
	}
	return q.String(), args
}

// errNotSpent: the row spendAndInsert was to spend was spent already (or
// is gone, expired or revoked).
var errNotSpent = errors.New("not spent")

// spendAndInsert spends one row with spend (spendCode or spendRefresh, or
// nothing when spend is empty) and stores the token rows, both or neither:
// errNotSpent when spend changed no row. A grant's rows go in one INSERT.
//
// On PostgreSQL it is one statement (the UPDATE in a WITH, the INSERT
// conditional on it), one round trip instead of four (BEGIN, UPDATE,
// INSERT, COMMIT); SQLite, in process, cannot put an UPDATE in a WITH and
// runs the two in a transaction.
func (s *Storage) spendAndInsert(ctx context.Context, spend string, spendArgs []any, rows []tokenRow, refreshHashes []string) error {
	values, args := s.tokenValues(rows, refreshHashes)
	insert := `INSERT INTO oidc_tokens (` + tokenCols + `) VALUES ` + values
	if spend == "" {
		_, err := s.db.Exec(ctx, insert, args...)
		return wrapStoring(err)
	}
	if s.db.Driver() == store.Postgres {
		res, err := s.db.Exec(ctx, `WITH spent AS (`+spend+` RETURNING 1)
			INSERT INTO oidc_tokens (`+tokenCols+`) SELECT * FROM (VALUES `+values+`) AS v WHERE EXISTS (SELECT 1 FROM spent)`,
			append(spendArgs, args...)...)
		if err != nil {
			return wrapStoring(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNotSpent
		}
		return nil
	}
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, spend, spendArgs...)
		if err != nil {
			return wrapStoring(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNotSpent
		}
		_, err = tx.Exec(ctx, insert, args...)
		return wrapStoring(err)
	})
}

func wrapStoring(err error) error {
	if err != nil {
		return fmt.Errorf("storing token: %w", err)
	}
	return nil
}

// grant is what a token request carries, from either request type.
func grantOf(req op.TokenRequest) (t tokenRow, authReqID string, ok bool) {
	switch r := req.(type) {
	case *AuthRequest:
		return tokenRow{authReq: r.ID, clientID: r.GetClientID(), subject: r.Subject, scopes: r.GetScopes(), audience: r.GetAudience(),
			level: r.Level, amr: r.AMR, authTime: r.AuthTime}, r.ID, true
	case *RefreshRequest:
		return tokenRow{family: r.family, authReq: r.authReq, clientID: r.clientID, subject: r.subject, scopes: r.scopes, audience: r.audience,
			level: r.level, amr: r.amr, authTime: r.authTime}, "", true
	}
	return tokenRow{}, "", false
}

// CreateAccessToken issues an access token for a code exchange without
// offline_access.
func (s *Storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	t, authReqID, ok := grantOf(req)
	if !ok {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	t.id, t.kind, t.expires = randomID(18), "access", s.now().Add(s.cfg.AccessTokenTTL)
	if t.family == "" {
		t.family = randomID(12)
	}
	spend, spendArgs := "", []any(nil)
	if authReqID != "" {
		spend, spendArgs = spendCode, []any{authReqID}
	}
	err := s.spendAndInsert(ctx, spend, spendArgs, []tokenRow{t}, []string{""})
	if errors.Is(err, errNotSpent) {
		err = errCodeUsed()
	}
	if err != nil {
		return "", time.Time{}, err
	}
	return t.id, t.expires, nil
}

// CreateAccessAndRefreshTokens issues an access token and a refresh token:
// for a code exchange with offline_access (current empty), or by rotating
// current, which is spent at once; presenting a spent refresh token
// revokes the family.
func (s *Storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	t, authReqID, ok := grantOf(req)
	if !ok {
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	now := s.now()
	if t.family == "" {
		t.family = randomID(12)
	}
	access := t
	access.id, access.kind, access.expires = randomID(18), "access", now.Add(s.cfg.AccessTokenTTL)
	refresh := t
	refresh.id, refresh.kind, refresh.expires = randomID(18), "refresh", now.Add(s.cfg.RefreshTokenTTL)
	raw := "rt." + randomID(32)
	spend, spendArgs := "", []any(nil)
	switch {
	case authReqID != "" && current != "":
		return "", "", time.Time{}, oidc.ErrInvalidRequest().WithDescription("a code exchange does not present a refresh token")
	case authReqID != "":
		spend, spendArgs = spendCode, []any{authReqID}
	case current != "":
		spend, spendArgs = spendRefresh, []any{hashToken(current), now.UnixMilli()}
	}
	err := s.spendAndInsert(ctx, spend, spendArgs, []tokenRow{access, refresh}, []string{"", hashToken(raw)})
	if errors.Is(err, errNotSpent) {
		if current == "" {
			return "", "", time.Time{}, errCodeUsed()
		}
		// Lost the race for one rotation: someone else holds a copy.
		if rerr := s.revokeWhere(ctx, `family = ?`, t.family); rerr != nil {
			return "", "", time.Time{}, rerr
		}
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used or revoked")
	}
	if err != nil {
		return "", "", time.Time{}, err
	}
	return access.id, raw, access.expires, nil
}

func (s *Storage) tokenBy(ctx context.Context, where string, arg any) (tokenRow, error) {
	var (
		t                 tokenRow
		scopes, aud, amr  string
		authTime, expires int64
		used, revoked     int
	)
	err := s.db.QueryRow(ctx, `SELECT id, kind, family, auth_request_id, client_id, subject, scopes, audience, level, amr, auth_time_ms, expires_ms, used, revoked
		FROM oidc_tokens WHERE `+where, arg).Scan(&t.id, &t.kind, &t.family, &t.authReq, &t.clientID, &t.subject, &scopes, &aud, &t.level, &amr, &authTime, &expires, &used, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return tokenRow{}, errNotFound
	}
	if err != nil {
		return tokenRow{}, fmt.Errorf("reading token: %w", err)
	}
	t.scopes, t.audience, t.amr = splitSp(scopes), splitSp(aud), splitSp(amr)
	t.authTime, t.expires, t.used, t.revoked = time.UnixMilli(authTime), time.UnixMilli(expires), used != 0, revoked != 0
	return t, nil
}

func (s *Storage) revokeWhere(ctx context.Context, where string, arg ...any) error {
	if _, err := s.db.Exec(ctx, `UPDATE oidc_tokens SET revoked = 1 WHERE `+where, arg...); err != nil {
		return fmt.Errorf("revoking tokens: %w", err)
	}
	return nil
}

// TokenRequestByRefreshToken resolves a refresh token presented for
// rotation. A spent one means a copy exists somewhere: the family is
// revoked.
func (s *Storage) TokenRequestByRefreshToken(ctx context.Context, raw string) (op.RefreshTokenRequest, error) {
	if raw == "" || len(raw) > 256 {
		return nil, op.ErrInvalidRefreshToken
	}
	t, err := s.tokenBy(ctx, `token_hash = ? AND kind = 'refresh'`, hashToken(raw))
	if err != nil {
		return nil, op.ErrInvalidRefreshToken
	}
	if t.used {
		if err := s.revokeWhere(ctx, `family = ?`, t.family); err != nil {
			return nil, err
		}
		return nil, op.ErrInvalidRefreshToken
	}
	if t.revoked || !s.now().Before(t.expires) {
		return nil, op.ErrInvalidRefreshToken
	}
	return &RefreshRequest{tokenID: t.id, family: t.family, authReq: t.authReq, clientID: t.clientID, subject: t.subject, scopes: t.scopes,
		audience: t.audience, level: t.level, amr: t.amr, authTime: t.authTime}, nil
}

// GetRefreshTokenInfo serves revocation of refresh tokens.
func (s *Storage) GetRefreshTokenInfo(ctx context.Context, clientID, raw string) (string, string, error) {
	t, err := s.tokenBy(ctx, `token_hash = ? AND kind = 'refresh'`, hashToken(raw))
	if err != nil {
		return "", "", op.ErrInvalidRefreshToken
	}
	return t.subject, t.id, nil
}

// RevokeToken revokes an access token, or a refresh token with its whole
// family (RFC 7009 §2.1). A token of another client is refused.
func (s *Storage) RevokeToken(ctx context.Context, tokenID, userID, clientID string) *oidc.Error {
	t, err := s.tokenBy(ctx, `id = ?`, tokenID)
	if err != nil {
		return nil // RFC 7009: an unknown token is not an error
	}
	if t.clientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
	}
	where, arg := `id = ?`, t.id
	if t.kind == "refresh" {
		where, arg = `family = ?`, t.family
	}
	if err := s.revokeWhere(ctx, where, arg); err != nil {
		return oidc.ErrServerError()
	}
	return nil
}

// activeToken returns a live access token.
func (s *Storage) activeToken(ctx context.Context, tokenID, subject string) (tokenRow, error) {
	t, err := s.tokenBy(ctx, `id = ?`, tokenID)
	if err != nil {
		return tokenRow{}, err
	}
	if t.kind != "access" || t.revoked || t.subject != subject || !s.now().Before(t.expires) {
		return tokenRow{}, errors.New("token is not active")
	}
	return t, nil
}

// TerminateSession ends the customer's passport sessions (single sign-on
// logout) and revokes this client's tokens for the customer.
func (s *Storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	if err := s.EndSessionsOf(ctx, userID); err != nil {
		return err
	}
	return s.revokeWhere(ctx, `subject = ? AND client_id = ?`, userID, clientID)
}

// ---- keys ----

func (s *Storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }
func (s *Storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}
func (s *Storage) KeySet(context.Context) ([]op.Key, error) { return []op.Key{&publicKey{s.key}}, nil }

// ---- clients ----

func (s *Storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		// op passes this error through at the token endpoint: it must be
		// the OAuth error, not a server error.
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	return c, nil
}

func (s *Storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || c.cfg.Public || subtle.ConstantTimeCompare([]byte(c.cfg.Secret), []byte(secret)) != 1 {
		return errors.New("invalid client credentials")
	}
	return nil
}

// ---- claims ----

func maskMobile(m string) string {
	if len(m) < 7 {
		return strings.Repeat("*", len(m))
	}
	return m[:3] + strings.Repeat("*", len(m)-7) + m[len(m)-4:]
}

func (s *Storage) setUserinfo(ctx context.Context, ui *oidc.UserInfo, userID string, scopes []string) error {
	ui.Subject = userID
	if s.users == nil {
		return nil
	}
	if !slices.Contains(scopes, oidc.ScopeProfile) && !slices.Contains(scopes, oidc.ScopePhone) {
		return nil
	}
	u, err := s.users.UserInfo(ctx, userID)
	if err != nil {
		return err
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		ui.PreferredUsername = u.LoginName
	}
	if slices.Contains(scopes, oidc.ScopePhone) && u.Mobile != "" {
		ui.PhoneNumber = maskMobile(u.Mobile)
	}
	return nil
}

func (s *Storage) SetUserinfoFromScopes(ctx context.Context, ui *oidc.UserInfo, userID, _ string, scopes []string) error {
	return s.setUserinfo(ctx, ui, userID, scopes)
}

func (s *Storage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.activeToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	return s.setUserinfo(ctx, ui, t.subject, t.scopes)
}

func (s *Storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := s.activeToken(ctx, tokenID, subject)
	if err != nil {
		return err
	}
	if !slices.Contains(t.audience, clientID) && t.clientID != clientID {
		return errors.New("token not issued to the introspecting client")
	}
	ui := new(oidc.UserInfo)
	if err := s.setUserinfo(ctx, ui, t.subject, t.scopes); err != nil {
		return err
	}
	resp.SetUserInfo(ui)
	resp.Scope = t.scopes
	resp.ClientID = t.clientID
	resp.Audience = t.audience
	resp.Expiration = oidc.FromTime(t.expires)
	resp.AuthTime = oidc.FromTime(t.authTime)
	resp.AuthenticationMethodsReferences = t.amr
	resp.TokenType = oidc.BearerToken
	if resp.Claims == nil {
		resp.Claims = map[string]any{}
	}
	resp.Claims["acr"] = ACR(t.level)
	return nil
}

// GetPrivateClaimsFromRequest puts acr and amr into access tokens, so a
// platform can see the level without introspection.
func (s *Storage) GetPrivateClaimsFromRequest(_ context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	if t, _, ok := grantOf(req); ok && t.level > 0 {
		return map[string]any{"acr": ACR(t.level), "amr": t.amr, "auth_time": t.authTime.Unix()}, nil
	}
	return nil, nil
}

func (s *Storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *Storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile client authentication is not supported")
}

func (s *Storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile grant is not supported")
}

func (s *Storage) Health(ctx context.Context) error { return s.db.PingContext(ctx) }

// SetUserinfoFromRequest puts acr into ID tokens issued on refresh (op sets
// acr itself only for tokens from an auth request).
func (s *Storage) SetUserinfoFromRequest(_ context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	if r, ok := req.(*RefreshRequest); ok && r.level > 0 {
		ui.AppendClaims("acr", ACR(r.level))
	}
	return nil
}
