package app

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A platform's client to the passport and ebank keeps its connections
// when more than two calls are in flight at once: two rounds of 8
// concurrent calls open 8 connections, where http.DefaultClient (2 idle
// per host) closes 6 after the first round and dials 6 more.
func TestServiceClientKeepsConnections(t *testing.T) {
	t.Parallel()
	const calls = 8
	for _, tc := range []struct {
		name  string
		c     *http.Client
		conns int64
	}{
		{"the platforms' client", serviceClient(15 * time.Second), calls},
		{"http's default client", &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}, 2*calls - 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opened atomic.Int64
			var arrived sync.WaitGroup
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Every call of the round waits for the others: all 8 are
				// in flight at once, each on a connection of its own.
				arrived.Done()
				arrived.Wait()
				io.WriteString(w, "{}")
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					opened.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			defer tc.c.CloseIdleConnections()
			for range 2 {
				arrived.Add(calls)
				var done sync.WaitGroup
				for range calls {
					done.Go(func() {
						resp, err := tc.c.Get(srv.URL)
						if err != nil {
							t.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					})
				}
				done.Wait()
			}
			if got := opened.Load(); got != tc.conns {
				t.Fatalf("%d connections opened for two rounds of %d calls, want %d", got, calls, tc.conns)
			}
		})
	}
}
