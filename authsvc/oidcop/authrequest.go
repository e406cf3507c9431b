package oidcop

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// requestData is the part of a validated authorization request kept while
// the customer goes through the login steps.
type requestData struct {
	ClientID      string                   `json:"client_id"`
	RedirectURI   string                   `json:"redirect_uri"`
	State         string                   `json:"state"`
	Nonce         string                   `json:"nonce"`
	Scopes        []string                 `json:"scopes"`
	ResponseType  oidc.ResponseType        `json:"response_type"`
	ResponseMode  oidc.ResponseMode        `json:"response_mode"`
	Challenge     string                   `json:"code_challenge"`
	ChallengeMeth oidc.CodeChallengeMethod `json:"code_challenge_method"`
	MaxAge        *uint                    `json:"max_age,omitempty"`
	Prompt        []string                 `json:"prompt,omitempty"`
	LoginHint     string                   `json:"login_hint,omitempty"`
	ACRValues     []string                 `json:"acr_values,omitempty"`
	RequiredLevel int                      `json:"required_level"`
}

// AuthRequest is an authorization request in progress: what the client
// asked for, the login flow's state, and (once done) who logged in at which
// level with which tools.
type AuthRequest struct {
	ID       string
	data     requestData
	Created  time.Time
	Expires  time.Time
	Flow     json.RawMessage // the login pages' state
	done     bool
	Subject  string
	Level    int
	AMR      []string
	AuthTime time.Time
}

var (
	_ op.AuthRequest         = (*AuthRequest)(nil)
	_ op.RefreshTokenRequest = (*RefreshRequest)(nil)
)

// ClientID, RequiredLevel, MaxAge, Prompt and LoginHint are what the login
// pages need.
func (a *AuthRequest) RequiredLevel() int { return a.data.RequiredLevel }
func (a *AuthRequest) MaxAge() *uint      { return a.data.MaxAge }
func (a *AuthRequest) Prompts() []string  { return a.data.Prompt }
func (a *AuthRequest) LoginHint() string  { return a.data.LoginHint }

func (a *AuthRequest) GetID() string { return a.ID }
func (a *AuthRequest) GetACR() string {
	if a.Level == 0 {
		return ""
	}
	return ACR(a.Level)
}
func (a *AuthRequest) GetAMR() []string                   { return a.AMR }
func (a *AuthRequest) GetAudience() []string              { return []string{a.data.ClientID} }
func (a *AuthRequest) GetAuthTime() time.Time             { return a.AuthTime }
func (a *AuthRequest) GetClientID() string                { return a.data.ClientID }
func (a *AuthRequest) GetNonce() string                   { return a.data.Nonce }
func (a *AuthRequest) GetRedirectURI() string             { return a.data.RedirectURI }
func (a *AuthRequest) GetResponseType() oidc.ResponseType { return a.data.ResponseType }
func (a *AuthRequest) GetResponseMode() oidc.ResponseMode { return a.data.ResponseMode }
func (a *AuthRequest) GetScopes() []string                { return a.data.Scopes }
func (a *AuthRequest) GetState() string                   { return a.data.State }
func (a *AuthRequest) GetSubject() string                 { return a.Subject }
func (a *AuthRequest) Done() bool                         { return a.done }
func (a *AuthRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.data.Challenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.data.Challenge, Method: a.data.ChallengeMeth}
}

// RefreshRequest is what a refresh token stands for.
type RefreshRequest struct {
	tokenID  string
	family   string
	authReq  string
	clientID string
	subject  string
	scopes   []string
	audience []string
	level    int
	amr      []string
	authTime time.Time
}

func (r *RefreshRequest) GetAMR() []string            { return r.amr }
func (r *RefreshRequest) GetAudience() []string       { return r.audience }
func (r *RefreshRequest) GetAuthTime() time.Time      { return r.authTime }
func (r *RefreshRequest) GetClientID() string         { return r.clientID }
func (r *RefreshRequest) GetScopes() []string         { return r.scopes }
func (r *RefreshRequest) GetSubject() string          { return r.subject }
func (r *RefreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

func joinSp(s []string) string  { return strings.Join(s, " ") }
func splitSp(s string) []string { return strings.Fields(s) }
