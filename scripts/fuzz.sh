#!/usr/bin/env bash
# Runs every Fuzz target in the module for the given time each (default 30s).
# A failure that left a new crasher in testdata/fuzz/<Target>/ is a finding
# and fails at once. Go 1.26's fuzz coordinator sometimes fails a run at the
# very end of -fuzztime with a bare "context deadline exceeded" and no input
# (its own cancellation race, golang/go#75804, fixed in Go 1.27): the target
# ran its whole time and no input failed, so that run counts as done, and says
# so. Any other failure without a crasher (a worker that died) is tried again,
# up to three times, before it counts.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-30s}"
count() { if [ -d "$1" ]; then ls "$1" | wc -l; else echo 0; fi; }
# deadline_race: the only thing the failed run reports is the coordinator's
# "context deadline exceeded" under "--- FAIL: Fuzz…", with no failing input.
deadline_race() {
  grep -q 'Failing input\|panic:\|fuzzing process hung\|terminated unexpectedly' "$1" && return 1
  [ "$(grep -A1 -- '^--- FAIL: Fuzz' "$1" | sed -n 2p)" = "    context deadline exceeded" ]
}
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    corpus="$dir/testdata/fuzz/$f"
    for try in 1 2 3; do
      before=$(count "$corpus")
      echo "== $pkg $f ($t)"
      if go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" > /tmp/egate-fuzz.$$ 2>&1; then
        grep -v '^fuzz: elapsed' /tmp/egate-fuzz.$$ || true
        break
      fi
      cat /tmp/egate-fuzz.$$
      if [ "$(count "$corpus")" = "$before" ] && deadline_race /tmp/egate-fuzz.$$; then
        echo "fuzz.sh: $f ran its $t; the coordinator then reported its own deadline (golang/go#75804), no input failed" >&2
        break
      fi
      if [ "$(count "$corpus")" != "$before" ] || [ "$try" = 3 ]; then
        echo "fuzz.sh: $pkg $f failed (a new input in $corpus is the reproducer)" >&2
        rm -f /tmp/egate-fuzz.$$
        exit 1
      fi
      echo "fuzz.sh: $f failed without a reproducer; trying again" >&2
    done
  done
done
rm -f /tmp/egate-fuzz.$$
