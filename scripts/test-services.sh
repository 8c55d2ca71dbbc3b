#!/usr/bin/env bash
# Start the services the integration tests need, when they are not running already.
# Idempotent. Writes .run/services.env with the endpoints the tests read (GATEWAY_TEST_*),
# so that a docker-compose user can point the tests at containers instead.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="$PWD/.run"
mkdir -p "$RUN_DIR/logs"
ENV_FILE="$RUN_DIR/services.env"
: > "$ENV_FILE.new"

say() { printf 'services: %s\n' "$*" >&2; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_port() { for _ in $(seq 1 100); do port_open "$1" "$2" && return 0; sleep 0.1; done; return 1; }

# PostgreSQL: the machine's server on 5432, else a cluster of our own on 25432.
postgres() {
  local url="${GATEWAY_TEST_POSTGRES:-}"
  if [ -n "$url" ]; then echo "export GATEWAY_TEST_POSTGRES='$url'" >> "$ENV_FILE.new"; return; fi
  if ! port_open 127.0.0.1 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1 || true)
    [ -n "$version" ] && pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    wait_port 127.0.0.1 5432 || true
  fi
  if port_open 127.0.0.1 5432; then
    echo "export GATEWAY_TEST_POSTGRES='postgresql://postgres@127.0.0.1:5432/postgres'" >> "$ENV_FILE.new"
    say "PostgreSQL on 127.0.0.1:5432"
    return
  fi
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$bin" ]; then say "PostgreSQL is not installed and not running"; return 1; fi
  local data="$RUN_DIR/pgdata" sock="$RUN_DIR/pgsock" as=()
  [ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
  if ! port_open 127.0.0.1 25432; then
    mkdir -p "$data" "$sock"; touch "$RUN_DIR/logs/postgres.log"
    [ "$(id -u)" = 0 ] && chown postgres: "$data" "$sock" "$RUN_DIR/logs/postgres.log"
    [ -f "$data/PG_VERSION" ] || "${as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
    "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$RUN_DIR/logs/postgres.log" -w -o \
      "-p 25432 -c listen_addresses=127.0.0.1 -c unix_socket_directories=$sock -c wal_level=logical -c fsync=off" start >/dev/null
  fi
  echo "export GATEWAY_TEST_POSTGRES='postgresql://postgres@127.0.0.1:25432/postgres'" >> "$ENV_FILE.new"
  say "PostgreSQL on 127.0.0.1:25432 (own cluster)"
}

postgres
mv "$ENV_FILE.new" "$ENV_FILE"
