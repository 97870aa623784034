# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a backup (or a restore) can be done on this host, before anything is changed, and the
backup directory made for the database OS user.

Shared by db_deploy_backups (state=check, and the start of state=dump) and db_deploy_release (a
deploy's ship call answers it too, and makes a missing directory when it could be used, so that
a deploy spends no call of its own on either).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess

from ansible.module_utils.common.text.formatters import bytes_to_human

# Where Debian and Ubuntu install each major version's client programs.
PG_LIB = "/usr/lib/postgresql"


def human(size):
    return bytes_to_human(size)


def choose_pg_bin(pg_bin_dir, installed, server_major):
    """The prefix of the client programs: the configured directory, else the smallest installed
    major at least the server's (an older pg_dump refuses a newer server), else the PATH."""
    if pg_bin_dir:
        return pg_bin_dir.rstrip("/") + "/"
    majors = sorted(int(n) for n in installed if n.isdigit() and n.isascii() and int(n) >= server_major)
    return "%s/%d/bin/" % (PG_LIB, majors[0]) if majors else ""


def client_major(version_text):
    """12 of 'pg_dump (PostgreSQL) 12.9 (Debian 12.9-1)'; 0 when it names no version."""
    match = re.search(r"\)\s*([0-9]+)", version_text or "") or re.search(r"([0-9]+)", version_text or "")
    return int(match.group(1)) if match else 0


def nearest_existing(path):
    """path or the nearest ancestor that exists: where a directory to be created will live."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def mode_allows_write(st, uid, gids):
    """Whether the mode bits let uid (in groups gids) create files in the directory st describes."""
    if uid == 0:
        return True
    if st.st_uid == uid:
        bits = stat.S_IWUSR | stat.S_IXUSR
    elif st.st_gid in gids:
        bits = stat.S_IWGRP | stat.S_IXGRP
    else:
        bits = stat.S_IWOTH | stat.S_IXOTH
    return st.st_mode & bits == bits


def cannot_write(directory, owner):
    """Why owner (or the user running this) cannot create files in directory, or None."""
    try:
        st = os.stat(directory)
    except OSError as exc:
        return exc.strerror
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    if os.statvfs(directory).f_flag & os.ST_RDONLY:
        return "Read-only file system"
    if owner and os.geteuid() == 0:
        import grp
        import pwd

        try:
            entry = pwd.getpwnam(owner)
        except KeyError:
            return "there is no OS user %s" % owner
        gids = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if owner in g.gr_mem}
        allowed = mode_allows_write(st, entry.pw_uid, gids)
    else:
        allowed = os.access(directory, os.W_OK | os.X_OK)
    if allowed:
        return None
    return "owner uid %d, group gid %d, mode %04o" % (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))


def check(directory, database, tool, pg_bin_dir, server_major, server_version, db_size, space_factor, owner, host, check_mode, must_exist=False):
    """(problem, facts): the client for the server's major version, a directory owner can write
    to (or will have: a missing one is created for it, unless must_exist), free space for db_size
    times space_factor. problem is None or the sentence to fail with; facts has pg_bin, version,
    free (when measured) and exists."""
    lead = "%s: %s" % (host or "this host", "a real run would stop here, before changing anything: " if check_mode else "")
    try:
        installed = [] if pg_bin_dir else os.listdir(PG_LIB)
    except OSError:
        installed = []
    pg_bin = choose_pg_bin(pg_bin_dir, installed, server_major)
    try:
        proc = subprocess.run([pg_bin + tool, "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60, check=False)
        rc, version = proc.returncode, proc.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rc, version = 127, ""
    facts = dict(pg_bin=pg_bin, version=version, exists=os.path.lexists(directory))
    if rc != 0 or client_major(version) < server_major:
        found = ("%s is %s" % (tool, version)) if rc == 0 else "no %s was found (%s%s)" % (tool, pg_bin, tool)
        return (
            "%sthe server runs PostgreSQL %s but %s. A %s needs %s of major version %d or newer: "
            "install postgresql-client-%d (or set db_deploy_pg_bin_dir). Nothing was changed."
            % (lead, server_version, found, "backup" if tool == "pg_dump" else "restore", tool, server_major, server_major)
        ), facts
    if must_exist and not facts["exists"]:
        return (
            "%sthe backup directory %s does not exist (a deploy makes it when it ships the release). Create "
            "it for %s, or point db_deploy_backup_dir elsewhere. Nothing was changed." % (lead, directory, owner or "the database OS user")
        ), facts
    if facts["exists"]:
        why = cannot_write(directory, owner)
        if why:
            return (
                "%sthe backup directory %s exists but %s cannot write to it (%s). Give %s write access to it "
                "or point db_deploy_backup_dir elsewhere. Nothing was changed." % (lead, directory, owner or "the database OS user", why, owner or "that user")
            ), facts
    vfs = os.statvfs(nearest_existing(directory))
    facts["free"] = free = vfs.f_bavail * vfs.f_frsize
    need = int(db_size * space_factor)
    if free < need:
        return (
            "%s%s has %s free, the backup of %s (%s) needs about %s. Free space there or point "
            "db_deploy_backup_dir elsewhere. Nothing was changed." % (lead, directory, human(free), database, human(db_size), human(need))
        ), facts
    return None, facts


def make_directory(directory, owner):
    """The backup directory, for owner only (0700). One that exists may be shared with other
    tools: its owner and mode are theirs, and it is never changed."""
    os.makedirs(os.path.dirname(os.path.abspath(directory)), exist_ok=True)
    os.mkdir(directory, 0o700)
    os.chmod(directory, 0o700)
    if owner and os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam(owner)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
