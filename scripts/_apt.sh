# Sourced by scripts/ci_services.sh and scripts/ci_browser.sh: root and apt, in one place.
#
#   as_root CMD...            run CMD as root (directly, or through passwordless sudo)
#   apt_install WHAT PKG...   install Debian packages without starting any service: Debian's
#                             policy-rc.d convention forbids service starts for the install
#                             (so no package's postinst starts e.g. a system nginx listening on
#                             0.0.0.0:80); waits for a dpkg lock another apt holds
# The caller sets $APT_CALLER (its name, for messages) and `set -euo pipefail`.

export DEBIAN_FRONTEND=noninteractive

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        echo "${APT_CALLER:-apt}: need root (or passwordless sudo) to run: $*" >&2
        return 1
    fi
}

apt_install() {
    local what="$1"
    shift
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "${APT_CALLER:-apt}: $what is missing and apt-get is not available" >&2
        return 1
    fi
    echo "${APT_CALLER:-apt}: installing $what"
    local policy=/usr/sbin/policy-rc.d created_policy=0 status=0
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        created_policy=1
    fi
    as_root apt-get -o DPkg::Lock::Timeout=600 update -qq || status=$?
    if [ "$status" -eq 0 ]; then
        as_root apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null \
            || status=$?
    fi
    if [ "$created_policy" -eq 1 ]; then as_root rm -f "$policy"; fi
    return "$status"
}
