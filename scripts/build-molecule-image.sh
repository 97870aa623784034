#!/usr/bin/env bash
# Build the database-host image the Molecule scenarios run (molecule/README.md):
# Debian bookworm with PostgreSQL 15, Python 3 with psycopg2 and sudo, made with
# debootstrap from this machine's own Debian mirror and imported into the
# container engine. No registry is needed (none is reachable from CI).
#
#   scripts/build-molecule-image.sh            # build unless the image is there
#   scripts/build-molecule-image.sh --force    # build again
#   scripts/build-molecule-image.sh --check    # exit 0 if the image is up to date, 3 if not
#
# ST44_MOLECULE_DRIVER picks the engine (podman, the default, or docker);
# ST44_MOLECULE_IMAGE the name; ST44_MOLECULE_IMAGE_MIRROR overrides the mirror taken
# from /etc/apt/sources.list.d/debian.sources (or /etc/apt/sources.list).
# Needs root (debootstrap); takes about a minute.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ENGINE="${ST44_MOLECULE_DRIVER:-podman}"
IMAGE="${ST44_MOLECULE_IMAGE:-localhost/st44-molecule-pg:bookworm}"
SUITE=bookworm
# What the database host needs: the server (its package creates the cluster
# 15/main), Python with psycopg2 for the modules, sudo for become, and procps
# for pg_ctlcluster's process checks.
PACKAGES=(postgresql-15 python3 python3-psycopg2 sudo procps)
# Stored as a label: a change to the recipe rebuilds the image.
RECIPE="$(printf '%s\n' "$SUITE" "${PACKAGES[@]}" "cluster C.UTF-8" | sha256sum | cut -c1-12)"

say() { printf 'molecule-image: %s\n' "$*"; }
die() { printf 'molecule-image: ERROR: %s\n' "$*" >&2; exit 1; }

case "$ENGINE" in
    podman | docker) ;;
    *) die "ST44_MOLECULE_DRIVER=$ENGINE: the image can be built for podman or docker" ;;
esac
command -v "$ENGINE" >/dev/null || die "$ENGINE is not installed (scripts/setup-molecule.sh installs podman)"

force=false check=false
case "${1:-}" in
    --force) force=true ;;
    --check) check=true ;;
    "") ;;
    *) die "unknown argument '$1' (--force or --check)" ;;
esac

# Several scenario runs may start at once (pytest workers, other checkouts: the
# image belongs to the machine's engine, so the lock does too): one builds, the
# others wait for it and then find the image.
exec 9>"${TMPDIR:-/tmp}/st44-molecule-image.$(id -u).lock"
flock 9

current_recipe() {
    "$ENGINE" image inspect --format '{{ index .Config.Labels "st44.recipe" }}' "$IMAGE" 2>/dev/null || true
}

if ! $force && [[ "$(current_recipe)" == "$RECIPE" ]]; then
    say "$IMAGE: present in $ENGINE (recipe $RECIPE)"
    exit 0
fi
if $check; then
    say "$IMAGE: missing in $ENGINE or built from another recipe (wanted $RECIPE)"
    exit 3
fi

[[ $EUID -eq 0 ]] || die "building $IMAGE needs root (debootstrap); run this script as root once"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"

mirror="${ST44_MOLECULE_IMAGE_MIRROR:-}"
if [[ -z "$mirror" && -r /etc/apt/sources.list.d/debian.sources ]]; then
    # deb822: the URIs of the first stanza that carries the suite itself.
    mirror="$(awk -v suite="$SUITE" '
        /^[[:space:]]*$/ { if (uris != "" && has) { print uris; exit } uris = ""; has = 0; next }
        /^URIs:/ { uris = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
        END { if (uris != "" && has) print uris }' /etc/apt/sources.list.d/debian.sources | head -n 1)"
fi
if [[ -z "$mirror" && -r /etc/apt/sources.list ]]; then
    mirror="$(awk -v suite="$SUITE" '$1 == "deb" && $0 ~ (" " suite " ") { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)"
fi
[[ -n "$mirror" ]] || die "no Debian mirror for $SUITE in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list; set ST44_MOLECULE_IMAGE_MIRROR"

rootfs="$(mktemp -d /tmp/st44-molecule-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
# mktemp makes it 0700: it becomes the image's /, which postgres must traverse.
chmod 0755 "$rootfs"

say "debootstrap $SUITE from $mirror with ${PACKAGES[*]} (about a minute)"
start=$SECONDS
# LANG: the cluster that postgresql-15's postinst creates gets UTF-8 encoding,
# as on a real server, instead of SQL_ASCII.
LANG=C.UTF-8 LC_ALL=C.UTF-8 debootstrap --variant=minbase \
    --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; die "debootstrap failed (log above)"; }
rm -f "$rootfs.log"

clusters="$(chroot "$rootfs" /usr/bin/pg_lsclusters --no-header | awk '{ print $1 "/" $2 }')"
[[ "$clusters" == "15/main" ]] || die "the image has no PostgreSQL cluster 15/main (pg_lsclusters: '$clusters')"

# Smaller and reproducible: no package cache, no apt lists.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log

say "importing into $ENGINE as $IMAGE"
# Its progress output only on failure.
out="$(tar --numeric-owner -C "$rootfs" -c . | "$ENGINE" import \
    --change "ENV LANG=C.UTF-8" \
    --change "LABEL st44.recipe=$RECIPE" \
    --change 'CMD ["sleep", "infinity"]' \
    - "$IMAGE" 2>&1)" || { printf '%s\n' "$out" >&2; die "$ENGINE import failed (output above)"; }
[[ "$(current_recipe)" == "$RECIPE" ]] || die "$ENGINE import did not produce $IMAGE"
say "$IMAGE: built in $((SECONDS - start)) s (recipe $RECIPE)"
