package orders

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

func hexUpper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// Client is a device's side of the device API (the desktop helper, the
// phone app).
type Client struct {
	Base string // the passport's URL, e.g. https://passport.bank.example
	HTTP *http.Client
}

// APIError is an error answer of the device API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Message + " (" + e.Code + ")" }

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.Base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the bank: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code, Message string }
		}
		if json.Unmarshal(b, &e) != nil || e.Error.Code == "" {
			return &APIError{Status: resp.StatusCode, Code: "http_" + fmt.Sprint(resp.StatusCode), Message: "the bank answered " + resp.Status}
		}
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("reading the bank's answer: %w", err)
		}
	}
	return nil
}

// Open opens an order by autostart token or QR code.
func (c *Client) Open(ctx context.Context, req OpenRequest) (*Opened, error) {
	var o Opened
	if err := c.post(ctx, "/v1/orders/open", openBody{Ref: req.Ref, AutostartToken: req.AutostartToken, QR: req.QR}, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// SignedData decodes what the device must sign and checks that it is
// exactly the text shown and the challenge (a server that sent other bytes
// than it shows is refused).
func (o *Opened) SignedData() ([]byte, error) {
	d, err := base64.StdEncoding.DecodeString(o.Data)
	if err != nil {
		return nil, fmt.Errorf("the order's data is not base64: %w", err)
	}
	ch, err := hex.DecodeString(o.Challenge)
	if err != nil || !bytes.Equal(d, SignedText(o.Text, ch)) {
		return nil, fmt.Errorf("the order's data is not its text and challenge")
	}
	return d, nil
}

// Sign posts the tool's response (an EGP1 proof).
func (c *Client) Sign(ctx context.Context, ref, deviceToken string, response []byte) error {
	_, err := c.SignData(ctx, ref, deviceToken, response)
	return err
}

// SignData posts the response and returns what the bank gives back (an
// enrolment's certificate, DER; nil for a signature).
func (c *Client) SignData(ctx context.Context, ref, deviceToken string, response []byte) ([]byte, error) {
	var out struct {
		Data []byte `json:"data"`
	}
	if err := c.post(ctx, "/v1/orders/sign", signBody{Ref: ref, DeviceToken: deviceToken, Response: base64.StdEncoding.EncodeToString(response)}, &out); err != nil {
		return nil, err
	}
	return out.Data, nil
}

// Cancel declines an opened order; reason is one of DeviceReasons.
func (c *Client) Cancel(ctx context.Context, ref, deviceToken, reason string) error {
	return c.post(ctx, "/v1/orders/cancel", signBody{Ref: ref, DeviceToken: deviceToken, Reason: reason}, nil)
}

// Link is an autostart link parsed.
type Link struct {
	Ref, Token, Server string
}

// ParseLink parses egate://order?ref=…&token=…[&server=…].
func ParseLink(s string) (Link, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "egate" || !(u.Host == "order" && (u.Path == "" || u.Path == "/") || u.Opaque == "order") {
		return Link{}, fmt.Errorf("not an egate:// order link")
	}
	q := u.Query()
	l := Link{Ref: q.Get("ref"), Token: q.Get("token"), Server: q.Get("server")}
	if l.Ref == "" || l.Token == "" {
		return Link{}, fmt.Errorf("the order link has no ref or token")
	}
	return l, nil
}
