package authsvc

import (
	"net/http"
)

// APIRoutes are the passport's JSON APIs, which take a bearer access token
// of its OIDC provider; routes mounts them under the base path. They are
// described in openapi.yaml (internal/app's TestOpenAPI checks it).
var APIRoutes = []string{
	"POST /api/v1/password",
	"GET /api/v1/alerts",
	"GET /api/v1/self",
	"PUT /api/v1/self/reserved-message",
	"PUT /api/v1/self/limits",
	"POST /api/v1/self/tools/otp",
	"POST /api/v1/self/tools/lost",
	"PUT /api/v1/self/withdrawal-pin",
}

// DeviceRoutes are the APIs of the customer's devices (the desktop helper,
// the phone app), authenticated by what their bodies carry: routes mounts
// the orders' device API (orders.Service.DeviceAPI) and the phone binding.
var DeviceRoutes = []string{
	"POST /v1/orders/open",
	"POST /v1/orders/sign",
	"POST /v1/orders/cancel",
	"POST /v1/phone/bind/start",
	"POST /v1/phone/bind/finish",
}

// apiHandler is the handler of one of APIRoutes.
func (s *Server) apiHandler(pattern string) http.HandlerFunc {
	switch pattern {
	case "POST /api/v1/password":
		return s.bearer("", "", s.apiChangePassword)
	case "GET /api/v1/alerts":
		// The messenger's inbox and ebank's login history read it;
		// apiAlerts checks the client (only the messenger's reads count
		// as delivered).
		return s.bearer("", "", s.apiAlerts)
	// The customer's self-service (api_self.go), at SelfServiceLevel.
	case "GET /api/v1/self":
		return s.bearer("", "", s.selfLevel(s.apiSelf))
	case "PUT /api/v1/self/reserved-message":
		return s.bearer("", "", s.selfLevel(s.apiReservedMessage))
	case "PUT /api/v1/self/limits":
		return s.bearer("", "", s.selfLevel(s.apiOwnLimits))
	case "POST /api/v1/self/tools/otp":
		return s.bearer("", "", s.selfLevel(s.apiBindOTP))
	case "POST /api/v1/self/tools/lost":
		return s.bearer("", "", s.selfLevel(s.apiReportLost))
	case "PUT /api/v1/self/withdrawal-pin":
		return s.bearer("", "", s.selfLevel(s.apiWithdrawalPIN))
	}
	return nil // routes panics: a route listed without its handler
}
