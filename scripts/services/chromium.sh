# shellcheck shell=bash
# Sourced by scripts/test-services.sh: defines start_chromium (the dashboard's browser tests).
start_chromium() {
  if [ -x /usr/bin/chromium ]; then
    say "Chromium at /usr/bin/chromium"
    return
  fi
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing Chromium (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
  else
    say "Chromium is missing and cannot be installed here: the browser tests will not run"
  fi
}
