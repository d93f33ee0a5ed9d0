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
. "$(dirname "$0")/debian.sh"

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

case "${1:-ensure}" in
    ensure) ensure_binary ;;
    *) echo "usage: $0 ensure" >&2; exit 2 ;;
esac
