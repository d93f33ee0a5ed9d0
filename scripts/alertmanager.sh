#!/usr/bin/env bash
# Make a real Prometheus Alertmanager binary available to the tests and print its path.
# Installs Debian's `prometheus-alertmanager` package when no binary is found.
#   scripts/alertmanager.sh ensure   -> prints /usr/bin/prometheus-alertmanager
#
# The tests start their own Alertmanager on free loopback ports (tests/support/
# alertmanager.py); they never use the system service. Debian's package enables a
# service listening on :9093 (web) and :9094 (cluster); when this script installs the
# package it stops and disables that service again, so nothing is left listening.
# (In a container whose /usr/sbin/policy-rc.d denies starts, it never starts at all.)
set -euo pipefail

PACKAGE=prometheus-alertmanager
SERVICE=prometheus-alertmanager

log() { echo "alertmanager.sh: $*" >&2; }
. "$(dirname "$0")/debian.sh"

find_binary() {
    local candidate
    if [ -n "${INTERLOCK_ALERTMANAGER_BIN:-}" ]; then
        [ -x "$INTERLOCK_ALERTMANAGER_BIN" ] && { echo "$INTERLOCK_ALERTMANAGER_BIN"; return 0; }
        log "INTERLOCK_ALERTMANAGER_BIN=$INTERLOCK_ALERTMANAGER_BIN is not executable"
        return 1
    fi
    for candidate in prometheus-alertmanager alertmanager; do
        command -v "$candidate" >/dev/null 2>&1 && { command -v "$candidate"; return 0; }
    done
    [ -x /usr/bin/prometheus-alertmanager ] && { echo /usr/bin/prometheus-alertmanager; return 0; }
    return 1
}

after_install() {
    # Only called right after we installed the package: undo its service start.
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        as_root systemctl stop "$SERVICE" >&2 2>/dev/null || true
        as_root systemctl disable "$SERVICE" >&2 2>/dev/null || true
    elif [ -x "/etc/init.d/$SERVICE" ]; then
        as_root "/etc/init.d/$SERVICE" stop >&2 2>/dev/null || true
    fi
}

case "${1:-ensure}" in
    ensure) ensure_binary ;;
    *) echo "usage: $0 ensure" >&2; exit 2 ;;
esac
