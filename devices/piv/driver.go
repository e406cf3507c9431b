package piv

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"sync"

	gopiv "github.com/go-piv/piv-go/v2/piv"
)

// Config configures a Driver.
type Config struct {
	// VendorRoots are the attestation roots Enroll trusts (Yubico's, or
	// the simulator's vendor root in tests). Required for Enroll.
	VendorRoots *x509.CertPool
	// ManagementKey authenticates key generation and certificate writes;
	// nil means the factory default. Never logged.
	ManagementKey []byte
}

// Driver opens PIV cards. It is safe for concurrent use.
type Driver struct {
	cfg  Config
	mu   sync.Mutex
	open map[string]bool
}

// New returns a driver.
func New(cfg Config) *Driver {
	if cfg.ManagementKey == nil {
		cfg.ManagementKey = gopiv.DefaultManagementKey
	}
	return &Driver{cfg: cfg, open: map[string]bool{}}
}

// Cards lists the PC/SC readers.
func (d *Driver) Cards(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cards, err := gopiv.Cards()
	if err != nil {
		return nil, fmt.Errorf("listing PIV cards: %w", err)
	}
	return cards, nil
}

// Open takes ownership of the card in the named reader until Close.
func (d *Driver) Open(ctx context.Context, name string) (*Card, error) {
	cards, err := d.Cards(ctx)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(cards, name) {
		return nil, fmt.Errorf("opening PIV card %q: no such reader: %w", name, ErrNoCard)
	}
	d.mu.Lock()
	if d.open[name] {
		d.mu.Unlock()
		return nil, fmt.Errorf("opening PIV card %q: %w", name, ErrInUse)
	}
	d.open[name] = true
	d.mu.Unlock()
	yk, err := gopiv.Open(name)
	if err != nil {
		d.release(name)
		return nil, fmt.Errorf("opening PIV card %q: %w (%v)", name, ErrNoCard, err)
	}
	serial, err := yk.Serial()
	if err != nil {
		yk.Close()
		d.release(name)
		return nil, fmt.Errorf("reading serial of PIV card %q: %w", name, err)
	}
	return &Card{d: d, name: name, yk: yk, serial: serial}, nil
}

func (d *Driver) release(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.open, name)
}
