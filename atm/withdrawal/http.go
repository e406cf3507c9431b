package withdrawal

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/egate-bank/egate/internal/httpx"
)

// Handler serves the withdrawal's API:
//
//	POST /atm/withdrawals                  {"atm"}                                  → 201 the session (QR shown)
//	POST /atm/withdrawals/approve          {"qr"|"atm"+"session","account","amount_fen","proof"} → 200 the withdrawal
//	GET  /atm/withdrawals/{session}        → the withdrawal (anonymous: its state only)
//
// Opening a session is for the bank's ATM application side only: the open
// route is served through requireOpener (internal/app gives the back-end
// client check of the scope atm:withdrawals), which answers everybody else
// itself. Without one (nil) every open is refused 401 "unauthorized": the
// route never stands open by omission. The approval carries its own
// authentication (the phone's proof, checked by the Authorizer).
//
// The read shows the whole withdrawal (amounts, reason) only to a request
// with an Authorization header that requireOpener lets through; one whose
// credentials it refuses gets its refusal. A request without credentials
// gets the bare state (StateView): the session id is in the QR on the ATM's
// screen, which anyone near the ATM can photograph, and the state is what
// that screen shows anyway, while the amounts are the customer's.
func (s *Service) Handler(requireOpener func(http.Handler) http.Handler) http.Handler {
	mux := http.NewServeMux()
	open := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ATM string `json:"atm"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil || body.ATM == "" {
			httpx.WriteError(w, r, http.StatusBadRequest, "bad_request", `send {"atm":"ATM id"}`)
			return
		}
		wd, err := s.Open(r.Context(), body.ATM)
		if err != nil {
			writeErr(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusCreated, view(wd))
	}))
	if requireOpener != nil {
		open = requireOpener(open)
	} else {
		open = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteError(w, r, http.StatusUnauthorized, "unauthorized", "opening a withdrawal session is for the bank's ATM application, and this server has no way to authenticate it")
		})
	}
	mux.Handle("POST /atm/withdrawals", open)
	mux.HandleFunc("POST /atm/withdrawals/approve", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			QR        string `json:"qr"`
			ATM       string `json:"atm"`
			Session   string `json:"session"`
			Account   string `json:"account"`
			AmountFen int64  `json:"amount_fen"`
			Proof     string `json:"proof"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16384)).Decode(&body); err != nil {
			httpx.WriteError(w, r, http.StatusBadRequest, "bad_request", "the body is not the JSON of an approval")
			return
		}
		if body.QR != "" {
			a, sess, err := ParseQR(body.QR)
			if err != nil {
				writeErr(w, r, err)
				return
			}
			body.ATM, body.Session = a, sess
		}
		wd, err := s.Approve(r.Context(), Approval{ATM: body.ATM, Session: body.Session, Account: body.Account, AmountFen: body.AmountFen, Proof: body.Proof})
		if p, ok := asProofNeeded(err); ok {
			httpx.WriteJSON(w, http.StatusAccepted, struct {
				Session     string       `json:"session"`
				ATM         string       `json:"atm"`
				State       State        `json:"state"`
				ProofNeeded *ProofNeeded `json:"proof_needed"`
			}{body.Session, body.ATM, QRShown, p})
			return
		}
		if err != nil {
			writeErr(w, r, err)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, view(wd))
	})
	get := func(full bool) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			wd, err := s.Get(r.Context(), r.PathValue("session"))
			if err != nil {
				writeErr(w, r, err)
				return
			}
			if !full {
				httpx.WriteJSON(w, http.StatusOK, StateView{Session: wd.Session, ATM: wd.ATM, State: wd.State, ExpiresMS: wd.ExpiresMS})
				return
			}
			httpx.WriteJSON(w, http.StatusOK, view(wd))
		})
	}
	anonymous, authenticated := get(false), get(true)
	if requireOpener != nil {
		authenticated = requireOpener(authenticated)
	} else {
		authenticated = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteError(w, r, http.StatusUnauthorized, "unauthorized", "this server has no way to authenticate the bank's ATM application: read the withdrawal without credentials for its state")
		})
	}
	mux.HandleFunc("GET /atm/withdrawals/{session}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			anonymous.ServeHTTP(w, r)
			return
		}
		authenticated.ServeHTTP(w, r)
	})
	return mux
}

// StateView is a withdrawal as an anonymous read shows it: its state and
// expiry, no account, amount or reason.
type StateView struct {
	Session   string `json:"session"`
	ATM       string `json:"atm"`
	State     State  `json:"state"`
	ExpiresMS int64  `json:"expires_ms"`
}

// View is a withdrawal as the API shows it (no grant).
type View struct {
	Session   string `json:"session"`
	ATM       string `json:"atm"`
	QR        string `json:"qr"`
	State     State  `json:"state"`
	Reason    string `json:"reason,omitempty"`
	ExpiresMS int64  `json:"expires_ms"`
	AmountFen int64  `json:"amount_fen,omitempty"`
	CashOut   int64  `json:"cash_out_fen,omitempty"`
	Captured  int64  `json:"captured_fen,omitempty"`
	Released  int64  `json:"released_fen,omitempty"`
}

func view(w *Withdrawal) View {
	return View{Session: w.Session, ATM: w.ATM, QR: QRText(w.ATM, w.Session), State: w.State, Reason: w.Reason, ExpiresMS: w.ExpiresMS,
		AmountFen: w.AmountFen, CashOut: w.CashOutFen, Captured: w.Captured, Released: w.Released}
}

// writeErr maps the service's errors to a status, a stable code and a
// message for the phone or the ATM screen.
func writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var rf *Refusal
	if errors.As(err, &rf) {
		httpx.WriteError(w, r, rf.Status, rf.Code, rf.Message)
		return
	}
	for _, m := range []struct {
		err    error
		status int
		code   string
	}{
		{ErrBadRequest, http.StatusBadRequest, "bad_request"},
		{ErrUnknownSession, http.StatusNotFound, "unknown_session"},
		{ErrForeignSession, http.StatusForbidden, "foreign_session"},
		{ErrSessionUsed, http.StatusConflict, "session_used"},
		{ErrExpired, http.StatusGone, "session_expired"},
		{ErrCashAtExit, http.StatusConflict, "cash_at_exit"},
		{ErrCannotMix, http.StatusUnprocessableEntity, "cannot_make_amount"},
		{ErrRefused, http.StatusForbidden, "refused"},
	} {
		if errors.Is(err, m.err) {
			httpx.WriteError(w, r, m.status, m.code, err.Error())
			return
		}
	}
	httpx.WriteError(w, r, http.StatusServiceUnavailable, "unavailable", "the withdrawal cannot go on now: "+err.Error())
}
