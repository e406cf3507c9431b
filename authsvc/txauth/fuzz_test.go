package txauth

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/egate-bank/egate/authsvc/intent"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// open lets every request in (the fuzz target exercises the bodies).
type open struct{}

func (open) Require(_ string, h http.Handler) http.Handler { return h }

// FuzzRequestBodies: whatever body reaches authorize, proof, execute or
// cancel, the API answers 2xx or 4xx (never 5xx, never a panic), and an
// authorize body is accepted only when intent.Decode accepts it.
func FuzzRequestBodies(f *testing.F) {
	good := `{"customer":"P1","channel":"web","kind":"transfer","payer":"6222000000000001","payee":"6222000000000002","amount":100,"currency":"CNY","idempotency_key":"k"}`
	for _, s := range []string{good, `{}`, `{"amount":1.5}`, `{"grant":"x","intent":` + good + `}`, `{"challenge_id":"c","response":"1","intent":{"amount":-1}}`, `[`, `{"reason":"x"}`, `null`} {
		for p := range 4 {
			f.Add(uint8(p), s)
		}
	}
	db := storetest.SQLite(f)
	svc, err := New(Config{Accounts: []AccountConfig{{Customer: "P1", Account: "6222000000000001"}}}, Deps{DB: db})
	if err != nil {
		f.Fatal(err)
	}
	h := svc.Handler(open{})
	hash := strings.Repeat("ab", 32)
	paths := []string{"/v1/tx/authorize", "/v1/tx/" + hash + "/proof", "/v1/tx/execute", "/v1/tx/" + hash + "/cancel"}
	f.Fuzz(func(t *testing.T, p uint8, body string) {
		path := paths[int(p)%len(paths)]
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", path, body, w.Code, w.Body)
		}
		if path == paths[0] && w.Code < 300 {
			if _, err := intent.Decode(bytes.NewReader([]byte(body))); err != nil {
				t.Fatalf("accepted %q that intent.Decode refuses: %v", body, err)
			}
		}
	})
}
