#!/usr/bin/env bash
# Runs every Fuzz target in the module for the given time each (default 30s).
# A failure that left a new crasher in testdata/fuzz/<Target>/ is a finding
# and fails at once; a failure without one (the fuzzing engine itself
# stumbling on a loaded machine, e.g. a worker that did not stop in time) is
# tried again (up to three times) before it counts.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-30s}"
count() { if [ -d "$1" ]; then ls "$1" | wc -l; else echo 0; fi; }
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
