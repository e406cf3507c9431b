package atmtest

import (
	"io"
	"net"
	"sync"
	"testing"
)

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// Proxy forwards TCP connections to the gateway and can cut them all, or
// freeze them (stop forwarding, close nothing: a link that dies silently).
type Proxy struct {
	Addr   string
	mu     sync.Mutex
	conns  []net.Conn
	frozen chan struct{} // closed by Freeze for the connections made before
}

// NewProxy listens on a loopback port and forwards to target until t ends.
func NewProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	ln, err := listen()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), frozen: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			frozen := p.frozen
			p.mu.Unlock()
			go func() { copyUntil(u, c, frozen); u.Close() }()
			go func() { copyUntil(c, u, frozen); c.Close() }()
		}
	}()
	return p
}

// Freeze stops forwarding on the current connections without closing
// them; new connections are forwarded.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.frozen)
	p.frozen = make(chan struct{})
}

// copyUntil copies src to dst until either fails or frozen is closed; after
// that it reads and drops what src sends.
func copyUntil(dst io.Writer, src io.Reader, frozen <-chan struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-frozen:
			if err != nil {
				return
			}
			continue
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Cut closes every connection through the proxy; it returns how many
// agent connections it cut.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns) / 2
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	return n
}
