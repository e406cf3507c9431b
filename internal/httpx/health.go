package httpx

import (
	"context"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check probes one dependency without side effects (a database ping, an HSM
// session probe). It must honour ctx.
type Check func(ctx context.Context) error

// Health serves /healthz (the process is up) and /readyz (every check passes
// within its deadline), answering JSON with each check's result: "ok" or
// "fail", nothing more (a check's error may name module paths, token
// labels, hosts). Why a check failed goes to Log with the request id.
type Health struct {
	mu     sync.Mutex
	checks map[string]Check
	// Log receives each failed check's error; nil discards it.
	Log *slog.Logger
}

// NewHealth returns an empty Health.
func NewHealth() *Health { return &Health{checks: map[string]Check{}} }

// Add registers a readiness check.
func (h *Health) Add(name string, c Check) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = c
}

// Live is the /healthz handler.
func (h *Health) Live(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// Ready is the /readyz handler.
func (h *Health) Ready(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	names := make([]string, 0, len(h.checks))
	for n := range h.checks {
		names = append(names, n)
	}
	checks := make(map[string]Check, len(h.checks))
	for n, c := range h.checks {
		checks[n] = c
	}
	h.mu.Unlock()
	sort.Strings(names)
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	res := map[string]string{}
	status := http.StatusOK
	for _, n := range names {
		if err := checks[n](ctx); err != nil {
			res[n] = "fail"
			status = http.StatusServiceUnavailable
			if h.Log != nil {
				h.Log.LogAttrs(r.Context(), slog.LevelWarn, "readiness check failed", slog.String("request_id", RequestID(r.Context())),
					slog.String("check", n), slog.String("err", err.Error()))
			}
		} else {
			res[n] = "ok"
		}
	}
	overall := "ready"
	if status != http.StatusOK {
		overall = "not ready"
	}
	WriteJSON(w, status, map[string]any{"status": overall, "checks": res})
}

// Metrics is a Prometheus registry with egate's HTTP metrics and the Go
// runtime's; components register their own collectors in Registry.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics makes the registry.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egate_http_requests_total", Help: "HTTP requests by method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "egate_http_request_duration_seconds", Help: "HTTP request latency.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

func (m *Metrics) observe(r *http.Request, status int, d time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	m.requests.WithLabelValues(r.Method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(r.Method).Observe(d.Seconds())
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
