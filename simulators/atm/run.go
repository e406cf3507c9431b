package simatm

import (
	"context"
	"errors"
	"io"
	"os"
)

// Running is a simulator serving a line in the background.
type Running struct {
	Sim     *Sim
	PTY     *PTY // nil when serving a given port
	TTYName string
	done    chan error
	cancel  context.CancelFunc
}

// StartPTY creates a simulator from cfg and serves it on a new pseudo-terminal
// pair. The host opens r.TTYName.
func StartPTY(ctx context.Context, cfg Config) (*Running, error) {
	p, err := OpenPTY()
	if err != nil {
		return nil, err
	}
	r, err := Start(ctx, cfg, p.Master)
	if err != nil {
		p.Close()
		return nil, err
	}
	r.PTY, r.TTYName = p, p.TTYName
	return r, nil
}

// Start creates a simulator from cfg and serves it on rwc.
func Start(ctx context.Context, cfg Config, rwc io.ReadWriteCloser) (*Running, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Running{Sim: s, done: make(chan error, 1), cancel: cancel}
	go func() { r.done <- s.Serve(ctx, rwc) }()
	return r, nil
}

// Stop stops serving, closes the line and the journal, and returns Serve's error.
func (r *Running) Stop() error {
	r.cancel()
	err := <-r.done
	r.Sim.Close()
	if r.PTY != nil {
		r.PTY.Keeper.Close()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, os.ErrClosed) {
		return nil
	}
	return nil
}
