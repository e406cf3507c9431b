package authsvc

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/egate-bank/egate/authsvc/alerts"
)

// AlertView is one alert as the messenger inbox shows it.
type AlertView struct {
	ID   string          `json:"id"`
	Kind string          `json:"kind"`
	At   time.Time       `json:"at"`
	Body json.RawMessage `json:"body"`
}

// apiAlerts: GET /api/v1/alerts?limit=N with a bearer access token issued
// to the messenger client: the customer's latest alerts, newest first. The
// alerts returned count as delivered to the messenger inbox.
func (s *Server) apiAlerts(w http.ResponseWriter, r *http.Request) {
	ctx := op.ContextWithIssuer(r.Context(), s.cfg.Issuer)
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "send an access token: Authorization: Bearer <token>")
		return
	}
	claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, tok, s.provider.AccessTokenVerifier(ctx))
	if err != nil || s.storage.SetUserinfoFromToken(ctx, new(oidc.UserInfo), claims.JWTID, claims.Subject, "") != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked")
		return
	}
	if claims.ClientID != alerts.ConsumerMessenger {
		writeError(w, http.StatusForbidden, "wrong_client", "the alert inbox is read by the messenger app only")
		return
	}
	limit := 20
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, "invalid_request", "limit must be 1 to 100")
			return
		}
		limit = n
	}
	list, err := s.alerts.ForCustomer(ctx, claims.Subject, limit)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "try again in a moment")
		return
	}
	out := make([]AlertView, 0, len(list))
	for _, a := range list {
		out = append(out, AlertView{ID: a.ID, Kind: a.Kind, At: a.At, Body: a.Body})
		s.alerts.Ack(ctx, alerts.ConsumerMessenger, a.ID)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"alerts": out})
}
