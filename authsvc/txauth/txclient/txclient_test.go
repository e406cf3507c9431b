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

// TestClientReusesConnections: a platform's calls in flight at once share
// a pool of kept-alive connections to egate, whether the Client has no
// HTTP client or one without a Transport (as internal/app builds them);
// Go's default transport kept 2 idle a host and opened a new connection
// for most calls of 16 goroutines.
func TestClientReusesConnections(t *testing.T) {
	for _, tc := range []struct {
		name string
		hc   *http.Client
	}{
		{"no HTTP client", nil},
		{"a client without a Transport", &http.Client{Timeout: 15 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opened atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if u, p, ok := r.BasicAuth(); !ok || u != "ebank" || p != "s3cret-for-the-test" {
					http.Error(w, "who", http.StatusUnauthorized)
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
			const workers, calls = 16, 50
			var wg sync.WaitGroup
			errs := make(chan error, workers*calls)
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range calls {
						if _, err := c.Get(context.Background(), "ab12"); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			// One a goroutine, and a few more: a call that finds no idle
			// connection dials one, and keeps the new one when another
			// comes free before the dial is done.
			if n := opened.Load(); n > 2*workers {
				t.Fatalf("%d connections opened for %d calls of %d goroutines; want at most %d", n, workers*calls, workers, 2*workers)
			}
		})
	}
}
