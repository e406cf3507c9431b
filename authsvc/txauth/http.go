package txauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"

	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/authsvc/txauth/txclient"
	"github.com/egate-bank/egate/internal/httpx"
)

// Guard authenticates back-end clients (backend.Registry does).
type Guard interface {
	Require(scope string, next http.Handler) http.Handler
}

// Routes are the API's routes with the scope each needs, in the order of
// the README (and of an OpenAPI description to come).
var Routes = []struct{ Pattern, Scope string }{
	{"POST /v1/tx/authorize", backend.ScopeTxAuthorize},
	{"GET /v1/tx/{hash}", backend.ScopeTxAuthorize},
	{"POST /v1/tx/{hash}/challenge", backend.ScopeTxAuthorize},
	{"POST /v1/tx/{hash}/order", backend.ScopeTxAuthorize},
	{"POST /v1/tx/{hash}/order/collect", backend.ScopeTxAuthorize},
	{"POST /v1/tx/{hash}/proof", backend.ScopeTxAuthorize},
	{"POST /v1/tx/execute", backend.ScopeTxExecute},
	{"POST /v1/tx/{hash}/cancel", backend.ScopeTxExecute},
	{"POST /v1/alerts/balance", backend.ScopeAlertsBalance},
	{"GET /v1/alerts/preferences", backend.ScopeAlertsBalance},
	{"PUT /v1/alerts/preferences", backend.ScopeAlertsBalance},
	{"GET /keys/encryption", ""}, // public: the JWE key (encryption.go)
}

// maxBody bounds a request body.
const maxBody = 64 << 10

// Handler serves the API (Routes) to the back-end clients g lets in, and
// the routes without a scope to anybody; mount it at /v1/tx/, /v1/alerts/
// and GET /keys/encryption. Anything else answers 404 in egate's JSON
// error shape.
func (s *Service) Handler(g Guard) http.Handler {
	hs := map[string]http.HandlerFunc{
		"POST /v1/tx/authorize":            s.httpAuthorize,
		"GET /v1/tx/{hash}":                s.httpGet,
		"POST /v1/tx/{hash}/challenge":     s.httpChallenge,
		"POST /v1/tx/{hash}/order":         s.httpOrder,
		"POST /v1/tx/{hash}/order/collect": s.httpCollectOrder,
		"POST /v1/tx/{hash}/proof":         s.httpProof,
		"POST /v1/tx/execute":              s.httpExecute,
		"POST /v1/tx/{hash}/cancel":        s.httpCancel,
		"POST /v1/alerts/balance":          s.httpBalance,
		"GET /v1/alerts/preferences":       s.httpGetPrefs,
		"PUT /v1/alerts/preferences":       s.httpSetPrefs,
		"GET /keys/encryption":             s.httpEncryptionKey,
	}
	mux := http.NewServeMux()
	for _, r := range Routes {
		if r.Scope == "" {
			mux.Handle(r.Pattern, hs[r.Pattern])
			continue
		}
		mux.Handle(r.Pattern, g.Require(r.Scope, hs[r.Pattern]))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apierr.WriteCode(w, r, apierr.NotFound, "no such endpoint of the transaction API")
	})
	return mux
}

// writeErr answers err in the one JSON error shape: a refusal of the API
// (*Error) with its status and code; a fault of the bank's as the one table
// answers it (503 unavailable, Retry-After, nothing about internals).
func writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) || e.Code == ErrUnavailable.Code {
		apierr.WriteCode(w, r, apierr.Unavailable, ErrUnavailable.Msg)
		return
	}
	httpx.WriteError(w, r, e.Status, e.Code, e.Msg)
}

// readBody reads a bounded body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, ErrBadRequest.with("the body is too large or unreadable")
	}
	return b, nil
}

// decodeStrict decodes one JSON object into v, refusing unknown fields and
// anything after it.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return ErrBadRequest.with("the body is not the JSON object this endpoint takes: " + jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrBadRequest.with("the body must be one JSON object, with nothing after it")
	}
	return nil
}

func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + te.Field + " has the wrong type"
	}
	if s := err.Error(); len(s) < 120 {
		return s
	}
	return "malformed JSON"
}

// decodeIntent decodes an intent strictly (intent.Decode).
func decodeIntent(b []byte) (intent.Intent, error) {
	in, err := intent.Decode(bytes.NewReader(b))
	if err != nil {
		return in, badIntent(err)
	}
	return in, nil
}

// decodeAuthorize decodes the authorize call's body strictly: the intent,
// and the challenge to begin (txclient.AuthorizeRequest), when there is
// one.
func decodeAuthorize(b []byte) (intent.Intent, *txclient.ChallengeRequest, error) {
	var raw json.RawMessage
	in, err := intent.DecodeWith(bytes.NewReader(b), map[string]*json.RawMessage{"challenge": &raw})
	if err != nil {
		return in, nil, badIntent(err)
	}
	if raw == nil || string(raw) == "null" {
		return in, nil, nil
	}
	var ch txclient.ChallengeRequest
	if err := decodeStrict(raw, &ch); err != nil {
		return in, nil, ErrBadRequest.with("challenge: " + err.(*Error).Msg)
	}
	if ch.Factor == "" {
		return in, nil, ErrBadRequest.with("challenge.factor: name the tool to challenge with (sms, gridcard, otp, …), or leave challenge out")
	}
	if ch.ClientIP != "" {
		if _, err := netip.ParseAddr(ch.ClientIP); err != nil {
			return in, nil, ErrBadRequest.with("challenge.client_ip: must be an IPv4 or IPv6 address")
		}
	}
	return in, &ch, nil
}

func (s *Service) httpAuthorize(w http.ResponseWriter, r *http.Request) {
	b, sealed, err := s.readTxBody(w, r)
	if err == nil {
		var in intent.Intent
		var ch *txclient.ChallengeRequest
		if in, ch, err = decodeAuthorize(b); err == nil && !sealed {
			err = s.clearIntent(in)
		}
		if err == nil {
			var d txclient.Decision
			if d, err = s.AuthorizeWith(r.Context(), in, ch); err == nil {
				status := http.StatusCreated
				if d.Replayed {
					status = http.StatusOK
				}
				httpx.WriteJSON(w, status, d)
				return
			}
		}
	}
	writeErr(w, r, err)
}

func (s *Service) httpGet(w http.ResponseWriter, r *http.Request) {
	d, err := s.Get(r.Context(), r.PathValue("hash"))
	if err != nil {
		writeErr(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, d)
}

func (s *Service) httpChallenge(w http.ResponseWriter, r *http.Request) {
	var req txclient.ChallengeRequest
	b, err := readBody(w, r)
	if err == nil {
		if err = decodeStrict(b, &req); err == nil {
			var ch txclient.Challenge
			if ch, err = s.Challenge(r.Context(), r.PathValue("hash"), req); err == nil {
				httpx.WriteJSON(w, http.StatusCreated, ch)
				return
			}
		}
	}
	writeErr(w, r, err)
}

// proofBody is ProofRequest with the intent decoded strictly.
type proofBody struct {
	ChallengeID string          `json:"challenge_id"`
	Response    string          `json:"response"`
	Order       string          `json:"order"`
	Browser     string          `json:"browser"`
	ClientIP    string          `json:"client_ip"`
	Intent      json.RawMessage `json:"intent"`
}

func (s *Service) httpProof(w http.ResponseWriter, r *http.Request) {
	var pb proofBody
	b, sealed, err := s.readTxBody(w, r)
	if err == nil {
		err = decodeStrict(b, &pb)
	}
	if err == nil && !sealed {
		err = s.clearProof(r.Context(), r.PathValue("hash"))
	}
	req := txclient.ProofRequest{ChallengeID: pb.ChallengeID, Response: pb.Response, Order: pb.Order, Browser: pb.Browser, ClientIP: pb.ClientIP}
	if err == nil && len(pb.Intent) > 0 && string(pb.Intent) != "null" {
		var in intent.Intent
		if in, err = decodeIntent(pb.Intent); err == nil {
			req.Intent = &in
		}
	}
	if err == nil {
		var g txclient.Grant
		if g, err = s.Proof(r.Context(), r.PathValue("hash"), req); err == nil {
			httpx.WriteJSON(w, http.StatusCreated, g)
			return
		}
	}
	writeErr(w, r, err)
}

type executeBody struct {
	Grant  string          `json:"grant"`
	Intent json.RawMessage `json:"intent"`
}

func (s *Service) httpExecute(w http.ResponseWriter, r *http.Request) {
	var eb executeBody
	b, err := readBody(w, r)
	if err == nil {
		err = decodeStrict(b, &eb)
	}
	if err == nil {
		var in intent.Intent
		if in, err = decodeIntent(eb.Intent); err == nil {
			var ex txclient.Executed
			if ex, err = s.Execute(r.Context(), eb.Grant, in); err == nil {
				httpx.WriteJSON(w, http.StatusOK, ex)
				return
			}
		}
	}
	writeErr(w, r, err)
}

func (s *Service) httpCancel(w http.ResponseWriter, r *http.Request) {
	var req txclient.CancelRequest
	b, err := readBody(w, r)
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		err = decodeStrict(b, &req)
	}
	if err == nil && len(req.Reason) > 256 {
		err = ErrBadRequest.with("reason: at most 256 bytes")
	}
	if err == nil {
		by := ""
		if c, ok := backend.ClientFrom(r.Context()); ok {
			by = "client:" + c.ID
		}
		var c txclient.Cancelled
		if c, err = s.Cancel(r.Context(), r.PathValue("hash"), req.Reason, by); err == nil {
			httpx.WriteJSON(w, http.StatusOK, c)
			return
		}
	}
	writeErr(w, r, err)
}

func (s *Service) httpBalance(w http.ResponseWriter, r *http.Request) {
	var a txclient.BalanceAlert
	b, err := readBody(w, r)
	if err == nil {
		err = decodeStrict(b, &a)
	}
	if err == nil {
		var posted bool
		if posted, err = s.Balance(r.Context(), a); err == nil {
			httpx.WriteJSON(w, http.StatusOK, txclient.AlertPosted{Posted: posted})
			return
		}
	}
	writeErr(w, r, err)
}

func (s *Service) httpGetPrefs(w http.ResponseWriter, r *http.Request) {
	c := r.URL.Query().Get("customer")
	if c == "" {
		writeErr(w, r, ErrBadRequest.with("give ?customer=<passport id>"))
		return
	}
	p, err := s.Preferences(r.Context(), c)
	if err != nil {
		writeErr(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, p)
}

func (s *Service) httpSetPrefs(w http.ResponseWriter, r *http.Request) {
	var p txclient.Preferences
	b, err := readBody(w, r)
	if err == nil {
		err = decodeStrict(b, &p)
	}
	if err == nil {
		if p, err = s.SetPreferences(r.Context(), p); err == nil {
			httpx.WriteJSON(w, http.StatusOK, p)
			return
		}
	}
	writeErr(w, r, err)
}
