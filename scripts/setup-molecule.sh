#!/usr/bin/env bash
# Prepare this checkout for the Molecule scenarios (molecule/, `make molecule`,
# tests/test_molecule.py): everything scripts/setup.sh installs, then Molecule
# in the same .venv, a container engine that works here, and the scenarios'
# image. Idempotent: a second run only checks (a few seconds).
#
# ST44_MOLECULE_DRIVER=docker uses an existing Docker engine instead of podman.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
VENV="$ROOT/.venv"
ENGINE="${ST44_MOLECULE_DRIVER:-podman}"
IMAGE="${ST44_MOLECULE_IMAGE:-localhost/st44-molecule-pg:bookworm}"
# Settings podman needs on machines like CI's (../shared/ENVIRONMENT.md): crun
# fails there ("cgroups in hybrid mode not supported") and the default rlimits
# are refused. Written only when a container does not start without them.
PODMAN_DROPIN=/etc/containers/containers.conf.d/st44-molecule.conf

export PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf 'setup-molecule: %s\n' "$*"; }
die() { printf 'setup-molecule: ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

case "$ENGINE" in
    podman | docker) ;;
    *) die "ST44_MOLECULE_DRIVER=$ENGINE: the scenarios run on podman (default) or docker" ;;
esac

# Pytest workers may start this at the same time: one sets up, the others wait.
mkdir -p .cache
exec 8>.cache/setup-molecule.lock
flock 8

bash scripts/setup.sh

# --- Molecule ---------------------------------------------------------------
STAMP="$VENV/.requirements-molecule.sha256"
want="$(cat requirements.txt requirements-dev.txt requirements-molecule.txt | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/molecule" ]]; then
    say "python packages: up to date with requirements-molecule.txt"
else
    say "python packages: installing requirements-molecule.txt"
    "$VENV/bin/python" -m pip install -qq -r requirements-molecule.txt
    echo "$want" > "$STAMP"
fi

# --- Container engine ---------------------------------------------------------
if [[ "$ENGINE" == podman ]]; then
    missing=()
    command -v podman >/dev/null || missing+=(podman)
    # The runtime the drop-in below selects, when it is needed.
    command -v runc >/dev/null || missing+=(runc)
    # A podman just installed has no image yet: building it needs debootstrap.
    if ((${#missing[@]})) && ! command -v debootstrap >/dev/null; then missing+=(debootstrap); fi
    if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
    say "podman: $(podman --version)"
else
    command -v docker >/dev/null || die "ST44_MOLECULE_DRIVER=docker but the docker command is missing"
    docker info >/dev/null 2>&1 || die "ST44_MOLECULE_DRIVER=docker but no Docker engine answers (docker info failed)"
    say "docker: $(docker --version)"
fi

# --- Image --------------------------------------------------------------------
# Building needs debootstrap: installed only when the image must be built.
export ST44_MOLECULE_DRIVER="$ENGINE" ST44_MOLECULE_IMAGE="$IMAGE"
if ! command -v debootstrap >/dev/null && ! bash scripts/build-molecule-image.sh --check >/dev/null; then
    apt_install debootstrap
fi
bash scripts/build-molecule-image.sh

# --- A container starts -------------------------------------------------------
probe() { "$ENGINE" run --rm --network=none "$IMAGE" true 2>&1; }
if out="$(probe)"; then
    say "$ENGINE: a container starts (--network=none)"
elif [[ "$ENGINE" == podman && ! -e "$PODMAN_DROPIN" && $EUID -eq 0 ]]; then
    say "podman: a container does not start: $(printf '%s' "$out" | tail -n 1 | cut -c1-160)"
    say "podman: writing $PODMAN_DROPIN (runtime runc, explicit ulimits)"
    mkdir -p "$(dirname "$PODMAN_DROPIN")"
    cat > "$PODMAN_DROPIN" <<'CONF'
# Written by scripts/setup-molecule.sh of the st44 database deploy: without
# these, containers fail to start on this machine (crun: "cgroups in hybrid mode
# not supported"; "setrlimit RLIMIT_NOFILE: Operation not permitted").
[containers]
default_ulimits = ["nofile=1024:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF
    out="$(probe)" || die "podman still cannot start a container: $out"
    say "podman: a container starts (--network=none)"
else
    die "$ENGINE cannot start a container from $IMAGE: $out"
fi

say "done"
