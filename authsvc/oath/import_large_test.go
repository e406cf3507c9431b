package oath

import (
	"context"
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/egate-bank/egate/devices/otp"
	"github.com/egate-bank/egate/devices/otp/pskc"
	"github.com/egate-bank/egate/internal/store/storetest"
)

// TestImportLarge imports a generated, encrypted PSKC file into SQLite and
// checks that the heap stays bounded: the file is streamed twice, never held.
// 5,000 tokens by default (fast enough under -race); EGATE_TEST_LARGE=1 runs
// the 100,000 (make test runs that without -race).
func TestImportLarge(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 2000
	}
	if os.Getenv("EGATE_TEST_LARGE") == "1" {
		n = 100000
	}
	ctx := context.Background()
	key := []byte("0123456789abcdef")
	path := filepath.Join(t.TempDir(), "bulk.pskc")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pskc.NewWriter(f, pskc.WriterOptions{Key: key, KeyName: "vendor-transport"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		k := &pskc.Key{ID: "1", Serial: fmt.Sprintf("SN%08d", i), Manufacturer: "Acme", Secret: []byte(fmt.Sprintf("seed-%015d", i))}
		switch i % 4 {
		case 0, 1:
			k.Params = otp.Params{Kind: otp.KindHOTP, Hash: crypto.SHA1, Digits: 6}
		case 2:
			k.Params = otp.Params{Kind: otp.KindTOTP, Hash: crypto.SHA256, Digits: 8, Period: 30 * time.Second}
		case 3:
			k.Params = otp.Params{Kind: otp.KindOCRA, Suite: "OCRA-1:HOTP-SHA256-8:QN16-T1M", Hash: crypto.SHA256, Digits: 8}
		}
		if err := w.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, _ := os.Stat(path)

	db := storetest.SQLite(t)
	svc := New(db, newFakeHSM(), Config{}, nil)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	calls := 0
	sample := func(Progress) {
		calls++
		if calls%8 != 0 {
			return
		}
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	start := time.Now()
	sum, err := svc.ImportPSKC(ctx, opener(path), ImportOptions{PSKC: pskc.Options{Key: key}, Size: st.Size(), Progress: sample})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != n || sum.ByAlgorithm["hotp/SHA1/6"] != n/2 || sum.ByAlgorithm["ocra/OCRA-1:HOTP-SHA256-8:QN16-T1M"] != n/4 {
		t.Fatalf("summary %+v", sum)
	}
	var stored int
	db.QueryRow(ctx, `SELECT COUNT(*) FROM otp_tokens`).Scan(&stored)
	if stored != n {
		t.Fatalf("%d tokens stored, want %d", stored, n)
	}
	growth := int64(peak) - int64(base)
	t.Logf("%d tokens (%d MiB file) in %v; heap growth at most %d KiB", n, st.Size()>>20, time.Since(start).Round(time.Millisecond), growth>>10)
	if growth > 64<<20 {
		t.Fatalf("heap grew by %d MiB importing %d tokens; want < 64 MiB", growth>>20, n)
	}
}
