#!/usr/bin/env bash
# The whole suite: layer contract, lint and format (ruff), types of the Qt-free core (mypy), unit +
# UI + keyring tests (offscreen Qt, a real Secret Service), then the end-to-end tests (the whole app
# in a real X window under Xvfb, a real llama-server). A failing step does not stop the later ones.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

# `make test` installed them already; run directly, say what is missing and how to get it.
bash scripts/system-deps.sh --check test

set -a
# shellcheck disable=SC1091
source .cache/test-servers.env
set +a
export MODELDESK_REQUIRE_SECRET_SERVICE=1 MODELDESK_REQUIRE_REAL_SERVERS=1 MODELDESK_REQUIRE_VALIDATORS=1

echo "== import contract"
"$BIN/lint-imports"

reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
status=0

echo "== lint, import order and format (ruff)"
"$BIN/ruff" check --no-cache . || status=1
"$BIN/ruff" format --no-cache --check . || status=1

echo "== types of domain/ and services/ (mypy)"
"$BIN/mypy" || status=1

echo "== unit, UI and keyring tests"
bash scripts/with-secret-service.sh env QT_QPA_PLATFORM=offscreen \
  "$BIN/python" -m pytest -p no:cacheprovider --junitxml="$reports/main.xml" \
  tests/unit tests/ui tests/keyring || status=1

echo "== end-to-end tests (Xvfb, real llama-server)"
xvfb-run -a -s "-screen 0 1400x900x24" env QT_QPA_PLATFORM=xcb \
  "$BIN/python" -m pytest -p no:cacheprovider --junitxml="$reports/e2e.xml" tests/e2e || status=1

# One closing line for both runs.
"$BIN/python" - "$reports"/*.xml <<'PY'
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for path in sys.argv[1:]:
    for suite in ET.parse(path).getroot().iter("testsuite"):
        tests, skip = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        passed += tests - skip - bad
        failed += bad
        skipped += skip
print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
