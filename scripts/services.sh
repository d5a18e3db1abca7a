#!/usr/bin/env bash
# What the test suite needs from the machine beyond Python: PostgreSQL's server binaries (the tests
# start their own throw-away server on a free local port, tests/postgres.py) and Chromium (the UI
# is checked in a real headless browser). Installs Debian's packages when they are missing.
set -euo pipefail
need=()
# the same places the tests look (tests/postgres.py, tests/browser.py)
{ ls /usr/lib/postgresql/*/bin/initdb || { command -v pg_config && [ -x "$(pg_config --bindir)/initdb" ]; }; } \
  >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "installing ${need[*]} (Debian packages)" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
