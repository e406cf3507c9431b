package messenger

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/store/storetest"
)

// BenchmarkDelivery: chat messages delivered per second to 1,000 clients
// connected to one process (server-sent event streams over loopback HTTP,
// one conversation of 1,001 members, SQLite). Each op is one message
// posted through the Service (stored, sequenced, published) and received
// by all 1,000 streams, rendered per client in its language; reports
// deliveries/s (messages × clients) and messages/s.
func BenchmarkDelivery(b *testing.B) {
	const clients = 1000
	r := newRig(b, storetest.SQLite(b))
	r.pages.OnError = nil
	ctx := context.Background()
	members := make([]string, clients)
	for i := range members {
		members[i] = fmt.Sprintf("p-u%04d", i)
	}
	conv, err := r.svc.Store.NewGroup(ctx, r.ids["alice"], "bench", members)
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}
	hc := &http.Client{Transport: tr}
	cctx, cancel := context.WithCancel(ctx)
	var got atomic.Int64
	var want atomic.Int64
	done := make(chan struct{}, 1)
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	for i := range clients {
		req, _ := http.NewRequestWithContext(cctx, "GET", r.srv.URL+"/chats/"+conv+"/events", nil)
		req.AddCookie(&http.Cookie{Name: "test_who", Value: fmt.Sprintf("u%04d", i)})
		if i%2 == 1 {
			req.Header.Set("Accept-Language", "en")
		}
		ready.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := hc.Do(req)
			if err != nil || resp.StatusCode != 200 {
				ready.Done()
				if cctx.Err() == nil {
					b.Errorf("stream: %v %v", err, resp)
				}
				return
			}
			defer resp.Body.Close()
			rd := bufio.NewReader(resp.Body)
			rd.ReadString('\n') // retry:
			ready.Done()
			for {
				line, err := rd.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(line, "event: message") {
					if n := got.Add(1); n == want.Load() {
						done <- struct{}{}
					}
				}
			}
		}()
	}
	ready.Wait()
	if n := r.svc.Hub.Subscribers(conv); n != clients { // a stream subscribes before its first line
		b.Fatalf("%d streams subscribed", n)
	}
	b.ResetTimer()
	want.Store(int64(b.N) * clients)
	start := time.Now()
	for i := range b.N {
		if _, err := r.svc.Send(ctx, conv, r.ids["alice"], fmt.Sprintf("message %d", i)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("delivered %d of %d", got.Load(), want.Load())
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)*clients/el.Seconds(), "deliveries/s")
	b.ReportMetric(float64(b.N)/el.Seconds(), "messages/s")
	cancel()
	wg.Wait()
}
