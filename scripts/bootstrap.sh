#!/usr/bin/env bash
# Create (or reuse) .venv in the repo root and install the pinned dependency set (requirements.lock),
# then the project itself. torch==2.13.0 resolves to the CPU wheel that pip finds on this machine's
# local disk; elsewhere install that CPU build into .venv first (docs/dependencies.md):
#   .venv/bin/python -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.featrix-lock.sha
want=$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > "$stamp"
fi
# Project-local Dagster home: no onboarding, no telemetry.
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
if [ ! -f "$DAGSTER_HOME/dagster.yaml" ]; then
  printf 'telemetry:\n  enabled: false\nnux:\n  enabled: false\n' > "$DAGSTER_HOME/dagster.yaml"
fi
# One pipeline run at a time (assets/jobs.py QUEUE_TAG): a retrain and a refresh, or two retrains
# requested by different sensors, would otherwise write the same artifacts and tables at once.
if grep -qE "^(concurrency|run_queue|run_coordinator):" "$DAGSTER_HOME/dagster.yaml" \
   && ! grep -q "featrix/queue" "$DAGSTER_HOME/dagster.yaml"; then
  echo "note: $DAGSTER_HOME/dagster.yaml configures its own run queue: add a run tag limit" \
       "{key: featrix/queue, limit: 1} to it so that pipeline runs never overlap" >&2
elif ! grep -q "featrix/queue" "$DAGSTER_HOME/dagster.yaml"; then
  printf 'concurrency:\n  runs:\n    tag_concurrency_limits:\n      - key: featrix/queue\n        limit: 1\n' \
    >> "$DAGSTER_HOME/dagster.yaml"
fi
