#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server in a temporary directory, run as an
# unprivileged user, listening on 127.0.0.1 only, and prints the
# `export EGATE_TEST_PG_DSN=...` line for it. `scripts/pg.sh stop DIR` stops it.
set -euo pipefail

if [ "${1:-}" = "stop" ]; then
  dir="${2:?usage: pg.sh stop DIR}"
  [ -f "$dir/data/postmaster.pid" ] || exit 0
  owner=$(stat -c %U "$dir/data")
  runuser -u "$owner" -- "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bindir/initdb" ] || { echo "pg.sh: PostgreSQL server not installed (apt-get install postgresql)" >&2; exit 1; }

user=postgres
if [ "$(id -u)" -ne 0 ]; then user=$(id -un); fi
id "$user" >/dev/null 2>&1 || { echo "pg.sh: user $user does not exist" >&2; exit 1; }

dir=$(mktemp -d /tmp/egate-pg.XXXXXX)
chmod 755 "$dir"
echo "$bindir" > "$dir/bindir"
mkdir "$dir/data" "$dir/sock"
chown "$user" "$dir/data" "$dir/sock"

as() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi; }

as "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }

# A free port on loopback.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)

as "$bindir/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null || { cat "$dir/data/server.log" >&2; exit 1; }

echo "export EGATE_TEST_PG_DIR=$dir"
echo "export EGATE_TEST_PG_DSN=postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
