# shellcheck shell=bash
# Shared by the set-up scripts (sourced, not run). The caller defines say and die,
# whose prefix names the script in its messages.

# Debian packages: PostgreSQL server binaries, and psycopg2 for the system python
# that runs the deploy's modules on a database host (and here, as the postgres
# OS user, which cannot execute a venv whose python lives under /root).
PG_PACKAGE=postgresql
PSYCOPG_PACKAGE=python3-psycopg2
SYSTEM_PYTHON=/usr/bin/python3

# Install Debian packages, as root only; apt's output is shown when it fails.
apt_install() {
    [[ $EUID -eq 0 ]] || die "missing Debian packages: $*; install them as root: apt-get install $*"
    say "installing Debian packages $* with apt-get"
    local out
    # Another checkout's set-up may hold dpkg's lock: wait for it, not fail.
    out="$(export DEBIAN_FRONTEND=noninteractive; apt-get update -qq -o DPkg::Lock::Timeout=600 2>&1 \
        && apt-get install -y -qq -o DPkg::Lock::Timeout=600 "$@" 2>&1)" \
        || { printf '%s\n' "$out" >&2; die "apt-get install $* failed (output above)"; }
}

# The newest /usr/lib/postgresql/<major>/bin, or nothing.
newest_pg_bin() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1 | xargs -r dirname
}

# PostgreSQL server binaries, installed when missing.
ensure_pg_binaries() {
    if [[ -z "$(newest_pg_bin)" ]]; then
        apt_install "$PG_PACKAGE"
        [[ -n "$(newest_pg_bin)" ]] \
            || die "apt-get installed '$PG_PACKAGE' but no /usr/lib/postgresql/*/bin/initdb appeared"
    fi
    say "PostgreSQL binaries: $(newest_pg_bin)"
}

# The system python with psycopg2 (as root only: a normal user's modules run
# with the controller's python), installed when missing.
ensure_system_psycopg2() {
    [[ $EUID -eq 0 ]] || return 0
    if ! "$SYSTEM_PYTHON" -c 'import psycopg2' 2>/dev/null; then
        apt_install python3 "$PSYCOPG_PACKAGE"
        "$SYSTEM_PYTHON" -c 'import psycopg2' \
            || die "apt-get installed '$PSYCOPG_PACKAGE' but $SYSTEM_PYTHON cannot import psycopg2"
    fi
    say "target python: $SYSTEM_PYTHON with psycopg2"
}

# sudo (as root only), installed when missing: as root the local default becomes the
# database OS user for each step. With sudo Ansible sends each module on python's stdin
# (pipelining); su cannot, so every step first writes the module, its arguments included, to
# a file on the host and removes it afterwards, which costs time and leaves that file behind
# if the run is killed.
ensure_sudo() {
    [[ $EUID -eq 0 ]] || return 0
    command -v sudo >/dev/null || apt_install sudo
    say "become for the local default: sudo"
}
