// Package pivtest inserts simulated PIV cards into the vpcd readers of a
// running pcscd, for tests of code that reaches PIV tokens through PC/SC.
//
// vpcd offers a fixed number of readers (two with Debian's configuration,
// on TCP ports 35963 and 35964). Test binaries of several packages run at
// the same time, so a reader is taken with an exclusive flock on a file in
// the temporary directory and held until the test ends; a test that finds
// every reader taken waits for one.
package pivtest

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/egate-bank/egate/internal/testenv"
	"github.com/egate-bank/egate/simulators/pivcard"
)

// Ports are the vpcd reader ports of Debian's default configuration, and
// Readers the PC/SC reader names pcscd gives them.
var (
	Ports   = []int{35963, 35964}
	Readers = []string{"Virtual PCD 00 00", "Virtual PCD 00 01"}
)

const socket = "/run/pcscd/pcscd.comm"

// NeedPCSC makes sure pcscd with the vpcd driver is running, starting it
// with scripts/pcscd.sh when it is not; otherwise the test is skipped (or
// fails under EGATE_TEST_STRICT=1).
func NeedPCSC(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/usr/lib/pcsc/drivers/serial/libifdvpcd.so"); err != nil {
		testenv.Missing(t, "vpcd (virtual smart card reader)", "apt-get install pcscd vsmartcard-vpcd libpcsclite-dev")
	}
	if _, err := os.Stat(socket); err == nil {
		return
	}
	if script := findScript(); script != "" {
		out, err := exec.Command("sh", script).CombinedOutput()
		if err == nil {
			return
		}
		testenv.Missing(t, "pcscd", "scripts/pcscd.sh failed: "+string(out))
	}
	testenv.Missing(t, "pcscd", "run scripts/pcscd.sh (as root) to start it")
}

func findScript() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, "scripts", "pcscd.sh")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Vendor makes a vendor root for the test's cards.
func Vendor(t testing.TB) *pivcard.Vendor {
	t.Helper()
	v, err := pivcard.NewVendor(rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// NewCard makes a card with its state in a temporary directory.
func NewCard(t testing.TB, v *pivcard.Vendor) *pivcard.Card {
	t.Helper()
	c, err := pivcard.Open(pivcard.Config{Path: filepath.Join(t.TempDir(), "card.json"), Vendor: v})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Slot is a vpcd reader held by a test.
type Slot struct {
	Port   int
	Reader string
	lock   *os.File
}

// TakeReader locks a free vpcd reader for the rest of the test.
func TakeReader(t testing.TB) Slot {
	t.Helper()
	for blocking := false; ; blocking = true {
		for i, port := range Ports {
			f, err := os.OpenFile(filepath.Join(os.TempDir(), "egate-vpcd-"+strconv.Itoa(port)+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
			if err != nil {
				t.Fatal(err)
			}
			how := syscall.LOCK_EX | syscall.LOCK_NB
			if blocking {
				how = syscall.LOCK_EX
			}
			if err := syscall.Flock(int(f.Fd()), how); err != nil {
				f.Close()
				continue
			}
			t.Cleanup(func() { f.Close() })
			return Slot{Port: port, Reader: Readers[i], lock: f}
		}
	}
}

// Inserted is a card in a reader; Remove takes it out.
type Inserted struct {
	Slot
	Card   *pivcard.Card
	cancel context.CancelFunc
	done   chan struct{} // closed when Serve has returned
	err    error         // what Serve returned
}

// Remove pulls the card out of the reader and waits for the link to close.
func (in *Inserted) Remove() {
	in.cancel()
	<-in.done
}

// Insert puts card into the reader of slot and waits until pcscd has
// powered it. The card is removed when the test ends.
func Insert(t testing.TB, s Slot, card *pivcard.Card) *Inserted {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &Inserted{Slot: s, Card: card, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(in.done)
		// vpcd listens again only some time after the previous card of
		// this reader disconnected (pcscd's polling of the reader); under
		// load a test can come first, and is refused: dial again for a
		// while rather than fail.
		deadline := time.Now().Add(10 * time.Second)
		for {
			in.err = pivcard.Serve(ctx, pivcard.Addr(s.Port), card)
			if !errors.Is(in.err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-in.done
	})
	select {
	case <-card.Powered():
		return in
	case <-in.done:
		t.Fatalf("inserting the card into %s: %v", s.Reader, in.err)
	case <-time.After(15 * time.Second):
		t.Fatalf("pcscd did not power the card in %s within 15s", s.Reader)
	}
	return nil
}

// ErrTimeout is returned by Until when the condition never held.
var ErrTimeout = errors.New("timed out")

// Until calls f every 50ms until it returns nil or d has passed: pcscd
// publishes a card's arrival on its own polling schedule, which no channel
// reports.
func Until(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	err := f()
	for err != nil {
		if time.Now().After(deadline) {
			return errors.Join(ErrTimeout, err)
		}
		<-tick.C
		err = f()
	}
	return nil
}
