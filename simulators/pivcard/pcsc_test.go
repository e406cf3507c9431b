package pivcard_test

import (
	"testing"
	"time"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/egate-bank/egate/simulators/pivcard"
	"github.com/egate-bank/egate/simulators/pivcard/pivtest"
)

// openPIV inserts a fresh card into a free vpcd reader and opens it with
// piv-go through pcscd.
func openPIV(t *testing.T) (*piv.YubiKey, *pivtest.Inserted, *pivcard.Vendor) {
	t.Helper()
	pivtest.NeedPCSC(t)
	v := pivtest.Vendor(t)
	in := pivtest.Insert(t, pivtest.TakeReader(t), pivtest.NewCard(t, v))
	var yk *piv.YubiKey
	if err := pivtest.Until(10*time.Second, func() (err error) {
		yk, err = piv.Open(in.Reader)
		return err
	}); err != nil {
		t.Fatalf("opening %s with piv-go: %v", in.Reader, err)
	}
	t.Cleanup(func() { yk.Close() })
	return yk, in, v
}

func TestPIVGoOpen(t *testing.T) {
	yk, in, _ := openPIV(t)
	if got, want := yk.Version(), (piv.Version{Major: 5, Minor: 7, Patch: 1}); got != want {
		t.Errorf("Version() = %v, want %v", got, want)
	}
	serial, err := yk.Serial()
	if err != nil {
		t.Fatalf("Serial(): %v", err)
	}
	if serial != in.Card.Serial() {
		t.Errorf("Serial() = %d, want %d", serial, in.Card.Serial())
	}
	cards, err := piv.Cards()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cards {
		found = found || c == in.Reader
	}
	if !found {
		t.Errorf("piv.Cards() = %q, missing %q", cards, in.Reader)
	}
}
