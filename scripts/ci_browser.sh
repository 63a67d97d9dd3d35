#!/usr/bin/env bash
# CI browser for the catalogue page test: Debian's chromium, run headless by
# tests/e2e/test_catalogue_browser.py (a screenshot, and a DOM dump of hostile descriptions).
#
# Idempotent: installs chromium only when it is missing (scripts/_apt.sh: no service starts
# during the install).
set -euo pipefail

APT_CALLER=ci_browser.sh
# shellcheck source=scripts/_apt.sh
. "$(dirname "$0")/_apt.sh"

find_chromium() {
    command -v chromium || { [ -x /usr/bin/chromium ] && echo /usr/bin/chromium; } || true
}

if [ -z "$(find_chromium)" ]; then
    apt_install chromium chromium fonts-dejavu-core
fi

chromium_bin="$(find_chromium)"
if [ -z "$chromium_bin" ]; then
    echo "ci_browser.sh: chromium is still not installed" >&2
    exit 1
fi
echo "ci_browser.sh: $("$chromium_bin" --version 2>/dev/null || echo chromium) ready at $chromium_bin"
