package ebank

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

	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// Client calls the holds API (API) of an ebank process as a back-end
// client of the scope ebank:holds: the mall's and the messenger's way to
// move money. Its methods have the shape of Holds', so a platform can be
// given either; the origin of every movement is the client's id (the
// server takes it from the credentials), whatever Origin the caller names.
//
// A refusal is a *ledger.Error with the API's stable code (ledger.Code
// reads it); a fault of the network or of the server (a 5xx) is another
// error, after which the same call with the same key is safe.
type Client struct {
	BaseURL string // the ebank process, e.g. http://127.0.0.1:8081
	ID      string // the back-end client id (the origin of its movements)
	Secret  string // its secret (never logged, never in an error)
	HTTP    *http.Client
}

// ErrUnavailable wraps the faults of the holds API that are not refusals.
var ErrUnavailable = errors.New("ebank holds API unavailable")

// Hold implements Holds.Hold over HTTP.
func (c *Client) Hold(ctx context.Context, r HoldRequest) (ledger.Transfer, error) {
	return c.move(ctx, "/v1/holds", r, int64(r.Timeout/time.Second))
}

// Transfer implements Holds.Transfer over HTTP.
func (c *Client) Transfer(ctx context.Context, r HoldRequest) (ledger.Transfer, error) {
	return c.move(ctx, "/v1/transfers", r, 0)
}

// Capture implements Holds.Capture over HTTP.
func (c *Client) Capture(ctx context.Context, _, key, hold string, amount int64, grant string) (ledger.Transfer, error) {
	var t ledger.Transfer
	err := c.do(ctx, "POST", "/v1/holds/"+url.PathEscape(hold)+"/capture", map[string]any{"key": key, "amount": amount, "grant": grant}, &t)
	return t, err
}

// Release implements Holds.Release over HTTP.
func (c *Client) Release(ctx context.Context, _, key, hold, grant string) (ledger.Transfer, error) {
	var t ledger.Transfer
	err := c.do(ctx, "POST", "/v1/holds/"+url.PathEscape(hold)+"/release", map[string]any{"key": key, "grant": grant}, &t)
	return t, err
}

// Get implements Holds.Get over HTTP.
func (c *Client) Get(ctx context.Context, _, id string) (ledger.Transfer, error) {
	var t ledger.Transfer
	err := c.do(ctx, "GET", "/v1/holds/"+url.PathEscape(id), nil, &t)
	return t, err
}

func (c *Client) move(ctx context.Context, path string, r HoldRequest, timeout int64) (ledger.Transfer, error) {
	body := map[string]any{"key": r.Key, "debit_account": r.Debit, "credit_account": r.Credit, "amount": r.Amount, "grant": r.Grant}
	if r.Code != "" {
		body["code"] = r.Code
	}
	if r.Memo != "" {
		body["memo"] = r.Memo
	}
	if timeout > 0 {
		body["timeout_seconds"] = timeout
	}
	var t ledger.Transfer
	err := c.do(ctx, "POST", path, body, &t)
	return t, err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, err)
	}
	req.SetBasicAuth(c.ID, c.Secret)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrUnavailable, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w: %s %s: reading the answer: %w", ErrUnavailable, method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%w: %s %s: the answer is not a transfer: %w", ErrUnavailable, method, path, err)
		}
		return nil
	}
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error.Code == "" || resp.StatusCode >= 500 || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden && !strings.HasPrefix(e.Error.Code, "grant_") {
		return fmt.Errorf("%w: %s %s answered %d %s", ErrUnavailable, method, path, resp.StatusCode, e.Error.Code)
	}
	return ledger.NewError(e.Error.Code, e.Error.Message)
}
