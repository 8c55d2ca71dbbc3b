# shellcheck shell=bash
# Sourced by scripts/test-services.sh: defines start_postgres_cdc.
# PostgreSQL for change-data-capture tests: GATEWAY_TEST_POSTGRES_CDC if set, else whatever answers
# on 25432, else a cluster of our own there with wal_level=logical (data in .run/pgcdc).
# synchronous_commit stays on: with it off, a transaction just committed may not be decodable yet.
start_postgres_cdc() {
  local url="${GATEWAY_TEST_POSTGRES_CDC:-}"
  if [ -n "$url" ]; then echo "export GATEWAY_TEST_POSTGRES_CDC='$url'" >> "$ENV_FILE.new"; return; fi
  url=postgresql://postgres@127.0.0.1:25432/postgres
  if port_open 127.0.0.1 25432; then
    say "PostgreSQL for CDC on 127.0.0.1:25432"
  else
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$bin" ]; then say "PostgreSQL is not installed: no CDC cluster"; return 1; fi
    local data="$RUN_DIR/pgcdc" sock="$RUN_DIR/pgcdcsock" log="$RUN_DIR/logs/postgres_cdc.log" as=()
    mkdir -p "$data" "$sock"; touch "$log"
    # initdb and pg_ctl refuse to run as root: the cluster belongs to the postgres user then.
    if [ "$(id -u)" = 0 ]; then
      chown postgres: "$data" "$sock" "$log"
      as=(runuser -u postgres --)
    fi
    [ -f "$data/PG_VERSION" ] ||
      "${as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    if ! "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$log" -w -o "-p 25432 \
        -c listen_addresses=127.0.0.1 -c unix_socket_directories=$sock -c wal_level=logical \
        -c max_replication_slots=40 -c max_wal_senders=40 -c fsync=off -c full_page_writes=off" \
        start >/dev/null; then
      say "the CDC cluster did not start: see .run/logs/postgres_cdc.log"; return 1
    fi
    say "PostgreSQL for CDC on 127.0.0.1:25432 (own cluster, wal_level=logical)"
  fi
  echo "export GATEWAY_TEST_POSTGRES_CDC=$url" >> "$ENV_FILE.new"
}
