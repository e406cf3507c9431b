package testenv

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium starts a headless Chromium for t (stopped at its cleanup) with a
// window of width × height and returns its first tab's context; more
// tabs, or browser contexts with cookies of their own
// (chromedp.WithNewBrowserContext), are made from it.
func Chromium(t testing.TB, width, height int) context.Context {
	t.Helper()
	path := NeedCommand(t, "chromium", "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(width, height),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}
