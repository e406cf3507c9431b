// Package app assembles egate's processes from the config: the HTTP
// servers of authsvc and the platforms, with health, readiness and metrics,
// used both by their own commands and by egate demo.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/egate-bank/egate/internal/config"
	"github.com/egate-bank/egate/internal/httpx"
	"github.com/egate-bank/egate/internal/store"
	"github.com/egate-bank/egate/platform"
)

// Server is an HTTP server with its listener, started by Serve.
type Server struct {
	errc     chan error
	Name     string
	Listener net.Listener
	HTTP     *http.Server
	Health   *httpx.Health
	Metrics  *httpx.Metrics
	Mux      *http.ServeMux
}

// NewServer listens on addr and prepares a mux with /healthz, /readyz and
// /metrics; the caller mounts the rest on Mux. /readyz names the checks
// that failed; why they failed goes to log with the request id.
func NewServer(name, addr string, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listening on %s: %w (choose another address in the config)", name, addr, err)
	}
	s := &Server{Name: name, Listener: ln, Health: httpx.NewHealth(), Metrics: httpx.NewMetrics(), Mux: http.NewServeMux()}
	s.Health.Log = log.With("server", name)
	ops := map[string]http.Handler{
		"GET /healthz": http.HandlerFunc(s.Health.Live),
		"GET /readyz":  http.HandlerFunc(s.Health.Ready),
		"GET /metrics": s.Metrics.Handler(),
	}
	for _, r := range opsRoutes {
		s.Mux.Handle(r.Pattern, ops[r.Pattern])
	}
	s.HTTP = &http.Server{Handler: httpx.Middleware(log.With("server", name), s.Metrics, s.Mux), ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// URL is the server's base URL as reached on its listener.
func (s *Server) URL() string { return "http://" + s.Listener.Addr().String() }

// Start begins serving in the background (a server another one needs at
// start, such as the passport the platforms discover). ServeAll waits for it.
func (s *Server) Start() {
	if s.errc != nil {
		return
	}
	s.errc = make(chan error, 1)
	go func() {
		if err := s.HTTP.Serve(s.Listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("%s: %w", s.Name, err)
		}
	}()
}

// ServeAll serves every server until ctx ends or one fails, then shuts them
// all down gracefully.
func ServeAll(ctx context.Context, servers ...*Server) error {
	errc := make(chan error, len(servers))
	for _, s := range servers {
		s.Start()
		go func(s *Server) {
			select {
			case err := <-s.errc:
				errc <- err
			case <-ctx.Done():
			}
		}(s)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		if e := s.HTTP.Shutdown(sctx); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// PlatformOptions are the choices a process makes beyond the config.
type PlatformOptions struct {
	// DB is the database the platform uses instead of opening its own
	// handle on cfg.Database; the platform leaves it open. A process that
	// runs the passport and the platforms together (egate demo) gives
	// them all the passport's handle: on SQLite each handle is a
	// connection of its own, and two connections on one file take turns
	// at its one write lock through SQLite's busy handler, which sleeps
	// (1, 2, 5, 10 ms …) while the other writes and rereads the pages the
	// other changed. One handle queues the writes instead.
	DB *store.DB
}

// Platform builds one platform's server from the config.
func Platform(ctx context.Context, cfg *config.Config, name string, log *slog.Logger, o PlatformOptions) (*Server, error) {
	pc, err := cfg.Platforms.ByName(name)
	if err != nil {
		return nil, err
	}
	s, err := NewServer(name, pc.Listen, log)
	if err != nil {
		return nil, err
	}
	public := pc.PublicURL
	if public == "" {
		public = s.URL()
	}
	others := map[string]string{}
	for _, n := range platform.Names {
		if n == name {
			continue
		}
		o, _ := cfg.Platforms.ByName(n)
		u := o.PublicURL
		if u == "" {
			u = "http://" + o.Listen
		}
		others[n] = u
	}
	sc := *pc // the section as the file gives it, and what the process knows
	sc.Name, sc.ClientID, sc.PublicURL, sc.Others = name, name, public, others
	sc.Issuer = strings.TrimRight(cfg.Platforms.Issuer, "/")
	site, err := platform.New(ctx, sc, nil)
	if err != nil {
		s.Listener.Close()
		return nil, fmt.Errorf("platforms.%s: %w", name, err)
	}
	s.Health.Add("passport", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(cfg.Platforms.Issuer, "/")+"/.well-known/openid-configuration", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("passport discovery answered %d", resp.StatusCode)
		}
		return nil
	})
	if name == "ebank" {
		l, db, err := mountEbank(ctx, cfg, s, log, o.DB)
		if err != nil {
			s.Listener.Close()
			return nil, err
		}
		ebankPages(cfg, pc, site, others, l, db, log)
	}
	if name == "mall" {
		if err := mountMall(ctx, cfg, pc, s, site, log, o.DB); err != nil {
			s.Listener.Close()
			return nil, err
		}
	}
	if name == "messenger" {
		if err := mountMessenger(ctx, cfg, pc, public, site, s, log, o.DB); err != nil {
			s.Listener.Close()
			return nil, err
		}
	}
	s.Mux.Handle("/", site)
	return s, nil
}
