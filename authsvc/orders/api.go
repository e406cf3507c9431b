package orders

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/egate-bank/egate/authsvc/apierr"
	"github.com/egate-bank/egate/authsvc/authn"
	"github.com/egate-bank/egate/internal/httpx"
)

func queryEscape(s string) string { return url.QueryEscape(s) }

// The device API: what the desktop helper and the phone app call. JSON in,
// JSON out; errors are egate's one shape {"error":{"code","message","request_id"}}
// (httpx.WriteError), a tool's with the status and code of authsvc/apierr.
//
//	POST /v1/orders/open   {"ref","autostart_token"} or {"qr"}  → Opened
//	POST /v1/orders/sign   {"ref","device_token","response"}    → {"state":"complete","data"?}
//
// data (base64) is what an enrolment gives back: the certificate issued.
//	POST /v1/orders/cancel {"ref","device_token","reason"}      → {"state":"cancelled"}
//
// response is the tool's answer, base64 (standard alphabet): an EGP1 proof
// for a U-shield or PIV token.

// Opened is what a device gets when it opens an order.
type Opened struct {
	Ref         string    `json:"ref"`
	DeviceToken string    `json:"device_token"`
	Kind        Kind      `json:"kind"`
	Factor      string    `json:"factor"`
	Text        string    `json:"text"`
	Challenge   string    `json:"challenge"` // hex
	Data        string    `json:"data"`      // base64: exactly what to sign
	ExpiresAt   time.Time `json:"expires_at"`
}

// EnrolAnswer is a device's response to an enrolment order (JSON): a
// U-shield's CSR, signed by the key made on the token, whose common name is
// the order's challenge (hex), with where the key is; or a PIV card's
// attestation of the key it made (the card's attestation certificate and
// the certificate attesting the key, DER) with the new key's signature
// (ASN.1 ECDSA over SHA-256 of the order's data), made after the PIN.
type EnrolAnswer struct {
	CSR        []byte `json:"csr,omitempty"`
	Label      string `json:"label,omitempty"`  // the token's label
	Serial     string `json:"serial,omitempty"` // the token's serial
	KeyID      []byte `json:"key_id,omitempty"` // CKA_ID of the new key and its certificate
	DeviceCert []byte `json:"device_cert,omitempty"`
	SlotCert   []byte `json:"slot_cert,omitempty"`
	Sig        []byte `json:"sig,omitempty"`
}

type openBody struct {
	Ref            string `json:"ref"`
	AutostartToken string `json:"autostart_token"`
	QR             string `json:"qr"`
}

type signBody struct {
	Ref         string `json:"ref"`
	DeviceToken string `json:"device_token"`
	Response    string `json:"response,omitempty"`
	Reason      string `json:"reason,omitempty"` // cancel: one of DeviceReasons
}

const maxBody = 16 << 10

// Status is the HTTP status for an order or tool error: an order's own
// refusal's, else the one table's (authsvc/apierr), so a tool's refusal
// has the same status here as on every API.
func Status(err error) int {
	switch {
	case errors.Is(err, ErrUnknown):
		return http.StatusNotFound
	case errors.Is(err, ErrExpired):
		return http.StatusGone
	case errors.Is(err, ErrBadQR), errors.Is(err, ErrStaleQR), errors.Is(err, ErrBadText):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotOpen):
		return http.StatusForbidden
	case errors.Is(err, ErrCancelled), errors.Is(err, authn.ErrOtherTransaction), errors.Is(err, ErrDone), errors.Is(err, ErrFailed), errors.Is(err, ErrInUse),
		errors.Is(err, ErrCollected), errors.Is(err, ErrNotComplete):
		return http.StatusConflict
	}
	return apierr.Of(err).Status
}

// WriteError answers err in egate's one JSON error shape (httpx.WriteError).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	httpx.WriteError(w, r, Status(err), Code(err), Message(err))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func badRequest(w http.ResponseWriter, r *http.Request, msg string) {
	apierr.WriteCode(w, r, apierr.InvalidRequest, msg)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(b) > maxBody {
		badRequest(w, r, "the request body is missing or larger than 16 KiB")
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		badRequest(w, r, "the request body is not the JSON object expected")
		return false
	}
	return true
}

func peer(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// DeviceAPI returns the device API's handler, to be mounted under
// base+"/v1/orders/". clientIP names the caller (the server's rule for
// X-Forwarded-For); nil means the peer address.
func (s *Service) DeviceAPI(base string, clientIP func(*http.Request) string) http.Handler {
	if clientIP == nil {
		clientIP = peer
	}
	m := http.NewServeMux()
	m.HandleFunc("POST "+base+"/v1/orders/open", func(w http.ResponseWriter, r *http.Request) {
		var b openBody
		if !decode(w, r, &b) {
			return
		}
		if b.QR == "" && (b.Ref == "" || b.AutostartToken == "") {
			badRequest(w, r, "give the order's ref and autostart_token, or the qr code scanned")
			return
		}
		o, dev, err := s.Open(r.Context(), OpenRequest{Ref: b.Ref, AutostartToken: b.AutostartToken, QR: b.QR})
		if err != nil {
			WriteError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, Opened{Ref: o.Ref, DeviceToken: dev, Kind: o.Kind, Factor: o.Factor, Text: o.Text,
			Challenge: hexUpper(o.Challenge), Data: base64.StdEncoding.EncodeToString(o.Data), ExpiresAt: o.ExpiresAt.UTC()})
	})
	m.HandleFunc("POST "+base+"/v1/orders/sign", func(w http.ResponseWriter, r *http.Request) {
		var b signBody
		if !decode(w, r, &b) {
			return
		}
		resp, err := base64.StdEncoding.DecodeString(b.Response)
		if b.Ref == "" || b.DeviceToken == "" || err != nil || len(resp) == 0 {
			badRequest(w, r, "give the order's ref, the device_token from open and the response in base64")
			return
		}
		o, err := s.Sign(r.Context(), b.Ref, b.DeviceToken, resp, clientIP(r))
		if err != nil {
			WriteError(w, r, err)
			return
		}
		out := map[string]string{"state": string(Complete)}
		if len(o.ResultData) > 0 {
			out["data"] = base64.StdEncoding.EncodeToString(o.ResultData)
		}
		writeJSON(w, http.StatusOK, out)
	})
	m.HandleFunc("POST "+base+"/v1/orders/cancel", func(w http.ResponseWriter, r *http.Request) {
		var b signBody
		if !decode(w, r, &b) {
			return
		}
		if err := s.CancelByDevice(r.Context(), b.Ref, b.DeviceToken, b.Reason); err != nil {
			WriteError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"state": string(Cancelled)})
	})
	m.HandleFunc(base+"/v1/orders/", func(w http.ResponseWriter, r *http.Request) {
		apierr.WriteCode(w, r, apierr.NotFound, "no such order API")
	})
	return m
}
