#!/usr/bin/env bash
# What `make test` runs: static checks, then every test on SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

echo "== ruff";        $BIN/ruff check src tests bench scripts
echo "== mypy";        $BIN/mypy
echo "== import-linter"; $BIN/lint-imports

if [ -z "${INTERLOCK_TEST_POSTGRES_URL:-}" ]; then
    INTERLOCK_TEST_POSTGRES_URL="$(scripts/postgres.sh start)"
    export INTERLOCK_TEST_POSTGRES_URL
    trap 'scripts/postgres.sh stop' EXIT
fi
# Under `make test` a missing PostgreSQL is a failure, never a skip.
export INTERLOCK_REQUIRE_POSTGRES=1

if [ -z "${INTERLOCK_TEST_ALERTMANAGER:-}" ]; then
    INTERLOCK_TEST_ALERTMANAGER="$(scripts/alertmanager.sh ensure)"
    export INTERLOCK_TEST_ALERTMANAGER
fi
# Likewise a missing Alertmanager (tests start their own on free loopback ports).
export INTERLOCK_REQUIRE_ALERTMANAGER=1

if [ -z "${INTERLOCK_TEST_CHROMIUM:-}" ]; then
    INTERLOCK_TEST_CHROMIUM="$(scripts/chromium.sh ensure)"
    export INTERLOCK_TEST_CHROMIUM
fi
# And a missing Chromium (the browser tests drive the console with it, headless).
export INTERLOCK_REQUIRE_CHROMIUM=1

# The README's test pastes its commands into bash; they use curl and jq.
if ! command -v jq >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1; then
    . scripts/debian.sh
    echo "test.sh: installing Debian's jq and curl for the README's commands" >&2
    apt_install --no-install-recommends jq curl
fi
export INTERLOCK_REQUIRE_README_TOOLS=1

echo "== pytest (PostgreSQL at ${INTERLOCK_TEST_POSTGRES_URL}, Alertmanager ${INTERLOCK_TEST_ALERTMANAGER}, Chromium ${INTERLOCK_TEST_CHROMIUM})"
$BIN/pytest "$@"
