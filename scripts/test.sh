#!/usr/bin/env bash
# The test harness behind `make test`: installs what is missing, starts what
# the tests need (a throwaway PostgreSQL run as an unprivileged user, pcscd
# with the virtual reader), runs the given command with EGATE_TEST_STRICT=1 so
# that no hardware-path test can skip, and stops what it started.
#
# Usage: scripts/test.sh CMD [ARGS…]    (SoftHSM tokens are made by the tests
# themselves in temporary directories.)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh

pgdir=""
cleanup() {
  [ -n "$pgdir" ] && scripts/pg.sh stop "$pgdir" || true
}
trap cleanup EXIT

eval "$(scripts/pg.sh)"
pgdir="$EGATE_TEST_PG_DIR"
if [ -x scripts/pcscd.sh ]; then
  scripts/pcscd.sh
fi

export EGATE_TEST_STRICT=1
export CGO_ENABLED=1
"$@"
