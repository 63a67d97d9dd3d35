#!/usr/bin/env bash
# CI browser for the catalogue page test: Debian's chromium, run headless by
# tests/e2e/test_catalogue_browser.py (a screenshot, and a DOM dump of hostile descriptions).
#
# Idempotent: installs chromium only when it is missing. Service starts are forbidden during
# the install (Debian's policy-rc.d convention), as in scripts/ci_services.sh.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

find_chromium() {
    command -v chromium || { [ -x /usr/bin/chromium ] && echo /usr/bin/chromium; } || true
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        echo "ci_browser.sh: need root (or passwordless sudo) to run: $*" >&2
        return 1
    fi
}

if [ -z "$(find_chromium)" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "ci_browser.sh: chromium is missing and apt-get is not available" >&2
        exit 1
    fi
    echo "ci_browser.sh: installing chromium"
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        created_policy=1
    fi
    as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
    as_root apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
    if [ "$created_policy" -eq 1 ]; then as_root rm -f "$policy"; fi
fi

chromium_bin="$(find_chromium)"
if [ -z "$chromium_bin" ]; then
    echo "ci_browser.sh: chromium is still not installed" >&2
    exit 1
fi
echo "ci_browser.sh: $("$chromium_bin" --version 2>/dev/null || echo chromium) ready at $chromium_bin"
