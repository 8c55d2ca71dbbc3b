# shellcheck shell=bash
# Sourced by scripts/test-services.sh: defines start_mosquitto.
# MQTT: GATEWAY_TEST_MQTT if set, else the broker answering on 1883, else a mosquitto of our own on
# 21883 with persistence under .run/mosquitto (sessions and queued messages survive its restarts).
start_mosquitto() {
  local address="${GATEWAY_TEST_MQTT:-}"
  if [ -n "$address" ]; then echo "export GATEWAY_TEST_MQTT='$address'" >> "$ENV_FILE.new"; return; fi
  local port=1883
  if port_open 127.0.0.1 $port; then
    say "MQTT on 127.0.0.1:$port"
  else
    port=21883
    if ! port_open 127.0.0.1 $port; then
      local bin="" candidate
      for candidate in "$(command -v mosquitto || true)" /usr/sbin/mosquitto; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then bin=$candidate; break; fi
      done
      if [ -z "$bin" ]; then say "mosquitto is not installed and nothing answers on 1883"; return 1; fi
      local dir="$RUN_DIR/mosquitto"
      mkdir -p "$dir"
      # Started as root, mosquitto switches to its own user unless told to stay: the store is ours.
      cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
user $(id -un)
persistence true
persistence_location $dir/
autosave_interval 1
CONF
      setsid "$bin" -c "$dir/mosquitto.conf" > "$RUN_DIR/logs/mosquitto.log" 2>&1 < /dev/null &
      echo $! > "$RUN_DIR/mosquitto.pid"
      if ! wait_port 127.0.0.1 $port; then say "mosquitto did not start: see .run/logs/mosquitto.log"; return 1; fi
    fi
    say "MQTT (own mosquitto) on 127.0.0.1:$port"
  fi
  echo "export GATEWAY_TEST_MQTT=127.0.0.1:$port" >> "$ENV_FILE.new"
}
