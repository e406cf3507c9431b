package authsvc

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"go.yaml.in/yaml/v3"
)

// OpenAPI is the OpenAPI 3 description of authsvc's HTTP APIs
// (openapi.yaml). internal/app's TestOpenAPI checks it against a running
// authsvc: every route mounted is described, every path described answers,
// and the error codes listed are ones the code returns.
//
//go:embed openapi.yaml
var OpenAPI []byte

// OpenAPIHandler serves OpenAPI at GET /openapi.yaml and, converted once,
// at GET /openapi.json.
func OpenAPIHandler() (http.Handler, error) {
	var doc any
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		return nil, fmt.Errorf("authsvc/openapi.yaml: %w", err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("authsvc/openapi.yaml as JSON: %w", err)
	}
	serve := func(ctype string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "max-age=300")
			w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /openapi.yaml", serve("application/yaml", OpenAPI))
	mux.Handle("GET /openapi.json", serve("application/json", js))
	return mux, nil
}
