#!/usr/bin/env bash
# The load run behind `make load`: starts egate demo on free loopback ports
# in a temporary directory, waits for /readyz, seeds load-test customers
# with HOTP tokens (egate load seed, through the demo's var/egate.yaml),
# runs egate load with bounded defaults, stops the demo, and exits with egate
# load's status (non-zero on an error rate above the limit or a /metrics
# mismatch).
#
# Usage: scripts/load.sh BIN [EGATE LOAD FLAGS…]
#   LOAD_REQUESTS (2000), LOAD_DURATION (20s), LOAD_CONCURRENCY (4) set the
#   bounds per scenario; LOAD_KEEP=1 keeps the directory.
set -euo pipefail
bin=$(realpath "$1"); shift
dir=$(mktemp -d /tmp/egate-load.XXXXXX)
demo_pid=""
cleanup() {
  if [ -n "$demo_pid" ]; then
    kill -INT "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  if [ "${LOAD_KEEP:-0}" = 1 ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT

# Four free loopback ports (the kernel picks them; a race with another
# process shows as the demo not starting).
read -r p1 p2 p3 p4 < <(python3 -c '
import socket
ss=[socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1",0))
print(*[s.getsockname()[1] for s in ss])')
conc=${LOAD_CONCURRENCY:-4}
cat > "$dir/demo.yaml" <<YAML
log: {level: warn}
http: {listen: 127.0.0.1:$p1}
database: {driver: sqlite, dsn: $dir/var/egate.db}
demo: {var-dir: $dir/var}
platforms:
  ebank: {listen: 127.0.0.1:$p2}
  mall: {listen: 127.0.0.1:$p3}
  messenger: {listen: 127.0.0.1:$p4}
authsvc:
  oidc:
    clients:
      - {id: loadgen, public: true, min-level: 3, redirect-uris: [http://127.0.0.1/load-callback]}
YAML
base=http://127.0.0.1:$p1
"$bin" demo --config "$dir/demo.yaml" >"$dir/demo.out" 2>"$dir/demo.log" &
demo_pid=$!
for _ in $(seq 1 600); do
  if curl -fsS "$base/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$demo_pid" 2>/dev/null; then
    echo "egate demo did not start:" >&2; cat "$dir/demo.out" "$dir/demo.log" >&2; exit 1
  fi
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null || { echo "egate demo is not ready after 60 s" >&2; exit 1; }
echo "egate demo is up at $base (state in $dir)"
"$bin" load seed --config "$dir/var/egate.yaml" --customers "$conc" --customers-file "$dir/var/load-customers.json"
"$bin" load --target "$base" --customers-file "$dir/var/load-customers.json" \
  --backend-secret-file "$dir/var/demo-backend-secret" \
  --requests "${LOAD_REQUESTS:-2000}" --duration "${LOAD_DURATION:-20s}" --concurrency "$conc" "$@"
