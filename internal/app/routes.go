package app

import (
	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/txauth"
)

// Route is one route of an API egate authsvc serves.
type Route struct {
	Pattern string // "METHOD /path" as http.ServeMux takes it
	Auth    string // "" (public), "bearer" (an access token) or "basic" (a back-end client)
	Scope   string // the back-end client's scope, for "basic"
}

// NewAuthsvc mounts otpRoutes (each behind its scope) and openapiRoutes;
// the tools' handler (authsvc/factors) under /ca/ serves caRoutes and
// NewServer opsRoutes.
var (
	otpRoutes = []Route{
		{"POST /v1/otp/verify", "basic", backend.ScopeOTPVerify},
		{"POST /v1/otp/resync", "basic", backend.ScopeOTPResync},
	}
	caRoutes = []Route{
		{Pattern: "GET /ca/crl"},
		{Pattern: "GET /ca/root.pem"},
		{Pattern: "GET /ca/issuing.pem"},
	}
	// opsRoutes are what NewServer mounts on every process.
	opsRoutes = []Route{
		{Pattern: "GET /healthz"},
		{Pattern: "GET /readyz"},
		{Pattern: "GET /metrics"},
	}
	openapiRoutes = []Route{
		{Pattern: "GET /openapi.yaml"},
		{Pattern: "GET /openapi.json"},
	}
)

// AuthsvcRoutes lists the API routes egate authsvc serves: health and
// metrics, its OpenAPI description, OIDC discovery (the entry to the
// standard OIDC endpoints, which are not listed), the passport's JSON APIs
// (authsvc.APIRoutes), the devices' (authsvc.DeviceRoutes), the OTP verify API, the CA and the transaction API
// (txauth.Routes). authsvc/openapi.yaml describes each; TestOpenAPI checks
// it. The passport's HTML pages are not an API and are not listed.
func AuthsvcRoutes() []Route {
	rs := append([]Route{}, opsRoutes...)
	rs = append(rs, openapiRoutes...)
	rs = append(rs, Route{Pattern: "GET /.well-known/openid-configuration"})
	for _, p := range authsvc.APIRoutes {
		rs = append(rs, Route{Pattern: p, Auth: "bearer"})
	}
	for _, p := range authsvc.DeviceRoutes {
		rs = append(rs, Route{Pattern: p})
	}
	rs = append(rs, otpRoutes...)
	rs = append(rs, caRoutes...)
	for _, r := range txauth.Routes {
		if r.Scope == "" { // public
			rs = append(rs, Route{Pattern: r.Pattern})
			continue
		}
		rs = append(rs, Route{Pattern: r.Pattern, Auth: "basic", Scope: r.Scope})
	}
	return rs
}
