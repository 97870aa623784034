#!/usr/bin/env bash
# The PostgreSQL that `make deploy` deploys to: a cluster for this checkout on
# this machine, started when it is not running, with the database st44.
#
#   scripts/local-postgres.sh        ensure it exists and runs (idempotent)
#   scripts/local-postgres.sh stop   stop it
#
# It serves the unix socket and 127.0.0.1 only, on port 54329 (LOCAL_PG_PORT).
# Like a Debian server, local connections use peer authentication: as root the
# server runs as the `postgres` OS user (PostgreSQL refuses to run as root) and
# the deploy connects as that user through `become`; otherwise it runs as you,
# and lets you in as the database user postgres (no become).
#
# The computed paths are written to inventory/local/group_vars/st44_db/
# generated.yml (git-ignored), which the local inventory reads.
set -euo pipefail
umask 022

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd -P)"

PORT="${LOCAL_PG_PORT:-54329}"
DB_NAME=st44
SUPERUSER=postgres
GENERATED="$ROOT/inventory/local/group_vars/st44_db/generated.yml"
# Names the fallback directories in /var/tmp and /tmp, one per checkout.
HASH="$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
# sun_path holds 107 bytes; stay clear of it.
MAX_SOCKET_PATH=100

say() { printf 'local-postgres: %s\n' "$*"; }
die() { printf 'local-postgres: ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

if ! [[ "$PORT" =~ ^[1-9][0-9]{3,4}$ ]] || (( PORT < 1024 || PORT > 65535 )); then
    die "LOCAL_PG_PORT=$PORT is not a port number between 1024 and 65535"
fi

ACTION="${1:-start}"
case "$ACTION" in
    start | stop) ;;
    *) die "usage: $0 [start|stop]" ;;
esac

IS_ROOT=false
[[ $EUID -eq 0 ]] && IS_ROOT=true

# --- OS user that runs the server -------------------------------------------
if $IS_ROOT; then
    OS_USER=postgres
    if ! id -u "$OS_USER" >/dev/null 2>&1; then
        say "OS user '$OS_USER': creating it (PostgreSQL refuses to run as root)"
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash "$OS_USER"
    fi
else
    OS_USER="$(id -un)"
fi

# Run a command as the server's OS user, from / (that user may not be able to
# enter the current directory, e.g. under /root).
as_pg() {
    if $IS_ROOT; then
        (cd / && runuser -u "$OS_USER" -- "$@")
    else
        (cd / && "$@")
    fi
}

# A directory owned by the server's OS user with the given mode.
pg_dir() {
    local mode="$1" dir="$2"
    mkdir -p "$dir"
    if $IS_ROOT; then chown "$OS_USER:" "$dir"; fi
    chmod "$mode" "$dir"
}

# A directory of ours in a world-writable place (/tmp, /var/tmp): refuse one
# that someone else made there.
private_dir() {
    local dir="$1" owner
    [[ -e "$dir" || -L "$dir" ]] || mkdir -m 0755 "$dir"
    owner="$(stat -c %u "$dir")"
    [[ ! -L "$dir" && ( "$owner" == "$EUID" || "$owner" == "$(id -u "$OS_USER")" ) ]] \
        || die "$dir exists but is not a directory owned by $(id -un) or $OS_USER; remove it"
}

# --- where the cluster lives --------------------------------------------------
# In the checkout (git-ignored), unless the server's OS user cannot reach it:
# a repository under /root (mode 0700) is out of reach of `postgres`.
CLUSTER_DIR="$ROOT/.local"
if $IS_ROOT && ! runuser -u "$OS_USER" -- test -x "$ROOT" 2>/dev/null; then
    CLUSTER_DIR="/var/tmp/st44-local-pg-$HASH"
    FALLBACK_REASON="$ROOT is not reachable by OS user '$OS_USER'"
fi
PGDATA="$CLUSTER_DIR/pgdata"
LOG_FILE="$CLUSTER_DIR/log/postgresql.log"
SOCKET_DIR="$CLUSTER_DIR/run"
if (( ${#SOCKET_DIR} + ${#PORT} + 10 > MAX_SOCKET_PATH )); then
    SOCKET_DIR="/tmp/st44-local-pg-$HASH"
fi

# --- binaries -----------------------------------------------------------------
# The version of an existing cluster, else the newest installed.
pick_bin() {
    if [[ -f "$PGDATA/PG_VERSION" ]]; then
        local version
        version="$(cat "$PGDATA/PG_VERSION")"
        [[ -x "/usr/lib/postgresql/$version/bin/postgres" ]] \
            || die "$PGDATA is a PostgreSQL $version cluster but /usr/lib/postgresql/$version/bin is missing; install postgresql-$version, or stop and remove $CLUSTER_DIR to start afresh"
        echo "/usr/lib/postgresql/$version/bin"
    else
        newest_pg_bin
    fi
}

running() { [[ -f "$PGDATA/PG_VERSION" ]] && as_pg "$BIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1; }

if [[ "$ACTION" == stop ]]; then
    if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
        say "no cluster in $PGDATA: nothing to stop"
        exit 0
    fi
    BIN="$(pick_bin)"
    if running; then
        as_pg "$BIN/pg_ctl" stop -D "$PGDATA" -w -t 60 -m fast >/dev/null
        say "stopped the server of $PGDATA"
    else
        say "server of $PGDATA: not running"
    fi
    exit 0
fi

# --- start ----------------------------------------------------------------------
ensure_pg_binaries
BIN="$(pick_bin)"
say "binaries: $BIN"

# As root, the deploy's modules run as `postgres`, which cannot execute the
# controller's python when it lives under /root (pyenv): they use the system
# python, as on a Debian server, which then needs psycopg2.
ensure_system_psycopg2

if [[ "$CLUSTER_DIR" == "$ROOT/.local" ]]; then
    mkdir -p "$CLUSTER_DIR"
    say "cluster directory: $CLUSTER_DIR"
else
    private_dir "$CLUSTER_DIR"
    say "cluster directory: $CLUSTER_DIR ($FALLBACK_REASON)"
fi
pg_dir 0700 "$PGDATA"
pg_dir 0755 "$CLUSTER_DIR/log"
# For the deploy: dumps hold data, releases are read by the server's user.
pg_dir 0700 "$CLUSTER_DIR/backups"
pg_dir 0755 "$CLUSTER_DIR/releases"
if [[ "$SOCKET_DIR" == "$CLUSTER_DIR/run" ]]; then
    pg_dir 0755 "$SOCKET_DIR"
else
    private_dir "$SOCKET_DIR"
    pg_dir 0755 "$SOCKET_DIR"
fi
say "socket directory: $SOCKET_DIR"

if [[ -f "$PGDATA/PG_VERSION" ]]; then
    say "initdb: $PGDATA already holds a PostgreSQL $(cat "$PGDATA/PG_VERSION") cluster"
else
    [[ -z "$(ls -A "$PGDATA")" ]] \
        || die "$PGDATA is not empty but holds no cluster (no PG_VERSION); remove it"
    say "initdb: creating a cluster in $PGDATA (superuser $SUPERUSER, peer authentication)"
    initdb_args=(-D "$PGDATA" -U "$SUPERUSER" -E UTF8
                 --auth-local=peer --auth-host=scram-sha-256)
    if ! as_pg "$BIN/initdb" "${initdb_args[@]}" --locale=C.UTF-8 >"$CLUSTER_DIR/log/initdb.log" 2>&1; then
        # A libc without the C.UTF-8 locale: C sorts the same way.
        find "$PGDATA" -mindepth 1 -delete
        as_pg "$BIN/initdb" "${initdb_args[@]}" --locale=C >"$CLUSTER_DIR/log/initdb.log" 2>&1 \
            || die "initdb failed; see $CLUSTER_DIR/log/initdb.log"
    fi
    if ! $IS_ROOT; then
        # Not root: the server runs as you; let you in as the superuser, as
        # Debian lets the postgres OS user in (first matching line wins).
        printf '%s\n' "# added by scripts/local-postgres.sh: OS user $OS_USER may log in as $SUPERUSER" \
            "st44_local  $OS_USER  $SUPERUSER" >>"$PGDATA/pg_ident.conf"
        { printf '%s\n' "# added by scripts/local-postgres.sh" \
            "local   all             $SUPERUSER                                peer map=st44_local"
          cat "$PGDATA/pg_hba.conf"; } >"$PGDATA/pg_hba.conf.new"
        mv "$PGDATA/pg_hba.conf.new" "$PGDATA/pg_hba.conf"
        chmod 0600 "$PGDATA/pg_hba.conf"
    fi
    printf '\n%s\n%s\n' "# Port, sockets and addresses of the local default (scripts/local-postgres.sh)" \
        "include_if_exists = 'st44-local.conf'" >>"$PGDATA/postgresql.conf"
fi

# Rewritten on every run so a new LOCAL_PG_PORT or socket directory applies.
conf_quote() { printf "'%s'" "${1//\'/\'\'}"; }
SETTINGS="$(printf '%s\n' \
    "# Written by scripts/local-postgres.sh on every run: change the script, not this file." \
    "port = $PORT" \
    "listen_addresses = '127.0.0.1'" \
    "unix_socket_directories = $(conf_quote "$SOCKET_DIR")")"
if [[ "$(cat "$PGDATA/st44-local.conf" 2>/dev/null)" != "$SETTINGS" ]]; then
    printf '%s\n' "$SETTINGS" >"$PGDATA/st44-local.conf"
    if $IS_ROOT; then chown "$OS_USER:" "$PGDATA/st44-local.conf"; fi
    chmod 0600 "$PGDATA/st44-local.conf"
fi

start_server() {
    local log_size new_log
    log_size="$(stat -c %s "$LOG_FILE" 2>/dev/null || echo 0)"
    if ! as_pg "$BIN/pg_ctl" start -D "$PGDATA" -l "$LOG_FILE" -w -t 60 >/dev/null 2>&1; then
        new_log="$(tail -c "+$((log_size + 1))" "$LOG_FILE" 2>/dev/null || true)"
        printf '%s\n' "$new_log" | tail -n 20 >&2
        die "pg_ctl start failed (server log above, in $LOG_FILE)$( \
            grep -q 'Address already in use' <<<"$new_log" \
            && echo "; port $PORT is taken: set LOCAL_PG_PORT to another port")"
    fi
}

if running; then
    # postmaster.pid lines 4-6: port, first socket directory, listen address.
    mapfile -t pid_lines < "$PGDATA/postmaster.pid"
    if [[ "${pid_lines[3]:-}" == "$PORT" && "${pid_lines[4]:-}" == "$SOCKET_DIR" \
          && "${pid_lines[5]:-}" == "127.0.0.1" ]]; then
        say "server: running (pid ${pid_lines[0]})"
    else
        say "server: running on port ${pid_lines[3]:-?}, socket ${pid_lines[4]:-?}: restarting on port $PORT, socket $SOCKET_DIR"
        as_pg "$BIN/pg_ctl" stop -D "$PGDATA" -w -t 60 -m fast >/dev/null
        start_server
    fi
else
    say "server: starting (log: $LOG_FILE)"
    start_server
fi

psql_admin() {
    as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PORT" -U "$SUPERUSER" -d postgres "$@"
}
if [[ "$(psql_admin -Atc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" == 1 ]]; then
    say "database $DB_NAME: present"
else
    psql_admin -c "CREATE DATABASE $DB_NAME OWNER $SUPERUSER"
    say "database $DB_NAME: created (owner $SUPERUSER)"
fi

# --- inventory ------------------------------------------------------------------
yaml_quote() { local s="${1//\\/\\\\}"; printf '"%s"' "${s//\"/\\\"}"; }
GENERATED_TEXT="$(
    echo "# Written by scripts/local-postgres.sh for this checkout on this machine; do not"
    echo "# edit or commit (git-ignored). database.yml says how each value is used."
    echo "# Directory holding pgdata/, log/, backups/ and releases/."
    echo "st44_local_pg_cluster_dir: $(yaml_quote "$CLUSTER_DIR")"
    echo "# Directory of the server's unix socket."
    echo "st44_local_pg_socket_dir: $(yaml_quote "$SOCKET_DIR")"
    echo "# Port of the socket and of 127.0.0.1."
    echo "st44_local_pg_port: $PORT"
    if $IS_ROOT; then
        echo "# OS user the database steps become; peer authentication lets it in as $SUPERUSER."
        echo "st44_local_pg_become_user: $(yaml_quote "$OS_USER")"
        echo "# Python for the modules: reachable by $OS_USER and able to import psycopg2."
        echo "st44_local_python: $SYSTEM_PYTHON"
        echo "# How root becomes $OS_USER: sudo when installed (make setup installs it), one call per"
        echo "# step; su otherwise, which Ansible cannot pipeline."
        if command -v sudo >/dev/null; then
            echo "st44_local_become_method: ansible.builtin.sudo"
        else
            echo "st44_local_become_method: ansible.builtin.su"
        fi
    else
        echo "# Empty: no become; the server runs as $OS_USER, whom it lets in as $SUPERUSER."
        echo "st44_local_pg_become_user: \"\""
    fi
)"
if [[ "$(cat "$GENERATED" 2>/dev/null)" == "$GENERATED_TEXT" ]]; then
    say "inventory: ${GENERATED#"$ROOT"/} up to date"
else
    mkdir -p "$(dirname "$GENERATED")"
    printf '%s\n' "$GENERATED_TEXT" >"$GENERATED"
    say "inventory: wrote ${GENERATED#"$ROOT"/}"
fi

say "ready: database $DB_NAME on socket $SOCKET_DIR port $PORT (and 127.0.0.1:$PORT); psql: $( \
    $IS_ROOT && printf 'runuser -u %s -- ' "$OS_USER")psql -h $SOCKET_DIR -p $PORT -U $SUPERUSER $DB_NAME"
