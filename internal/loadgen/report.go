package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Report is a whole run: each scenario's result, what was sent and what
// the server's /metrics counted meanwhile.
type Report struct {
	Results    []*Result
	Sent, Seen []Counts
	Mismatches []string
}

// ErrCheck reports a run whose error rate was above the limit or whose
// counts /metrics disagreed with.
var ErrCheck = errors.New("loadgen: the run failed its checks")

// RunAll runs the scenarios one after the other (so that each one's
// /metrics delta is its own), printing each one's result to out, and
// returns ErrCheck when a scenario's error rate is above maxErrorRate or
// the server's egate_http_requests_total moved by other counts than the
// requests sent (plus the first scrape of /metrics itself).
func RunAll(ctx context.Context, out io.Writer, t *Target, scenarios []string, l Limits, maxErrorRate float64) (*Report, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if len(t.Customers.List) < l.Concurrency {
		return nil, fmt.Errorf("%w: %d customers, --concurrency %d", ErrTooFewCustomers, len(t.Customers.List), l.Concurrency)
	}
	for _, sc := range scenarios {
		if !slices.Contains(Scenarios, sc) {
			return nil, fmt.Errorf("loadgen: unknown scenario %q (scenarios: %s)", sc, strings.Join(Scenarios, ", "))
		}
	}
	metricsURL := t.abs("/metrics")
	rep := &Report{}
	var failed []string
	fmt.Fprintf(out, "egate load: %s, %d workers, at most %d operations or %s per scenario\n", t.Base, l.Concurrency, l.Requests, l.Duration)
	// One scrape between two scenarios, the after of one and the before of
	// the next: a scrape is counted by the server after it answered, so a
	// second scrape right after it could miss it.
	sentBefore := t.Tally.Counts()
	before, err := Scrape(ctx, t.Client, metricsURL)
	if err != nil {
		return nil, err
	}
	for _, sc := range scenarios {
		var op Op
		switch sc {
		case "login":
			op = t.Login
		case "refresh":
			op = t.Refresh
			// Each worker needs a refresh token: a login for those without
			// one (its requests are in this scenario's "sent").
			for w := range l.Concurrency {
				if !t.HasRefreshToken(w) {
					if err := t.Login(ctx, w); err != nil {
						return rep, fmt.Errorf("loadgen: the login before the refreshes failed: %w", err)
					}
				}
			}
		case "otp":
			op = t.VerifyOTP
		default:
			return rep, fmt.Errorf("loadgen: unknown scenario %q (scenarios: %s)", sc, strings.Join(Scenarios, ", "))
		}
		res := Run(ctx, sc, l, op)
		sentAfter := t.Tally.Counts()
		after, err := Scrape(ctx, t.Client, metricsURL)
		if err != nil {
			return rep, err
		}
		sent := Delta(sentBefore, sentAfter)
		sent["GET 200"]++ // the scrape before the run, counted by the server after it answered
		seen := Delta(before, after)
		sentBefore, before = sentAfter, after
		rep.Results = append(rep.Results, res)
		rep.Sent, rep.Seen = append(rep.Sent, sent), append(rep.Seen, seen)

		fmt.Fprintln(out, res.Summary())
		for _, k := range res.FailureKeys() {
			fmt.Fprintf(out, "           error %-40s %d\n", k, res.Failures[k])
		}
		fmt.Fprintf(out, "           sent     %s (with the scrape of /metrics before the run)\n", sent)
		fmt.Fprintf(out, "           /metrics %s (egate_http_requests_total delta)\n", seen)
		mm := Mismatch(sent, seen)
		for _, m := range mm {
			rep.Mismatches = append(rep.Mismatches, sc+": "+m)
			fmt.Fprintf(out, "           MISMATCH %s\n", m)
		}
		if len(mm) > 0 {
			failed = append(failed, sc+": /metrics disagrees")
		}
		if res.Done == 0 {
			failed = append(failed, sc+": no operation finished")
		} else if rate := float64(res.Errors()) / float64(res.Done); rate > maxErrorRate {
			failed = append(failed, fmt.Sprintf("%s: error rate %.2f%% above %.2f%%", sc, 100*rate, 100*maxErrorRate))
		}
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("%w: %s", ErrCheck, strings.Join(failed, "; "))
	}
	fmt.Fprintln(out, "egate load: every scenario within its error limit, and /metrics counted what was sent")
	return rep, nil
}
