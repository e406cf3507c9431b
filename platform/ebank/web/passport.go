package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/egate-bank/egate/authsvc/limits"
)

// Passport calls the passport's customer APIs (authsvc: /api/v1/password,
// /api/v1/alerts, /api/v1/self…) with the customer's access token: the
// self-service and login-history pages are views of them. The passport
// checks the token's level itself; these pages only ask first.
type Passport struct {
	Issuer string       // the passport's issuer URL
	HTTP   *http.Client // nil: 10 s timeout
}

// PassportError is a refusal of the passport's API: its stable code
// (authsvc/README.md "Error codes") and message.
type PassportError struct {
	Status        int
	Code, Message string
}

func (e *PassportError) Error() string {
	return fmt.Sprintf("passport API: %d %s: %s", e.Status, e.Code, e.Message)
}

// Tool is one of the customer's tools (GET /api/v1/self).
type Tool struct {
	Tool   string `json:"tool"`
	ID     string `json:"id"`
	Ref    string `json:"ref"`
	Level  int    `json:"level"`
	Status string `json:"status"`
}

// Self is the customer's self-service view (GET /api/v1/self).
type Self struct {
	Level           int          `json:"level"`
	ReservedMessage string       `json:"reserved_message"`
	Mobile          string       `json:"mobile"`
	Tools           []Tool       `json:"tools"`
	Limits          limits.Table `json:"limits"`
	OwnLimits       limits.Table `json:"own_limits"`
	Usage           limits.Usage `json:"usage"`
}

// Alert is one of the customer's alerts (GET /api/v1/alerts).
type Alert struct {
	ID   string          `json:"id"`
	Kind string          `json:"kind"`
	At   time.Time       `json:"at"`
	Body json.RawMessage `json:"body"`
}

func (p *Passport) call(ctx context.Context, token, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(p.Issuer, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c := p.HTTP
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("calling the passport: %w", err)
	}
	defer resp.Body.Close()
	rd := io.LimitReader(resp.Body, 1<<20)
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.NewDecoder(rd).Decode(&e)
		return &PassportError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil {
		if err := json.NewDecoder(rd).Decode(out); err != nil {
			return fmt.Errorf("the passport's answer to %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Self reads the customer's reserved message, tools and limits.
func (p *Passport) Self(ctx context.Context, token string) (Self, error) {
	var s Self
	return s, p.call(ctx, token, "GET", "/api/v1/self", nil, &s)
}

// SetReservedMessage changes the reserved message.
func (p *Passport) SetReservedMessage(ctx context.Context, token, msg string) error {
	return p.call(ctx, token, "PUT", "/api/v1/self/reserved-message", map[string]string{"reserved_message": msg}, nil)
}

// SetOwnLimit sets the customer's own limits of one level.
func (p *Passport) SetOwnLimit(ctx context.Context, token string, l limits.Limit) error {
	return p.call(ctx, token, "PUT", "/api/v1/self/limits", l, nil)
}

// SetWithdrawalPIN sets the customer's withdrawal PIN (the QR
// withdrawal's); the passport asks for a level-3 token.
func (p *Passport) SetWithdrawalPIN(ctx context.Context, token, pin string) error {
	return p.call(ctx, token, "PUT", "/api/v1/self/withdrawal-pin", map[string]string{"pin": pin}, nil)
}

// BindOTP binds a token of the bank's stock by serial and two consecutive codes.
func (p *Passport) BindOTP(ctx context.Context, token, serial, code1, code2 string) error {
	return p.call(ctx, token, "POST", "/api/v1/self/tools/otp", map[string]string{"serial": serial, "code1": code1, "code2": code2}, nil)
}

// ReportLost revokes one of the customer's tools.
func (p *Passport) ReportLost(ctx context.Context, token, tool, id string) error {
	return p.call(ctx, token, "POST", "/api/v1/self/tools/lost", map[string]string{"tool": tool, "id": id}, nil)
}

// ChangePassword changes the password (the strength rules apply).
func (p *Passport) ChangePassword(ctx context.Context, token, old, new string) error {
	return p.call(ctx, token, "POST", "/api/v1/password", map[string]string{"old_password": old, "new_password": new}, nil)
}

// Alerts reads the customer's latest alerts, newest first.
func (p *Passport) Alerts(ctx context.Context, token string, limit int) ([]Alert, error) {
	var out struct {
		Alerts []Alert `json:"alerts"`
	}
	err := p.call(ctx, token, "GET", fmt.Sprintf("/api/v1/alerts?limit=%d", limit), nil, &out)
	return out.Alerts, err
}
