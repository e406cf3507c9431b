// Package chromiumtest starts headless Chromium for browser tests
// (chromedp) and keeps their screenshots: a tab with a deadline on
// testenv.Chromium (the one place for the options every page test wants:
// no sandbox, no GPU, no background traffic, a fresh profile) and where the
// PNGs go (EGATE_SHOTS_DIR, else the test's
// temporary directory), so that a reviewer can look at each page.
package chromiumtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/egate-bank/egate/internal/testenv"
)

// New starts Chromium (a window of 1100×800) and returns a context for
// chromedp that ends after timeout or with the test. Chromium missing skips
// the test (fails it under EGATE_TEST_STRICT=1).
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(testenv.Chromium(t, 1100, 800), timeout)
	t.Cleanup(cancel)
	return ctx
}

// Dir is where screenshots go: EGATE_SHOTS_DIR, else the test's temporary
// directory.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EGATE_SHOTS_DIR")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Shot saves the whole page as dir/name.png.
func Shot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Do runs the actions of one step of a journey and fails the test, naming
// the step, if one fails.
func Do(t testing.TB, ctx context.Context, step string, acts ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, acts...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// Text is the visible text of the first element that the CSS selector
// matches, trimmed.
func Text(t testing.TB, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}
