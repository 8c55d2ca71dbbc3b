# shellcheck shell=bash
# Sourced by scripts/test-services.sh: defines start_postgres.
# PostgreSQL: the machine's server on 5432, else a cluster of our own on 25432.
start_postgres() {
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

