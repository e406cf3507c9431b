package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/egate-bank/egate/authsvc"
	"github.com/egate-bank/egate/authsvc/backend"
	"github.com/egate-bank/egate/authsvc/jwe"
	"github.com/egate-bank/egate/authsvc/txauth"
	"github.com/egate-bank/egate/devices/hsm/hsmtest"
	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/internal/testenv"
)

const (
	oaPlatformSecret = "oa-platform-0123456789abcdef0123456789abcdef"
	oaCoreSecret     = "oa-core-banking-0123456789abcdef0123456789ab"
)

// startOpenAPIAuthsvc runs app.NewAuthsvc as egate authsvc does on SoftHSM2
// and SQLite with the CA, SMS, grid card, OTP and phone tools on, and back-end
// clients: "platform" (tx:authorize, tx:execute, alerts:balance), "core"
// (otp:verify, otp:resync) and "desk" (otp:resync only).
func startOpenAPIAuthsvc(t *testing.T) *Authsvc {
	t.Helper()
	cfg := config.Defaults()
	cfg.HSM = hsmtest.Config(t)
	cfg.Database = store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "egate.db")}
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Factors.Enabled = []string{"sms", "gridcard", "otp", "phone"}
	cfg.Factors.SMS.DevSink = true
	cfg.Factors.CA.AutoInit = true
	cfg.Authsvc.BackendClients = []backend.ClientConfig{
		{ID: "platform", SecretSHA256: backend.HashSecret([]byte(oaPlatformSecret)), Scopes: []string{backend.ScopeTxAuthorize, backend.ScopeTxExecute, backend.ScopeAlertsBalance}},
		{ID: "core", SecretSHA256: backend.HashSecret([]byte(oaCoreSecret)), Scopes: []string{backend.ScopeOTPVerify, backend.ScopeOTPResync}},
		{ID: "desk", SecretSHA256: backend.HashSecret([]byte(deskSecret)), Scopes: []string{backend.ScopeOTPResync}},
	}
	cfg.Transactions.Accounts = []txauth.AccountConfig{{Customer: "P1", Account: "6222000000000001"}}
	a, err := NewAuthsvc(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), AuthsvcOptions{InitKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	a.Server.Start()
	t.Cleanup(func() { a.Server.HTTP.Close(); a.Close() })
	return a
}

// loadSpec fetches the description the server serves, checks it is the
// embedded file, and parses and validates it with kin-openapi.
func loadSpec(t *testing.T, base string) *openapi3.T {
	t.Helper()
	var yamlDoc *openapi3.T
	for _, name := range []string{"openapi.yaml", "openapi.json"} {
		resp, err := http.Get(base + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET /%s: %d", name, resp.StatusCode)
		}
		if name == "openapi.yaml" && !bytes.Equal(b, authsvc.OpenAPI) {
			t.Fatal("GET /openapi.yaml is not authsvc/openapi.yaml")
		}
		l := openapi3.NewLoader()
		doc, err := l.LoadFromData(b)
		if err != nil {
			t.Fatalf("/%s does not parse: %v", name, err)
		}
		if err := doc.Validate(l.Context); err != nil {
			t.Fatalf("/%s is not a valid OpenAPI 3 description: %v", name, err)
		}
		if yamlDoc == nil {
			yamlDoc = doc
		} else if got, want := doc.Paths.Len(), yamlDoc.Paths.Len(); got != want {
			t.Fatalf("/openapi.json has %d paths, /openapi.yaml %d", got, want)
		}
	}
	return yamlDoc
}

// errorCodes is an operation's x-error-codes: status → codes.
func errorCodes(t *testing.T, op *openapi3.Operation) map[string][]string {
	t.Helper()
	raw, ok := op.Extensions["x-error-codes"]
	if !ok {
		return nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string][]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: x-error-codes is not {status: [code, …]}: %v", op.OperationID, err)
	}
	return m
}

// codesInSource are the error codes the handlers' code can return: the
// string literals passed as the code to the error writers and constructors
// (writeError, httpx.WriteError, apiErr, factorErr's w, intent's bad) in the
// packages that serve authsvc's APIs, read from their Go source.
func codesInSource(t *testing.T) map[string]bool {
	t.Helper()
	// function name → index of its code argument
	writers := map[string]int{"writeError": 2, "WriteError": 3, "apiErr": 1, "w": 1, "bad": 1}
	isCode := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	codes := map[string]bool{}
	var files []string
	for _, g := range []string{"authsvc/*.go", "authsvc/oath/*.go", "authsvc/backend/*.go", "authsvc/txauth/*.go", "authsvc/intent/*.go", "authsvc/ca/*.go", "authsvc/orders/*.go", "authsvc/apierr/*.go", "internal/httpx/*.go"} {
		m, err := filepath.Glob(filepath.Join("..", "..", g))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				// A func Code(err) string returns its fallback code.
				if n.Name.Name == "Code" && n.Body != nil {
					ast.Inspect(n.Body, func(m ast.Node) bool {
						if r, ok := m.(*ast.ReturnStmt); ok && len(r.Results) == 1 {
							if lit, ok := r.Results[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								if s, err := strconv.Unquote(lit.Value); err == nil && isCode.MatchString(s) {
									codes[s] = true
								}
							}
						}
						return true
					})
				}
			case *ast.CallExpr:
				var name string
				switch fn := n.Fun.(type) {
				case *ast.Ident:
					name = fn.Name
				case *ast.SelectorExpr:
					name = fn.Sel.Name
				}
				i, ok := writers[name]
				if !ok || i >= len(n.Args) {
					return true
				}
				if lit, ok := n.Args[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil && isCode.MatchString(s) {
						codes[s] = true
					}
				}
			case *ast.CompositeLit:
				// A row of the one error table: apierr.Code{status, "code", …}.
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "Code" && len(n.Elts) >= 2 {
					if lit, ok := n.Elts[1].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, err := strconv.Unquote(lit.Value); err == nil && isCode.MatchString(s) {
							codes[s] = true
						}
					}
				}
				// A table {ErrX, "code"} (orders.Code).
				if len(n.Elts) == 2 {
					if lit, ok := n.Elts[1].(*ast.BasicLit); ok && lit.Kind == token.STRING && strings.Contains(types(n.Elts[0]), "Err") {
						if s, err := strconv.Unquote(lit.Value); err == nil && isCode.MatchString(s) {
							codes[s] = true
						}
					}
				}
			case *ast.KeyValueExpr:
				// {"code": "…"} written by hand (orders' badRequest).
				k, ok1 := n.Key.(*ast.BasicLit)
				v, ok2 := n.Value.(*ast.BasicLit)
				if ok1 && ok2 && k.Value == `"code"` && v.Kind == token.STRING {
					if s, err := strconv.Unquote(v.Value); err == nil && isCode.MatchString(s) {
						codes[s] = true
					}
				}
			case *ast.BasicLit:
				// The CA's one error is written as a JSON literal.
				if s, err := strconv.Unquote(n.Value); err == nil && strings.HasPrefix(s, `{"error":"`) {
					code, _, _ := strings.Cut(strings.TrimPrefix(s, `{"error":"`), `"`)
					codes[code] = true
				}
			}
			return true
		})
	}
	if len(codes) < 20 {
		t.Fatalf("found only %d error codes in the source: %v", len(codes), codes)
	}
	return codes
}

// errorTable reads the one table of error codes in authsvc/README.md
// ("### Error codes": | `code` | status | where | meaning |), which
// authsvc/apierr's TestCodesAreDocumented keeps equal to the code's: code →
// its status ("—" for a page's only).
func errorTable(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "authsvc", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n### Error codes\n")
	if !ok {
		t.Fatal("authsvc/README.md has no \"### Error codes\" table")
	}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\| ([0-9]{3}|—) \\|")
	table := map[string]string{}
	inTable := false
	for _, line := range strings.Split(rest, "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			table[m[1]], inTable = m[2], true
		} else if inTable && !strings.HasPrefix(line, "|") {
			break
		}
	}
	if len(table) < 20 {
		t.Fatalf("authsvc/README.md: the Error codes table has only %d rows", len(table))
	}
	return table
}

// types names an expression: an identifier or a selector.
func types(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return types(e.X) + "." + e.Sel.Name
	}
	return ""
}

// callPath is a described path to call: {hash} becomes 64 zeros.
func callPath(p string) string { return strings.ReplaceAll(p, "{hash}", strings.Repeat("0", 64)) }

// TestOpenAPI checks authsvc/openapi.yaml against a running egate authsvc:
// it is served, parses and validates (kin-openapi); every route the code
// lists (AuthsvcRoutes, from txauth.Routes and authsvc.APIRoutes) is
// described with its security and scope, and nothing else is; every
// described operation answers something other than 404/405; the error
// codes of every operation are ones the code returns; and real calls,
// good and bad, answer what the description says (openapi3filter validates
// the request and the response against its schemas).
func TestOpenAPI(t *testing.T) {
	testenv.NeedCommand(t, "oathtool", "oathtool")
	a := startOpenAPIAuthsvc(t)
	base := a.Server.URL()
	doc := loadSpec(t, base)

	t.Run("every route is described", func(t *testing.T) {
		for _, r := range AuthsvcRoutes() {
			method, path, _ := strings.Cut(r.Pattern, " ")
			item := doc.Paths.Value(path)
			if item == nil || item.GetOperation(method) == nil {
				t.Errorf("%s: not in authsvc/openapi.yaml", r.Pattern)
				continue
			}
			op := item.GetOperation(method)
			var schemes []string
			if op.Security != nil {
				for _, req := range *op.Security {
					for s := range req {
						schemes = append(schemes, s)
					}
				}
			}
			if want := r.Auth; (want == "" && len(schemes) != 0) || (want != "" && !slices.Equal(schemes, []string{want})) {
				t.Errorf("%s: security %v, the code wants %q", r.Pattern, schemes, want)
			}
			if got := fmt.Sprint(op.Extensions["x-scope"]); r.Scope != "" && got != r.Scope {
				t.Errorf("%s: x-scope %s, the code wants %s", r.Pattern, got, r.Scope)
			}
		}
	})

	listed := map[string]bool{}
	for _, r := range AuthsvcRoutes() {
		listed[r.Pattern] = true
	}
	known := codesInSource(t)
	table := errorTable(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			pattern := method + " " + path
			t.Run("described "+pattern, func(t *testing.T) {
				if !listed[pattern] {
					t.Fatalf("described but not a route of the code (AuthsvcRoutes)")
				}
				codes := errorCodes(t, op)
				for status, rs := range op.Responses.Map() {
					n, err := strconv.Atoi(status)
					if err != nil {
						t.Fatalf("response %q: give the status", status)
					}
					isJSON := rs.Value.Content.Get("application/json") != nil
					if n >= 400 && isJSON && len(codes[status]) == 0 {
						t.Errorf("response %s has no x-error-codes", status)
					}
				}
				for status, cs := range codes {
					if op.Responses.Value(status) == nil {
						t.Errorf("x-error-codes %s: no such response", status)
					}
					for _, c := range cs {
						if !known[c] {
							t.Errorf("x-error-codes %s: %q is not a code the handlers return", status, c)
						}
						if want, ok := table[c]; !ok {
							t.Errorf("x-error-codes %s: %q is not in the Error codes table (authsvc/README.md)", status, c)
						} else if want != status {
							t.Errorf("x-error-codes %s: the Error codes table answers %q with %s", status, c, want)
						}
					}
				}
				// It answers: anonymous, with an empty object for a body.
				var body io.Reader
				if method != "GET" {
					body = strings.NewReader(`{}`)
				}
				req, _ := http.NewRequest(method, base+callPath(path), body)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var e struct{ Error struct{ Code string } }
				json.Unmarshal(b, &e)
				// A 404 is the handler's only when it names what was not
				// found (unknown_intent, unknown_order …), never the mux's.
				if resp.StatusCode == 405 || resp.StatusCode == 404 &&
					(e.Error.Code == "not_found" || !slices.Contains(codes["404"], e.Error.Code)) {
					t.Fatalf("answers %d %s", resp.StatusCode, b)
				}
				if op.Responses.Status(resp.StatusCode) == nil {
					t.Fatalf("answers %d, not a response described: %s", resp.StatusCode, b)
				}
				if resp.StatusCode >= 400 && e.Error.Code != "" {
					if !slices.Contains(codes[strconv.Itoa(resp.StatusCode)], e.Error.Code) {
						t.Fatalf("answers %d %s, not listed in x-error-codes", resp.StatusCode, e.Error.Code)
					}
				}
			})
		}
	}

	// Real calls, each validated against the description.
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	serial, seed := importHOTP(t, a.Factors.OTP)
	const intentJSON = `{"customer":"P1","channel":"app","kind":"payment","payer":"6222000000000001","payee":"MALL-0001","amount":12345,"currency":"CNY","device":"d1","client_ip":"192.0.2.1","idempotency_key":"oa-1"}`
	var hash string
	// A sealed intent, encrypted to the key GET /keys/encryption publishes.
	resp, err := http.Get(base + "/keys/encryption")
	if err != nil {
		t.Fatal(err)
	}
	var keys jose.JSONWebKeySet
	err = json.NewDecoder(resp.Body).Decode(&keys)
	resp.Body.Close()
	if err != nil || len(keys.Keys) != 1 {
		t.Fatalf("GET /keys/encryption: %d keys, %v", len(keys.Keys), err)
	}
	sealed, err := jwe.Seal(keys.Keys[0], []byte(strings.Replace(intentJSON, "oa-1", "oa-sealed", 1)))
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name, method, path, user, secret, bearer, body string
		ctype                                          string // of the body: application/json unless given
		status                                         int
		code                                           string // for an error
		invalidRequest                                 bool   // the description itself refuses the request
	}{
		{name: "live", method: "GET", path: "/healthz", status: 200},
		{name: "root CA", method: "GET", path: "/ca/root.pem", status: 200},
		{name: "password: anonymous", method: "POST", path: "/api/v1/password", body: `{"old_password":"a","new_password":"b"}`, status: 401, code: "unauthorized", invalidRequest: true},
		{name: "password: bad token", method: "POST", path: "/api/v1/password", bearer: "not-a-token", body: `{"old_password":"a","new_password":"b"}`, status: 401, code: "invalid_token"},
		{name: "alerts: anonymous", method: "GET", path: "/api/v1/alerts", status: 401, code: "unauthorized", invalidRequest: true},
		{name: "orders: nothing to open", method: "POST", path: "/v1/orders/open", body: `{}`, status: 400, code: "invalid_request"},
		{name: "orders: unknown order", method: "POST", path: "/v1/orders/open", body: `{"ref":"nope","autostart_token":"nope"}`, status: 404, code: "unknown_order"},
		{name: "phone: malformed", method: "POST", path: "/v1/phone/bind/start", body: `{`, status: 400, code: "invalid_request", invalidRequest: true},
		{name: "phone: unknown binding", method: "POST", path: "/v1/phone/bind/finish", body: `{"bind_id":"nope","sms_code":"123456","public_key":"AAAA","pin_salt":"AAAA","pin_key":"AAAA"}`, status: 404, code: "unknown_binding"},
		{name: "otp: anonymous", method: "POST", path: "/v1/otp/verify", body: `{"serial":"x","code":"1"}`, status: 401, code: "unauthorized", invalidRequest: true},
		{name: "otp: no scope", method: "POST", path: "/v1/otp/verify", user: "desk", secret: deskSecret, body: `{"serial":"x","code":"1"}`, status: 403, code: "insufficient_scope"},
		{name: "otp: malformed", method: "POST", path: "/v1/otp/verify", user: "core", secret: oaCoreSecret, body: `{"code":"1"}`, status: 400, code: "invalid_request"},
		{name: "otp: unknown token", method: "POST", path: "/v1/otp/verify", user: "core", secret: oaCoreSecret, body: `{"serial":"NOPE","code":"123456"}`, status: 404, code: "unknown_token"},
		{name: "otp: verify", method: "POST", path: "/v1/otp/verify", user: "core", secret: oaCoreSecret, body: `{"serial":"` + serial + `","code":"` + oathHOTP(t, seed, 0) + `"}`, status: 200},
		{name: "otp: replay", method: "POST", path: "/v1/otp/verify", user: "core", secret: oaCoreSecret, body: `{"serial":"` + serial + `","code":"` + oathHOTP(t, seed, 0) + `"}`, status: 409, code: "replay"},
		{name: "tx: anonymous", method: "POST", path: "/v1/tx/authorize", body: intentJSON, status: 401, code: "unauthorized", invalidRequest: true},
		{name: "tx: malformed", method: "POST", path: "/v1/tx/authorize", user: "platform", secret: oaPlatformSecret, body: `{`, status: 400, code: "bad_json", invalidRequest: true},
		{name: "tx: fractional amount", method: "POST", path: "/v1/tx/authorize", user: "platform", secret: oaPlatformSecret, body: strings.Replace(intentJSON, "12345", "123.45", 1), status: 400, code: "bad_amount", invalidRequest: true},
		{name: "tx: authorize", method: "POST", path: "/v1/tx/authorize", user: "platform", secret: oaPlatformSecret, body: intentJSON, status: 201},
		{name: "tx: not a JWE", method: "POST", path: "/v1/tx/authorize", user: "platform", secret: oaPlatformSecret, ctype: "application/jose", body: "not.a.jwe", status: 400, code: "jwe_malformed"},
		{name: "tx: authorize sealed", method: "POST", path: "/v1/tx/authorize", user: "platform", secret: oaPlatformSecret, ctype: "application/jose", body: sealed, status: 201},
		{name: "tx: authorize with a challenge", method: "POST", path: "/v1/tx/authorize", user: "platform", secret: oaPlatformSecret, body: strings.Replace(strings.Replace(intentJSON, "oa-1", "oa-ch", 1), `}`, `,"challenge":{"factor":"otp","client_ip":"192.0.2.1"}}`, 1), status: 201},
		{name: "tx: authorize with an unknown tool", method: "POST", path: "/v1/tx/authorize", user: "platform", secret: oaPlatformSecret, body: strings.Replace(strings.Replace(intentJSON, "oa-1", "oa-ch2", 1), `}`, `,"challenge":{"factor":"carrier-pigeon"}}`, 1), status: 201},
		{name: "tx: authorize with a malformed challenge", method: "POST", path: "/v1/tx/authorize", user: "platform", secret: oaPlatformSecret, body: strings.Replace(intentJSON, `}`, `,"challenge":{"tool":"otp"}}`, 1), status: 400, code: "invalid_request", invalidRequest: true},
		{name: "encryption key", method: "GET", path: "/keys/encryption", status: 200},
		{name: "tx: authorize again", method: "POST", path: "/v1/tx/authorize", user: "platform", secret: oaPlatformSecret, body: intentJSON, status: 200},
		{name: "tx: get", method: "GET", path: "/v1/tx/{hash}", user: "platform", secret: oaPlatformSecret, status: 200},
		{name: "tx: unknown intent", method: "GET", path: "/v1/tx/" + strings.Repeat("ab", 32), user: "platform", secret: oaPlatformSecret, status: 404, code: "unknown_intent"},
		{name: "tx: unknown factor", method: "POST", path: "/v1/tx/{hash}/challenge", user: "platform", secret: oaPlatformSecret, body: `{"factor":"carrier-pigeon"}`, status: 400, code: "unknown_factor"},
		{name: "tx: order without a browser binding", method: "POST", path: "/v1/tx/{hash}/order", user: "platform", secret: oaPlatformSecret, body: `{"factor":"ushield","browser":"nope"}`, status: 400, code: "invalid_request"},
		{name: "tx: collect an unknown order", method: "POST", path: "/v1/tx/{hash}/order/collect", user: "platform", secret: oaPlatformSecret, body: `{"ref":"nope","browser":"` + strings.Repeat("ab", 32) + `"}`, status: 404, code: "unknown_order"},
		{name: "tx: proof by an unknown order", method: "POST", path: "/v1/tx/{hash}/proof", user: "platform", secret: oaPlatformSecret, body: `{"order":"nope","browser":"` + strings.Repeat("ab", 32) + `"}`, status: 404, code: "unknown_order"},
		{name: "tx: unknown grant", method: "POST", path: "/v1/tx/execute", user: "platform", secret: oaPlatformSecret, body: `{"grant":"nope","intent":` + intentJSON + `}`, status: 401, code: "unknown_grant"},
		{name: "tx: cancel", method: "POST", path: "/v1/tx/{hash}/cancel", user: "platform", secret: oaPlatformSecret, body: `{"reason":"customer changed their mind"}`, status: 200},
		{name: "alerts: preferences without customer", method: "GET", path: "/v1/alerts/preferences", user: "platform", secret: oaPlatformSecret, status: 400, code: "invalid_request", invalidRequest: true},
		{name: "alerts: set preferences", method: "PUT", path: "/v1/alerts/preferences", user: "platform", secret: oaPlatformSecret, body: `{"customer":"P1","risk":true,"balance":true,"sms_min_amount":10000}`, status: 200},
		{name: "alerts: preferences", method: "GET", path: "/v1/alerts/preferences?customer=P1", user: "platform", secret: oaPlatformSecret, status: 200},
		{name: "alerts: balance", method: "POST", path: "/v1/alerts/balance", user: "platform", secret: oaPlatformSecret, body: `{"id":"m1","customer":"P1","account":"6222000000000001","amount":-12345,"balance":100000,"currency":"CNY"}`, status: 200},
		{name: "alerts: someone else's account", method: "POST", path: "/v1/alerts/balance", user: "platform", secret: oaPlatformSecret, body: `{"id":"m2","customer":"P1","account":"6222000000000009","amount":-1,"balance":1,"currency":"CNY"}`, status: 403, code: "payer_not_customers"},
	}
	// The calls run in order: the intent authorized is then read,
	// challenged and cancelled.
	for _, tc := range calls {
		t.Run("call "+tc.name, func(t *testing.T) {
			path := strings.ReplaceAll(tc.path, "{hash}", hash)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, base+path, body)
			ctype := tc.ctype
			if ctype == "" {
				ctype = "application/json"
			}
			if tc.body != "" {
				req.Header.Set("Content-Type", ctype)
			}
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.secret)
			}
			if tc.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("not described: %v", err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				// Only JSON bodies have a schema to check.
				Options: &openapi3filter.Options{AuthenticationFunc: authenticated, ExcludeRequestBody: ctype != "application/json"}}
			err = openapi3filter.ValidateRequest(context.Background(), in)
			if (err != nil) != tc.invalidRequest {
				t.Fatalf("the description judges the request: %v; want refused: %v", err, tc.invalidRequest)
			}
			if tc.body != "" {
				req.Body = io.NopCloser(strings.NewReader(tc.body)) // read by ValidateRequest
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e struct{ Error struct{ Code string } }
			json.Unmarshal(b, &e)
			if resp.StatusCode != tc.status || e.Error.Code != tc.code {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, b, tc.status, tc.code)
			}
			if tc.code != "" && !slices.Contains(errorCodes(t, route.Operation)[strconv.Itoa(tc.status)], tc.code) {
				t.Fatalf("%d %s is not in the operation's x-error-codes", tc.status, tc.code)
			}
			if tc.name == "tx: authorize" {
				var d struct{ Intent string }
				json.Unmarshal(b, &d)
				hash = d.Intent
			}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
				Body: io.NopCloser(bytes.NewReader(b)), Options: &openapi3filter.Options{IncludeResponseStatus: true,
					// Only JSON bodies have a schema; a PEM is checked for its content type.
					ExcludeResponseBody: !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json")}}
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Fatalf("the answer is not what the description says: %v\n%s", err, b)
			}
		})
	}
}

// authenticated lets openapi3filter pass a request that carries credentials
// of the scheme the operation takes; the server itself judges them.
func authenticated(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	scheme := in.SecurityScheme.Scheme // basic, bearer
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if !strings.HasPrefix(strings.ToLower(h), scheme+" ") {
		return fmt.Errorf("no %s credentials", scheme)
	}
	return nil
}
