# shellcheck shell=bash
# Sourced by scripts/test-services.sh: defines start_pubsub.
# GCP Pub/Sub: GATEWAY_TEST_PUBSUB if set, else whatever answers on 28085, else Google's emulator
# (Debian package google-cloud-cli-pubsub-emulator, a Java program, in the machine image) on
# 28085, in memory: its topics and subscriptions are gone when it stops.
start_pubsub() {
  local endpoint="${GATEWAY_TEST_PUBSUB:-}"
  if [ -n "$endpoint" ]; then echo "export GATEWAY_TEST_PUBSUB='$endpoint'" >> "$ENV_FILE.new"; return; fi
  endpoint=127.0.0.1:28085
  if port_open 127.0.0.1 28085; then
    say "Pub/Sub on $endpoint"
  else
    local emulator
    emulator=$(dpkg -L google-cloud-cli-pubsub-emulator 2>/dev/null | grep 'bin/cloud-pubsub-emulator$' || true)
    if [ -z "$emulator" ] || ! command -v java >/dev/null 2>&1; then
      say "the Pub/Sub emulator is not installed (Debian google-cloud-cli-pubsub-emulator and java)"
      return 1
    fi
    # A session of its own, so that an interrupted `make test` does not take the emulator down.
    # The script execs java, so the PID is the JVM's.
    setsid "$emulator" --host=127.0.0.1 --port=28085 > "$RUN_DIR/logs/pubsub.log" 2>&1 < /dev/null &
    echo $! > "$RUN_DIR/pubsub.pid"
    if ! wait_port 127.0.0.1 28085; then say "the emulator did not start: see .run/logs/pubsub.log"; return 1; fi
    say "Pub/Sub (the emulator) on $endpoint, pid $(cat "$RUN_DIR/pubsub.pid")"
  fi
  echo "export GATEWAY_TEST_PUBSUB=$endpoint" >> "$ENV_FILE.new"
}
