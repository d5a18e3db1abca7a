#!/usr/bin/env bash
# Install (into .venv) and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
exec .venv/bin/python -m pytest -q "$@"
