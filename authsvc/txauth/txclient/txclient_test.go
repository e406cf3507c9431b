package txclient

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestClientReusesConnections: a platform's calls in flight at once keep
// their connections to egate for the next burst, whether the Client has no
// HTTP client or one without a Transport (as internal/app builds them). The
// server holds each call until all of a burst are in, so each burst needs
// that many connections at once; the second burst must open none. Go's
// default transport keeps 2 idle a host and opened 14 again.
func TestClientReusesConnections(t *testing.T) {
	for _, tc := range []struct {
		name string
		hc   *http.Client
	}{
		{"no HTTP client", nil},
		{"a client without a Transport", &http.Client{Timeout: 15 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const burst = 16
			var opened atomic.Int64
			var mu sync.Mutex
			in, all := 0, make(chan struct{})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if u, p, ok := r.BasicAuth(); !ok || u != "ebank" || p != "s3cret-for-the-test" {
					http.Error(w, "who", http.StatusUnauthorized)
					return
				}
				mu.Lock()
				if in++; in == burst {
					close(all)
				}
				wait := all
				mu.Unlock()
				select {
				case <-wait:
				case <-time.After(10 * time.Second):
					http.Error(w, "the burst never filled", http.StatusGatewayTimeout)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"intent":"` + strings.TrimPrefix(r.URL.Path, "/v1/tx/") + `","state":"allowed"}`))
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					opened.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			c := &Client{BaseURL: srv.URL, ID: "ebank", Secret: "s3cret-for-the-test", HTTP: tc.hc}
			for round := range 2 {
				mu.Lock()
				in, all = 0, make(chan struct{})
				mu.Unlock()
				before := opened.Load()
				var wg sync.WaitGroup
				errs := make([]error, burst)
				for i := range burst {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, errs[i] = c.Get(context.Background(), "ab12")
					}()
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						t.Fatalf("burst %d: %v", round, err)
					}
				}
				if n := opened.Load() - before; round == 1 && n != 0 {
					t.Fatalf("the second burst of %d calls opened %d new connections; want 0 (the first burst's kept)", burst, n)
				}
			}
		})
	}
}
