package ebank

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/internal/httpx"
	"github.com/egate-bank/egate/platform/ebank/ledger"
)

// API serves Holds over HTTP to the bank's back-end clients:
//
//	POST /v1/holds                 {key, debit_account, credit_account, amount, grant, timeout_seconds?, code?, memo?}
//	GET  /v1/holds/{id}            the hold with its state (pending, expired, captured, released)
//	POST /v1/holds/{id}/capture    {key, amount, grant}: amount ≤ held; the rest is released
//	POST /v1/holds/{id}/release    {key, grant}
//	POST /v1/transfers             {key, debit_account, credit_account, amount, grant, code?, memo?}
//	GET  /v1/transfers/{id}
//
// Amounts are integers of fen. A new movement answers 201 with the
// transfer; the same request again (same key) 200 with the same transfer
// and "replayed": true. Refusals use egate's JSON error shape with the
// ledger's stable codes and change nothing.
//
// It must be mounted behind backend.Registry.Require(backend.ScopeEbankHolds,
// …): the authenticated client's id is the origin of every movement, so
// each client has its own idempotency keys and sees only its own holds.
type API struct {
	Holds *Holds
	// OnError, if set, hears each error that is not a refusal (the
	// database unreachable, a grant checker down): the answer says only
	// "try again", so the process logs the cause with the request id.
	OnError func(r *http.Request, err error)
}

// Handler returns the routes above.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/holds", a.move(true))
	mux.HandleFunc("POST /v1/transfers", a.move(false))
	mux.HandleFunc("GET /v1/holds/{id}", a.get)
	mux.HandleFunc("GET /v1/transfers/{id}", a.get)
	mux.HandleFunc("POST /v1/holds/{id}/capture", a.resolve(true))
	mux.HandleFunc("POST /v1/holds/{id}/release", a.resolve(false))
	return mux
}

type moveBody struct {
	Key            string          `json:"key"`
	Debit          string          `json:"debit_account"`
	Credit         string          `json:"credit_account"`
	Amount         json.RawMessage `json:"amount"`
	Grant          string          `json:"grant"`
	TimeoutSeconds int64           `json:"timeout_seconds"`
	Code           string          `json:"code"`
	Memo           string          `json:"memo"`
}

type resolveBody struct {
	Key    string          `json:"key"`
	Amount json.RawMessage `json:"amount"`
	Grant  string          `json:"grant"`
}

func (a *API) move(hold bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		origin, ok := client(w, r)
		if !ok {
			return
		}
		var b moveBody
		if !decode(w, r, &b) {
			return
		}
		amount, err := parseAmount(b.Amount)
		if err != nil {
			a.writeErr(w, r, err)
			return
		}
		if !hold && b.TimeoutSeconds != 0 {
			a.writeErr(w, r, fmt.Errorf("%w: a transfer has no timeout_seconds (make a hold instead)", ledger.ErrInvalidRequest))
			return
		}
		if b.TimeoutSeconds < 0 || b.TimeoutSeconds > 30*24*3600 {
			a.writeErr(w, r, fmt.Errorf("%w: timeout_seconds must be from 1 to 2592000 (30 days)", ledger.ErrInvalidRequest))
			return
		}
		req := HoldRequest{Origin: origin, Key: b.Key, Debit: b.Debit, Credit: b.Credit, Amount: amount, Grant: b.Grant,
			Code: b.Code, Memo: b.Memo, Timeout: time.Duration(b.TimeoutSeconds) * time.Second}
		var t ledger.Transfer
		if hold {
			t, err = a.Holds.Hold(r.Context(), req)
		} else {
			t, err = a.Holds.Transfer(r.Context(), req)
		}
		a.writeTransfer(w, r, t, err)
	}
}

func (a *API) resolve(capture bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		origin, ok := client(w, r)
		if !ok {
			return
		}
		var b resolveBody
		if !decode(w, r, &b) {
			return
		}
		var t ledger.Transfer
		var err error
		if capture {
			var amount int64
			if amount, err = parseAmount(b.Amount); err == nil {
				t, err = a.Holds.Capture(r.Context(), origin, b.Key, r.PathValue("id"), amount, b.Grant)
			}
		} else {
			if len(b.Amount) > 0 {
				err = fmt.Errorf("%w: a release takes no amount: it releases the whole hold", ledger.ErrInvalidRequest)
			} else {
				t, err = a.Holds.Release(r.Context(), origin, b.Key, r.PathValue("id"), b.Grant)
			}
		}
		a.writeTransfer(w, r, t, err)
	}
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	origin, ok := client(w, r)
	if !ok {
		return
	}
	t, err := a.Holds.Get(r.Context(), origin, r.PathValue("id"))
	if err != nil {
		a.writeErr(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, t)
}

// client is the authenticated back-end client's id, the origin of its
// movements.
func client(w http.ResponseWriter, r *http.Request) (string, bool) {
	c, ok := backend.ClientFrom(r.Context())
	if !ok {
		httpx.WriteError(w, r, http.StatusUnauthorized, "unauthorized", "this API is for the bank's registered back-end clients: send the client id and secret as HTTP Basic")
		return "", false
	}
	return c.ID, true
}

const maxBody = 16 << 10

// decode reads one JSON object, refusing unknown fields and trailing data.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		httpx.WriteError(w, r, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("the request body must be a JSON object of at most %d bytes", maxBody))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpx.WriteError(w, r, http.StatusBadRequest, "invalid_json", "the request body is not the JSON object this endpoint takes: "+err.Error())
		return false
	}
	if dec.More() {
		httpx.WriteError(w, r, http.StatusBadRequest, "invalid_json", "the request body has data after its JSON object")
		return false
	}
	return true
}

// parseAmount reads a JSON integer of fen. A fraction of a fen, an
// exponent, a string or a number beyond int64 is refused; zero and
// negative amounts pass to the ledger, which refuses them.
func parseAmount(raw json.RawMessage) (int64, error) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || s == "null" {
		return 0, fmt.Errorf("%w: amount is missing: give a whole number of fen", ledger.ErrAmount)
	}
	if s[0] == '"' {
		return 0, fmt.Errorf("%w: amount is a string; give a JSON number of fen, e.g. 35025 for 350.25 yuan", ledger.ErrAmount)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s is not a whole number of fen (1 yuan = 100 fen; 350.25 yuan is 35025)", ledger.ErrAmount, s)
	}
	return n, nil
}

func (a *API) writeTransfer(w http.ResponseWriter, r *http.Request, t ledger.Transfer, err error) {
	switch {
	case err != nil:
		a.writeErr(w, r, err)
	case t.Replayed:
		httpx.WriteJSON(w, http.StatusOK, t)
	default:
		httpx.WriteJSON(w, http.StatusCreated, t)
	}
}

// statuses maps the ledger's and the service's codes to HTTP statuses.
var statuses = map[string]int{
	"invalid_amount":         http.StatusBadRequest,
	"invalid_request":        http.StatusBadRequest,
	"same_account":           http.StatusUnprocessableEntity,
	"unknown_account":        http.StatusUnprocessableEntity,
	"account_not_open":       http.StatusUnprocessableEntity,
	"currency_mismatch":      http.StatusUnprocessableEntity,
	"insufficient_funds":     http.StatusUnprocessableEntity,
	"amount_over_hold":       http.StatusUnprocessableEntity,
	"idempotency_key_reused": http.StatusConflict,
	"not_a_hold":             http.StatusConflict,
	"hold_captured":          http.StatusConflict,
	"hold_released":          http.StatusConflict,
	"hold_expired":           http.StatusConflict,
	"not_reversible":         http.StatusConflict,
	"already_reversed":       http.StatusConflict,
	"unknown_transfer":       http.StatusNotFound,
	"grant_required":         http.StatusForbidden,
	"grant_mismatch":         http.StatusForbidden,
	"grant_refused":          http.StatusForbidden,
}

func (a *API) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var le *ledger.Error
	if errors.As(err, &le) {
		status, ok := statuses[le.Code]
		if !ok {
			status = http.StatusBadRequest
		}
		httpx.WriteError(w, r, status, le.Code, err.Error())
		return
	}
	// A fault of the database or the grant checker, not of the request:
	// no details in the answer.
	if a.OnError != nil {
		a.OnError(r, err)
	}
	httpx.WriteError(w, r, http.StatusServiceUnavailable, "ledger_unavailable", "the ledger could not be reached; try again with the same key")
}
