#!/usr/bin/env bash
# Open the Dagster UI on the code location (project-local DAGSTER_HOME, no telemetry/onboarding).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
export FEATRIX_HOME="${FEATRIX_HOME:-$PWD}"
exec .venv/bin/dagster dev -w workspace.yaml "$@"
