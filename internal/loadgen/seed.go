package loadgen

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/egate-bank/egate/authsvc/oath"
	"github.com/egate-bank/egate/authsvc/passport"
	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
)

// Seed makes sure cs holds at least n load-test customers: it registers the
// missing ones with cs's password (a new random one when cs is new), gives
// each an HOTP token (SHA-1, 6 digits) imported through the OTP service,
// so its seed is wrapped by the HSM like any vendor's, and assigns it. The
// login names are load-TAG-NNNN with a random TAG per customers file, so a
// second file never collides with the first. tmpDir holds the PSKC file
// for the import (mode 0600) while it runs.
func Seed(ctx context.Context, ps *passport.Service, tokens *oath.Service, cs *Customers, n int, tmpDir string) (*Customers, error) {
	if cs == nil {
		cs = &Customers{Password: "Load-" + randomHex(8) + "-Kite"}
	}
	if len(cs.List) >= n {
		return cs, nil
	}
	tag := randomHex(3)
	var fresh []Customer
	for i := len(cs.List); i < n; i++ {
		seed := make([]byte, 20)
		rand.Read(seed)
		name := fmt.Sprintf("load-%s-%04d", tag, i)
		fresh = append(fresh, Customer{Login: name, Serial: fmt.Sprintf("LOAD%s%04d", tag, i), Seed: seed})
	}
	tmp, err := os.CreateTemp(tmpDir, "load-tokens-*.pskc")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	w, err := pskc.NewWriter(tmp, pskc.WriterOptions{})
	for i := 0; err == nil && i < len(fresh); i++ {
		err = w.Add(&pskc.Key{ID: "1", Serial: fresh[i].Serial, Manufacturer: "egate load",
			Params: otp.Params{Kind: otp.KindHOTP, Hash: crypto.SHA1, Digits: 6}, Secret: append([]byte(nil), fresh[i].Seed...)})
	}
	if err == nil {
		err = w.Close()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("loadgen: writing the load-test tokens: %w", err)
	}
	path := filepath.Clean(tmp.Name())
	if _, err := tokens.ImportPSKC(ctx, func() (io.ReadCloser, error) { return os.Open(path) }, oath.ImportOptions{}); err != nil {
		return nil, fmt.Errorf("loadgen: importing the load-test tokens: %w", err)
	}
	for i := range fresh {
		cu, err := ps.Register(ctx, passport.NewCustomer{LoginName: fresh[i].Login, Mobile: fmt.Sprintf("1390000%04d", i%10000),
			ReservedMessage: "load test", Password: cs.Password})
		if err != nil {
			return cs, fmt.Errorf("loadgen: registering %s: %w", fresh[i].Login, err)
		}
		fresh[i].PassportID = cu.PassportID
		if err := tokens.Assign(ctx, fresh[i].Serial, "", cu.PassportID); err != nil {
			return cs, fmt.Errorf("loadgen: assigning token %s: %w", fresh[i].Serial, err)
		}
		cs.mu.Lock()
		cs.List = append(cs.List, fresh[i])
		cs.mu.Unlock()
	}
	return cs, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// CheckDatabase refuses to seed a PostgreSQL database that is not on this
// machine's loopback (or a Unix socket): load-test customers belong in a
// demo's or a test's database, never in a bank's. A SQLite file is local.
func CheckDatabase(driver, dsn string) error {
	if driver != "postgres" {
		return nil
	}
	host := ""
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		host = u.Hostname()
		if host == "" {
			host = u.Query().Get("host")
		}
	} else {
		for _, kv := range strings.Fields(dsn) {
			if k, v, ok := strings.Cut(kv, "="); ok && k == "host" {
				host = strings.Trim(v, `'`)
			}
		}
	}
	if host == "" || strings.HasPrefix(host, "/") || loopbackHost(host) {
		return nil
	}
	return fmt.Errorf("%w: the database is on %q; egate load seed writes test customers only into a database on this machine", ErrNotLoopback, host)
}
