#!/usr/bin/env bash
# Install (into .venv) and run the test suite. With no arguments the whole suite runs in parallel
# workers (pytest-xdist), one per core up to 4 (FEATRIX_TEST_WORKERS overrides; 1 runs in this
# process), each test file on one worker so its module fixtures are built once (tests/conftest.py
# groups them; the files that share the trained pipeline slice go together); every test trains
# with one torch thread, so two workers on two cores use the machine without changing any result.
# With arguments they pass straight to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
if [ "$#" -eq 0 ]; then
  cores=$(nproc 2>/dev/null || echo 1)
  workers=${FEATRIX_TEST_WORKERS:-$(( cores < 4 ? cores : 4 ))}
  if [ "$workers" -gt 1 ]; then
    set -- -n "$workers" --dist loadgroup
  fi
fi
exec .venv/bin/python -m pytest -q "$@"
