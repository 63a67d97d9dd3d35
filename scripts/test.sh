#!/usr/bin/env bash
# Set up ./.venv and run the whole test suite (the README's and CI's test command).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh test,lint
# nginx serves the committed index in one end-to-end test; without root it may be missing,
# and that test then says why it skips. CI installs it beforehand (.ci/run).
scripts/ci_services.sh >/dev/null 2>&1 || echo "note: nginx unavailable; tests/e2e/test_nginx_e2e.py will skip" >&2
scripts/ci_browser.sh >/dev/null 2>&1 || echo "note: chromium unavailable; tests/e2e/test_catalogue_browser.py will skip" >&2
exec .venv/bin/python -m pytest "$@"
