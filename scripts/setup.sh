#!/usr/bin/env bash
# Prepare this checkout for `make deploy` and `make test`: PostgreSQL binaries
# (tests start their own throwaway server), a Python venv with the pinned
# requirements, and the Ansible collections from requirements.yml.
# Idempotent: a second run only checks, and takes about a second.
#
# --deploy-only (make setup-deploy): what running the playbooks against remote
# hosts needs on a pipeline runner, and nothing else: the venv with
# requirements.txt (not -dev) and community.postgresql only; no
# PostgreSQL server, no system psycopg2, no podman, no OS user. The database
# hosts bring their own pg_dump and python3-psycopg2.
set -euo pipefail

DEPLOY_ONLY=false
case "${1:-}" in
    "") ;;
    --deploy-only) DEPLOY_ONLY=true ;;
    *) printf 'usage: %s [--deploy-only]\n' "$0" >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
COLLECTIONS_DIR="$ROOT/.collections"
WHEEL_DIR="$ROOT/.cache/wheels"
# Offline fallback when Galaxy is unreachable: the `ansible` community package
# bundles every collection. 12.x matches ansible-core 2.19; 12.3.0 ships
# community.postgresql 4.2.0.
ANSIBLE_BUNDLE="ansible==12.3.0"
# Collections to take from that bundle, as name:major version that must be
# installed (keep in line with requirements.yml).
if $DEPLOY_ONLY; then
    COLLECTIONS=(community.postgresql:4)
else
    # containers.podman: the Molecule scenarios (molecule/) reach their
    # container with its connection plugin, and make test runs them.
    COLLECTIONS=(community.postgresql:4 containers.podman:1)
    # Molecule's docker driver (ST44_MOLECULE_DRIVER=docker, molecule/README.md)
    # needs these instead; only installed when asked for.
    if [[ "${ST44_MOLECULE_DRIVER:-podman}" == docker ]]; then
        COLLECTIONS+=(community.docker:4 ansible.posix:2 community.library_inventory_filtering_v1:1)
    fi
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# --- What the tests and the local default need on this machine ------------
test_prerequisites() {
    # PostgreSQL server binaries: the tests start their own servers.
    ensure_pg_binaries

    # PostgreSQL refuses to run as root: as root, tests run it as the 'postgres'
    # OS user, which the Debian package normally creates.
    if [[ $EUID -eq 0 ]]; then
        if id -u postgres >/dev/null 2>&1; then
            say "OS user 'postgres' for test servers: present"
        else
            say "OS user 'postgres' for test servers: creating it"
            useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
        fi
    fi

    # Database hosts run modules with their system python (Debian's python3 with
    # python3-psycopg2), and so do the local default and the tests.
    ensure_system_psycopg2
    ensure_sudo
}

if $DEPLOY_ONLY; then
    say "deploy-only: no PostgreSQL server, system psycopg2 or test tools on this machine"
else
    test_prerequisites
fi

# --- Python virtualenv ------------------------------------------------------
command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found; Python >= 3.11 is required"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "'$PYTHON' is $("$PYTHON" -c 'import sys; print("Python " + sys.version.split()[0])' 2>/dev/null || echo 'not a working Python'); Python >= 3.11 is required (set PYTHON=/path/to/python3.11)"

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "virtualenv: .venv present ($("$VENV/bin/python" -V 2>&1))"
else
    rm -rf "$VENV"
    say "virtualenv: creating .venv with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when a requirements file changed: pip itself needs several
# seconds even when there is nothing to do.
# A venv set up for the tests holds the runtime packages too, so --deploy-only
# accepts it as it is.
STAMP="$VENV/.requirements.sha256"
full="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
runtime="deploy-only:$(sha256sum < requirements.txt | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if $DEPLOY_ONLY; then
    reqs=requirements.txt want="$runtime"
else
    reqs=requirements-dev.txt want="$full"
fi
if [[ "$have" == "$want" || ( $DEPLOY_ONLY == true && "$have" == "$full" ) ]]; then
    say "python packages: up to date with $reqs"
else
    say "python packages: installing $reqs"
    "$VENV/bin/python" -m pip install -qq -r "$reqs"
    echo "$want" > "$STAMP"
fi

# --- Ansible collections ----------------------------------------------------
# Prints the names (name:major) of the collections not installed at the
# wanted major version.
missing_collections() {
    "$VENV/bin/python" - "$COLLECTIONS_DIR" "${COLLECTIONS[@]}" <<'PY'
import json, sys
root = sys.argv[1]
for spec in sys.argv[2:]:
    name, major = spec.split(":")
    namespace, coll = name.split(".")
    try:
        with open(f"{root}/ansible_collections/{namespace}/{coll}/MANIFEST.json") as f:
            version = json.load(f)["collection_info"]["version"]
    except (OSError, ValueError, KeyError):
        version = ""
    if version.split(".")[0] != major:
        print(spec)
PY
}

installed_versions() {
    "$VENV/bin/python" - "$COLLECTIONS_DIR" "${COLLECTIONS[@]}" <<'PY'
import json, sys
root = sys.argv[1]
out = []
for spec in sys.argv[2:]:
    namespace, coll = spec.split(":")[0].split(".")
    with open(f"{root}/ansible_collections/{namespace}/{coll}/MANIFEST.json") as f:
        out.append(f"{namespace}.{coll} {json.load(f)['collection_info']['version']}")
print(", ".join(out))
PY
}

missing="$(missing_collections)"
if [[ -z "$missing" ]]; then
    say "collections: up to date in .collections ($(installed_versions))"
else
    GALAXY_LOG="$ROOT/.cache/galaxy.log"
    mkdir -p "$ROOT/.cache"
    say "collections: trying Galaxy (ansible-galaxy collection install -r requirements.yml)"
    if timeout 60 "$VENV/bin/ansible-galaxy" collection install -r requirements.yml \
            -p "$COLLECTIONS_DIR" >"$GALAXY_LOG" 2>&1 \
       && [[ -z "$(missing_collections)" ]]; then
        say "collections: installed from Galaxy"
    else
        say "collections: Galaxy install failed ($(grep -v "^[[:space:]]*$" "$GALAXY_LOG" | tail -n 1 | cut -c1-100)); falling back to the offline $ANSIBLE_BUNDLE wheel"
        mkdir -p "$WHEEL_DIR"
        wheel="$WHEEL_DIR/ansible-${ANSIBLE_BUNDLE#ansible==}-py3-none-any.whl"
        if [[ ! -f "$wheel" ]]; then
            "$VENV/bin/python" -m pip download -qq --no-deps "$ANSIBLE_BUNDLE" -d "$WHEEL_DIR"
        fi
        [[ -f "$wheel" ]] || die "pip download $ANSIBLE_BUNDLE did not produce $wheel"
        mkdir -p "$COLLECTIONS_DIR"
        # Python's zipfile rather than unzip(1): one less system package to need.
        # shellcheck disable=SC2086  # $missing is a space-separated list: one argument each
        "$VENV/bin/python" - "$wheel" "$COLLECTIONS_DIR" $missing <<'PY'
import os, shutil, sys, zipfile
wheel, dest, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as zf:
    for spec in specs:
        namespace, coll = spec.split(":")[0].split(".")
        prefix = f"ansible_collections/{namespace}/{coll}/"
        members = [m for m in zf.namelist() if m.startswith(prefix)]
        if not members:
            sys.exit(f"setup: ERROR: {wheel} does not contain {namespace}.{coll}")
        # Replace, never merge, so files of an older version do not linger.
        shutil.rmtree(os.path.join(dest, prefix), ignore_errors=True)
        zf.extractall(dest, members)
PY
    fi
    missing="$(missing_collections)"
    [[ -z "$missing" ]] || die "collections still missing or at the wrong major version: $missing"
    say "collections: installed in .collections ($(installed_versions))"
fi

say "done"
