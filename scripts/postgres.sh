#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the tests and print its URL.
# Installs Debian's `postgresql` package when no server binaries are found.
#   scripts/postgres.sh start   -> prints postgresql://postgres@127.0.0.1:PORT/postgres
#   scripts/postgres.sh stop
# INTERLOCK_TEST_PG_DURABLE=1 starts it durable (fsync, synchronous_commit and
# full_page_writes on), for benchmarks whose figures should hold for production; use
# another INTERLOCK_TEST_PG_PORT for that, not the tests' server.
set -euo pipefail

PORT="${INTERLOCK_TEST_PG_PORT:-54329}"
DATA="${INTERLOCK_TEST_PG_DIR:-/tmp/interlock-test-pg-$PORT}"
URL="postgresql://postgres@127.0.0.1:$PORT/postgres"

log() { echo "postgres.sh: $*" >&2; }
. "$(dirname "$0")/debian.sh"

find_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    command -v pg_ctl >/dev/null 2>&1 && { dirname "$(command -v pg_ctl)"; return 0; }
    return 1
}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

install_server() {
    log "no PostgreSQL server found; installing Debian's postgresql package"
    apt_install postgresql
}

start() {
    BINDIR="$(find_bindir)" || { install_server; BINDIR="$(find_bindir)"; }
    if "$BINDIR/pg_isready" -h 127.0.0.1 -p "$PORT" -q 2>/dev/null; then
        echo "$URL"
        return 0
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
        rm -rf "$DATA"
        mkdir -p "$DATA"
        [ "$(id -u)" = 0 ] && chown postgres "$DATA"
        as_postgres "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 \
            --locale=C.UTF-8 >/dev/null
    fi
    # Durability is pointless for a test server; speed is not. A benchmark asks for it.
    local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if [ "${INTERLOCK_TEST_PG_DURABLE:-0}" = 1 ]; then
        durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
    fi
    as_postgres "$BINDIR/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start -o \
        "-p $PORT -k /tmp -c listen_addresses=127.0.0.1 $durability \
         -c max_connections=200" >&2
    echo "$URL"
}

stop() {
    BINDIR="$(find_bindir)" || exit 0
    [ -f "$DATA/PG_VERSION" ] || exit 0
    as_postgres "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
