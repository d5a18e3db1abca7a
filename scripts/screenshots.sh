#!/usr/bin/env bash
# Refresh the committed UI screenshots (docs/screenshots/*.png): the browser test, run on the trained
# demo slice in headless Chromium (/usr/bin/chromium), writes them there. Takes a few minutes (it
# trains the slice first). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
mkdir -p docs/screenshots
FEATRIX_SCREENSHOTS=docs/screenshots FEATRIX_REQUIRE_BROWSER=1 \
  exec .venv/bin/python -m pytest -q tests/assets/test_browser.py "$@"
