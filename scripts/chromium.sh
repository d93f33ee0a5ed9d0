#!/usr/bin/env bash
# Make Debian's Chromium available to the browser tests and print its path.
# Installs the `chromium` package when no binary is found.
#   scripts/chromium.sh ensure   -> prints /usr/bin/chromium
#
# The browser tests drive it headless through Playwright's Python package, with the
# system binary: they never download a browser build of their own.
set -euo pipefail

PACKAGE=chromium

log() { echo "chromium.sh: $*" >&2; }

find_binary() {
    local candidate
    if [ -n "${INTERLOCK_CHROMIUM_BIN:-}" ]; then
        [ -x "$INTERLOCK_CHROMIUM_BIN" ] && { echo "$INTERLOCK_CHROMIUM_BIN"; return 0; }
        log "INTERLOCK_CHROMIUM_BIN=$INTERLOCK_CHROMIUM_BIN is not executable"
        return 1
    fi
    [ -x /usr/bin/chromium ] && { echo /usr/bin/chromium; return 0; }
    for candidate in chromium chromium-browser; do
        command -v "$candidate" >/dev/null 2>&1 && { command -v "$candidate"; return 0; }
    done
    return 1
}

install_package() {
    log "no Chromium found; installing Debian's $PACKAGE package"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$PACKAGE" >&2
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
