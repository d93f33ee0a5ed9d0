#!/usr/bin/env bash
# Print the path of wrk (the HTTP load generator the ingest benchmark drives both
# Alertmanager and Interlock with), installing Debian's `wrk` package when missing.
#   scripts/wrk.sh ensure   -> prints /usr/bin/wrk
set -euo pipefail

PACKAGE=wrk
log() { echo "wrk.sh: $*" >&2; }
. "$(dirname "$0")/debian.sh"

find_binary() {
    command -v wrk 2>/dev/null || { [ -x /usr/bin/wrk ] && echo /usr/bin/wrk; }
}

case "${1:-ensure}" in
    ensure)
        binary="$(find_binary)" || {
            log "not found; installing Debian's $PACKAGE package"
            apt_install --no-install-recommends "$PACKAGE"
            binary="$(find_binary)" || { log "$PACKAGE installed but no binary found"; exit 1; }
        }
        echo "$binary" ;;
    *) echo "usage: $0 ensure" >&2; exit 2 ;;
esac
