package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/egate-bank/egate/devices/agent/dclink"
	"github.com/egate-bank/egate/internal/httpx"
)

// Handler serves the operators' view (mount it on the gateway process's
// HTTP listener, never on the agents' TLS listener):
//
//	GET /agent-gateway/agents              the live links and the recent refusals
//	GET /agent-gateway/atms                the registry: ATM → branch
//	GET /agent-gateway/atms/{id}/status    STATUS of one ATM through its agent (no side effect)
//	GET /agent-gateway/atms/{id}/txns/{txn} TXN_STATUS: the ATM's own record of a transaction (no side effect)
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /agent-gateway/agents", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"agents": g.Agents(), "refused_recently": g.Refusals()})
	})
	mux.HandleFunc("GET /agent-gateway/atms", func(w http.ResponseWriter, r *http.Request) {
		pins, err := g.opt.Registry.List(r.Context(), r.URL.Query().Get("branch"))
		if err != nil {
			httpx.WriteError(w, r, http.StatusServiceUnavailable, "registry_unavailable", "the ATM registry cannot be read now")
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"atms": pins})
	})
	mux.HandleFunc("GET /agent-gateway/atms/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		g.ask(w, r, dclink.OpStatus, nil)
	})
	mux.HandleFunc("GET /agent-gateway/atms/{id}/txns/{txn}", func(w http.ResponseWriter, r *http.Request) {
		txn := r.PathValue("txn")
		if len(txn) != 32 || strings.Trim(txn, "0123456789abcdef") != "" {
			httpx.WriteError(w, r, http.StatusBadRequest, "bad_txn", "a transaction id is 32 lower-case hex digits")
			return
		}
		g.ask(w, r, dclink.OpTxnStatus, dclink.TxnArgs{Txn: txn})
	})
	return mux
}

// ask runs a command without side effect on the ATM of the path and
// writes its result.
func (g *Gateway) ask(w http.ResponseWriter, r *http.Request, op string, args any) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	id := r.PathValue("id")
	res, err := g.Do(ctx, id, op, args)
	var ce *CommandError
	switch {
	case err == nil:
		httpx.WriteJSON(w, http.StatusOK, json.RawMessage(res))
	case errors.Is(err, ErrNotPinned):
		httpx.WriteError(w, r, http.StatusNotFound, "atm_not_pinned", "ATM "+id+" is not pinned to a branch (egate admin agent assign)")
	case errors.Is(err, ErrNoAgent), errors.Is(err, ErrATMRefused), errors.Is(err, ErrAgentRefused), errors.Is(err, ErrNoResult):
		httpx.WriteError(w, r, http.StatusServiceUnavailable, "agent_unavailable", err.Error())
	case errors.As(err, &ce):
		httpx.WriteError(w, r, http.StatusBadGateway, ce.Err.Code, ce.Error())
	default:
		httpx.WriteError(w, r, http.StatusInternalServerError, "internal", "the gateway could not ask the ATM")
	}
}
