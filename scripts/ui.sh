#!/usr/bin/env bash
# Open the Dagster UI on the code location (project-local DAGSTER_HOME, no telemetry/onboarding).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
export FEATRIX_HOME="${FEATRIX_HOME:-$PWD}"
# dg dev (dagster-dg-cli) is what Dagster 1.13 recommends over the superseded `dagster dev`; both read
# the same workspace.yaml, so `.venv/bin/dagster dev -w workspace.yaml` still works.
exec .venv/bin/dg dev -w workspace.yaml "$@"
