package authsvc

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/egate-bank/egate/authsvc/alerts"
	"github.com/egate-bank/egate/authsvc/apierr"
)

// AlertView is one alert as the messenger inbox shows it.
type AlertView struct {
	ID   string          `json:"id"`
	Kind string          `json:"kind"`
	At   time.Time       `json:"at"`
	Body json.RawMessage `json:"body"`
}

// apiAlerts: GET /api/v1/alerts?limit=N with a bearer access token issued
// to the messenger client (the inbox) or the ebank client (the login
// history): the customer's latest alerts, newest first. The alerts the
// messenger reads count as delivered to its inbox; ebank's reading does not.
func (s *Server) apiAlerts(w http.ResponseWriter, r *http.Request, claims *oidc.AccessTokenClaims) {
	ctx := r.Context()
	if claims.ClientID != alerts.ConsumerMessenger && claims.ClientID != "ebank" {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
		apierr.WriteCode(w, r, apierr.WrongClient, "the alert inbox is read by the messenger app and ebank's login history only")
		return
	}
	limit := 20
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			apierr.WriteCode(w, r, apierr.InvalidRequest, "limit must be 1 to 100")
			return
		}
		limit = n
	}
	list, err := s.alerts.ForCustomer(ctx, claims.Subject, limit)
	if err != nil {
		apierr.Write(w, r, s.now(), err)
		return
	}
	out := make([]AlertView, 0, len(list))
	for _, a := range list {
		out = append(out, AlertView{ID: a.ID, Kind: a.Kind, At: a.At, Body: a.Body})
		if claims.ClientID == alerts.ConsumerMessenger {
			s.alerts.Ack(ctx, alerts.ConsumerMessenger, a.ID)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"alerts": out})
}
