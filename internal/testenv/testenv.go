// Package testenv tells tests which real stacks (SoftHSM2, PostgreSQL, pcscd
// with the virtual reader, Chromium, reference tools) are present. A test that
// needs a missing stack is skipped with a message saying what to install,
// except under EGATE_TEST_STRICT=1 (set by make test), where it fails: make
// test installs and starts every stack, so a skip there would hide a gap.
package testenv

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// Strict reports whether missing stacks fail tests instead of skipping them.
func Strict() bool { return os.Getenv("EGATE_TEST_STRICT") == "1" }

// Missing skips or fails t because what is missing, with how to get it.
func Missing(t testing.TB, what, how string) {
	t.Helper()
	if Strict() {
		t.Fatalf("%s is missing (EGATE_TEST_STRICT=1): %s", what, how)
	}
	t.Skipf("%s is missing: %s (make test installs it)", what, how)
}

// NeedCommand makes sure a program is on PATH and returns its path.
func NeedCommand(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, "apt-get install "+debianPackage)
	}
	return p
}

// NeedEnv returns the value of an environment variable that the test harness
// (scripts/testenv.sh) sets when it starts a service.
func NeedEnv(t testing.TB, name, what string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, what, name+" is not set; run the tests through make test, which starts it")
	}
	return v
}

// ReportCPU starts counting the process's CPU time (user and system, all
// threads); the func it returns reports it per op of b as cpu-ns/op. A
// loaded machine disturbs it less than the wall clock.
func ReportCPU(b *testing.B) func() {
	start := CPUTime()
	return func() {
		if start > 0 && b.N > 0 {
			b.ReportMetric(float64(CPUTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// CPUTime is the process's CPU time so far in nanoseconds (user and
// system, all threads), 0 if it cannot be read.
func CPUTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
