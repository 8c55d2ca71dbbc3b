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

for service in scripts/services/*.sh; do
  # shellcheck source=/dev/null
  . "$service"
done
for service in scripts/services/*.sh; do
  name=$(basename "$service" .sh)
  "start_$name"
done
mv "$ENV_FILE.new" "$ENV_FILE"
