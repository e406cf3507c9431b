// Package ushield simulates a 2nd-generation U-shield: a token with a display
// and confirm/cancel buttons. Asked to sign, it shows the bytes it was given
// (the transaction text and the challenge line, exactly what it will sign) on
// its terminal and on a small web page, and signs only after the customer
// presses confirm. For tests the decision can be automatic (Auto) or given
// through the control endpoints (POST /confirm, /cancel) after OnShow reports
// what is on the display.
//
// The device does one thing at a time: a second signing request while one is
// on the display is refused as busy.
package ushield

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"sync"
	"unicode/utf8"

	"github.com/egate-bank/egate/devices/pkcs11token"
)

// Errors.
var (
	ErrCancelled  = errors.New("the customer pressed cancel on the U-shield")
	ErrBusy       = errors.New("the U-shield is showing another transaction")
	ErrNotText    = errors.New("the U-shield can only sign text it can display")
	ErrNoDecision = errors.New("no transaction with that id is on the display")
)

// Auto decisions.
const (
	AutoNone    = ""
	AutoConfirm = "confirm"
	AutoCancel  = "cancel"
)

// Device is a simulated 2nd-generation U-shield.
type Device struct {
	Signer crypto.Signer // the token key (a PKCS#11 key in egate sim ushield)
	Cert   *x509.Certificate
	Auto   string    // AutoConfirm, AutoCancel or AutoNone (wait for a button)
	Out    io.Writer // the "display" on the terminal; may be nil
	// OnShow, when set, is called with what the display shows (tests use it
	// instead of polling).
	OnShow func(id, text string)

	mu      sync.Mutex
	pending *shown
}

type shown struct {
	id      string
	text    string
	decided chan bool
}

// Showing returns what is on the display ("" when idle).
func (d *Device) Showing() (id, text string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending == nil {
		return "", ""
	}
	return d.pending.id, d.pending.text
}

func displayable(b []byte) bool {
	if len(b) == 0 || len(b) > 2048 || !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\n' || r == 0x7f {
			return false
		}
	}
	return true
}

// Sign shows data, waits for the customer, and returns the encoded proof
// (pkcs11token.Proof with Confirmed set) of a signature over exactly data.
func (d *Device) Sign(ctx context.Context, data []byte) ([]byte, error) {
	if !displayable(data) {
		return nil, ErrNotText
	}
	var idb [6]byte
	rand.Read(idb[:])
	s := &shown{id: hex.EncodeToString(idb[:]), text: string(data), decided: make(chan bool, 1)}
	d.mu.Lock()
	if d.pending != nil {
		d.mu.Unlock()
		return nil, ErrBusy
	}
	d.pending = s
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.pending = nil
		d.mu.Unlock()
	}()
	if d.Out != nil {
		fmt.Fprintf(d.Out, "\n┌─ U-shield display ─ request %s\n%s\n└─ confirm or cancel\n", s.id, s.text)
	}
	if d.OnShow != nil {
		d.OnShow(s.id, s.text)
	}
	switch d.Auto {
	case AutoConfirm:
		s.decided <- true
	case AutoCancel:
		s.decided <- false
	}
	select {
	case ok := <-s.decided:
		if d.Out != nil {
			fmt.Fprintf(d.Out, "request %s: %s\n", s.id, map[bool]string{true: "CONFIRMED", false: "CANCELLED"}[ok])
		}
		if !ok {
			return nil, ErrCancelled
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return pkcs11token.SignProof(d.Signer, d.Cert, data, true)
}

// Decide presses confirm (true) or cancel on the request id on the display.
func (d *Device) Decide(id string, confirm bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending == nil || d.pending.id != id {
		return ErrNoDecision
	}
	select {
	case d.pending.decided <- confirm:
	default:
	}
	return nil
}

var page = template.Must(template.New("p").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>U-shield</title>
<meta http-equiv="refresh" content="2"><style>body{font-family:sans-serif;max-width:28em;margin:2em auto}
pre{background:#123;color:#cfe;padding:1em;white-space:pre-wrap;font-size:1.1em}button{font-size:1.2em;margin:.5em}</style></head>
<body><h1>U-shield (2nd generation)</h1>
{{if .ID}}<p>Check the transaction. Confirm only if it is what you asked for.</p><pre>{{.Text}}</pre>
<form method="post" action="confirm?id={{.ID}}" style="display:inline"><button>Confirm</button></form>
<form method="post" action="cancel?id={{.ID}}" style="display:inline"><button>Cancel</button></form>
{{else}}<p>Idle: nothing to confirm.</p>{{end}}</body></html>`))

// Handler serves the device: GET / (the display with Confirm and Cancel
// buttons), POST /sign (body: the challenge bytes; answer: the proof, 409
// when cancelled or busy, 422 when not displayable text), GET /pending
// (id and text as JSON), POST /confirm?id= and /cancel?id=.
func (d *Device) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		id, text := d.Showing()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		page.Execute(w, struct{ ID, Text string }{id, text})
	})
	mux.HandleFunc("POST /sign", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, 4096))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		proof, err := d.Sign(r.Context(), data)
		switch {
		case errors.Is(err, ErrNotText):
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		case errors.Is(err, ErrCancelled), errors.Is(err, ErrBusy):
			http.Error(w, err.Error(), http.StatusConflict)
		case err != nil:
			http.Error(w, "signing failed", http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(proof)
		}
	})
	mux.HandleFunc("GET /pending", func(w http.ResponseWriter, r *http.Request) {
		id, text := d.Showing()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"text":%q}`, id, text)
	})
	decide := func(confirm bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := d.Decide(r.URL.Query().Get("id"), confirm); err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			http.Redirect(w, r, "./", http.StatusSeeOther)
		}
	}
	mux.HandleFunc("POST /confirm", decide(true))
	mux.HandleFunc("POST /cancel", decide(false))
	return mux
}
