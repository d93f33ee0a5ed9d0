# Sourced by the scripts that give the tests what they need from Debian's packages
# (postgres.sh, alertmanager.sh, chromium.sh). Not meant to be run.

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt-get install the arguments (packages and options), quietly, after an update.
apt_install() {
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# Print the binary the calling script's find_binary finds, first installing $PACKAGE
# when it finds none (then calling the script's after_install, if it has one).
ensure_binary() {
    local binary
    if ! binary="$(find_binary)"; then
        log "not found; installing Debian's $PACKAGE package"
        apt_install --no-install-recommends "$PACKAGE"
        if declare -F after_install >/dev/null; then after_install; fi
        binary="$(find_binary)" || { log "$PACKAGE installed but no binary found"; exit 1; }
    fi
    "$binary" --version >/dev/null 2>&1 || { log "$binary --version failed"; exit 1; }
    echo "$binary"
}
