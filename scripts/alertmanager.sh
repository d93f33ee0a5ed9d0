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

stop_system_service() {
    # Only called right after we installed the package: undo its service start.
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        $sudo systemctl stop "$SERVICE" >&2 2>/dev/null || true
        $sudo systemctl disable "$SERVICE" >&2 2>/dev/null || true
    elif [ -x "/etc/init.d/$SERVICE" ]; then
        $sudo "/etc/init.d/$SERVICE" stop >&2 2>/dev/null || true
    fi
}

install_package() {
    log "no Alertmanager found; installing Debian's $PACKAGE package"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$PACKAGE" >&2
    stop_system_service
}

ensure() {
    local binary
    if ! binary="$(find_binary)"; then
        install_package
        binary="$(find_binary)" || { log "$PACKAGE installed but no binary found"; exit 1; }
    fi
    "$binary" --version >/dev/null 2>&1 || { log "$binary --version failed"; exit 1; }
    echo "$binary"
}

case "${1:-ensure}" in
    ensure) ensure ;;
    *) echo "usage: $0 ensure" >&2; exit 2 ;;
esac
