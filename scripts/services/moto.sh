# shellcheck shell=bash
# Sourced by scripts/test-services.sh: defines start_moto.
# SQS: GATEWAY_TEST_SQS if set, else whatever answers on 25000, else moto's server (PyPI
# `moto[server]`) on 25000, in memory: its queues are gone when it stops. moto and aiobotocore are
# installed together, in one resolve, so that boto3 and botocore stay a matching pair.
start_moto() {
  local endpoint="${GATEWAY_TEST_SQS:-}"
  if [ -n "$endpoint" ]; then echo "export GATEWAY_TEST_SQS='$endpoint'" >> "$ENV_FILE.new"; return; fi
  endpoint=http://127.0.0.1:25000
  if port_open 127.0.0.1 25000; then
    say "SQS on $endpoint"
  else
    local python=.venv/bin/python
    if [ ! -x .venv/bin/moto_server ] || ! "$python" -c 'import aiobotocore' 2>/dev/null; then
      "$python" -m pip install -q 'moto[server]' 'aiobotocore[boto3]'
    fi
    # A session of its own, so that an interrupted `make test` does not take the server down.
    setsid .venv/bin/moto_server -H 127.0.0.1 -p 25000 > "$RUN_DIR/logs/moto.log" 2>&1 < /dev/null &
    echo $! > "$RUN_DIR/moto.pid"
    if ! wait_port 127.0.0.1 25000; then say "moto did not start: see .run/logs/moto.log"; return 1; fi
    say "SQS (moto, memory storage) on $endpoint, pid $(cat "$RUN_DIR/moto.pid")"
  fi
  echo "export GATEWAY_TEST_SQS=$endpoint" >> "$ENV_FILE.new"
}
