#!/usr/bin/env bash
# What the test suite needs from the machine beyond Python: PostgreSQL's server binaries (the tests
# start their own throw-away server on a free local port, tests/postgres.py) and Chromium (the UI
# is checked in a real headless browser). Installs Debian's packages when they are missing.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "installing ${need[*]} (Debian packages)" >&2
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need[@]}" >/dev/null
fi
