#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: db_deploy_backups
short_description: Own the db_deploy backups of one database, by manifest, never by file name
description:
  - >-
    Every backup the db_deploy role takes is a C(pg_dump) file with a manifest next to it,
    C(<backup>.json) (mode 0600), written when the dump was read back with C(pg_restore --list):
    the tool, the database, the cluster's C(system_identifier), the host, the time (UTC), the
    release, the run id, the migration versions recorded in the dump's history table, the size
    and the SHA-256 of the file.
  - A backup belongs to a database only when its manifest names exactly that database on exactly
    that cluster. Files without a manifest, with an unreadable manifest, or with another
    database's are never deleted, returned as restorable or rewritten; they are only counted.
  - The partial dump and pass file of a run carry the owner key (the first 16 hex digits of the
    SHA-256 of C(<system_identifier>/<database>)) in their name, so that leftovers of killed runs
    are recognised without a manifest.
  - >-
    O(state=check) is the whole pre-backup check in one call: the C(pg_dump) (or C(pg_restore)) for
    the server's major version, its version, a backup directory the database OS user can write to,
    and free space for the database size times O(space_factor) at the nearest existing ancestor of
    O(path); a missing O(path) counts as one that will be made (db_deploy_release makes it when a
    deploy ships its release). The restore runs it for C(pg_restore).
  - >-
    O(state=dump) is the whole backup in one call, as the database OS user: the same check first
    (O(path) must exist), then removes this database's
    leftovers of killed runs, runs C(pg_dump --format=custom) to O(partial) (0600), reads it back with
    C(pg_restore --list), reads the versions from the dump's history table, writes the manifest,
    links the dump to O(file) and rotates. It always removes O(partial) and the pass file O(pgpass).
  - O(state=list) and O(state=verify) only read. O(state=record), O(state=rotate) and
    O(state=leftovers) change files; in check mode they report what they would do.
version_added: "1.0.0"
author: st44 platform team (!UNKNOWN)
extends_documentation_fragment:
  - st44.db_deploy.attributes
options:
  path:
    description: The backup directory.
    type: path
    required: true
  database:
    description: The database whose backups these are.
    type: str
    required: true
  system_identifier:
    description: The cluster's system_identifier (pg_control_system()).
    type: str
    required: true
  state:
    description:
      - C(list) the database's own backups, foreign files and (given O(databases)) its kept copies.
      - C(record) write the manifest of the verified dump O(partial) and link it to O(file).
      - C(verify) check that own backup O(file) still has the size and SHA-256 of its manifest.
      - C(rotate) delete own backups beyond the newest O(keep), never O(file) and never one younger
        than O(min_age) seconds.
      - C(leftovers) delete the partial dumps and pass files of this database's killed runs older
        than O(min_age) seconds.
      - C(check) the checks before a backup (see the description).
      - C(dump) take, record and rotate a backup (see the description).
    type: str
    choices: [list, record, verify, rotate, leftovers, check, dump]
    default: list
  file:
    description:
      - Name (in O(path)) of the backup to record, verify or keep.
      - With O(state=dump), C({utc}) in it is replaced by the time the dump starts, as 20260101T000000Z.
    type: str
  partial:
    description: With O(state=record), the name of the verified dump written by pg_dump.
    type: str
  listing:
    description: With O(state=record), the output of C(pg_restore --list) of O(partial).
    type: str
  history:
    description: With O(state=record), C(pg_restore --data-only --table=<history table> -f -) of O(partial).
    type: str
    default: ""
  release:
    description: With O(state=record), the release.
    type: str
    default: ""
  run_id:
    description: With O(state=record), the run id.
    type: str
    default: ""
  host:
    description: With O(state=record), the inventory host name.
    type: str
    default: ""
  keep:
    description: With O(state=rotate), how many of the newest own backups to keep (at least 1).
    type: int
    default: 7
  min_age:
    description: With O(state=rotate) or O(state=leftovers), only files older than this many seconds.
    type: int
    default: 0
  pg_bin_dir:
    description:
      - With O(state=check), the directory of C(pg_dump) and C(pg_restore); empty for the smallest
        C(/usr/lib/postgresql/N/bin) with N at least O(server_major), else the PATH.
      - >-
        With O(state=dump), the same: the dump checks the client it chooses first.
    type: str
    default: ""
  tool:
    description: With O(state=check), the client whose version is checked.
    type: str
    choices: [pg_dump, pg_restore]
    default: pg_dump
  server_major:
    description: With O(state=check) or O(state=dump), the server's major version.
    type: int
    default: 0
  server_version:
    description: With O(state=check) or O(state=dump), the server's version, for messages.
    type: str
    default: ""
  db_size:
    description: With O(state=check) or O(state=dump), the database's size in bytes.
    type: int
    default: 0
  space_factor:
    description: With O(state=check) or O(state=dump), the free space needed as a multiple of O(db_size).
    type: float
    default: 1.2
  owner:
    description: With O(state=check) or O(state=dump), the database OS user that must be able to write to O(path);
      empty for the user the module runs as.
    type: str
    default: ""
  pg_env:
    description: With O(state=dump), the libpq environment of pg_dump (PGHOST, PGPASSFILE...); never a password.
    type: dict
    default: {}
  table:
    description: With O(state=dump), the history table, C(schema.table) or C(table) (schema public).
    type: str
    default: schema_migrations
  pgpass:
    description:
      - With O(state=dump), the pass file of this run, removed whatever happens. Given O(password), the
        module writes it (0600, after the check); otherwise the caller did (a dump in the background,
        whose arguments Ansible keeps in a file on the host).
    type: str
    default: ""
  password:
    description: With O(state=dump), the login password, written only to O(pgpass) for pg_dump.
    type: str
    default: ""
  leftover_age:
    description: With O(state=dump), remove this database's leftovers of killed runs older than this many seconds.
    type: int
    default: 86400
  databases:
    description:
      - With O(state=list), rows C({datname, comment, size}) of pg_database; those whose comment is
        this tool's marker for this database on this cluster, under their own name, are returned
        as RV(copies).
    type: list
    elements: dict
    default: []
'''

EXAMPLES = r'''
- name: List the backups of st44
  db_deploy_backups:
    path: /var/backups/st44-db
    database: st44
    system_identifier: "7301234567890123456"
  register: backups

- name: Keep the newest 7, never this run's
  db_deploy_backups:
    path: /var/backups/st44-db
    database: st44
    system_identifier: "7301234567890123456"
    state: rotate
    keep: 7
    file: st44-20260101T000000Z-r42-0badcafe.dump
    min_age: 30
'''

RETURN = r'''
owner_key:
  description: The key in the names of this database's partial dumps and pass files.
  returned: always
  type: str
  sample: 3f9a0c1d2e4b5a69
backups:
  description: The database's own backups, newest first, each its manifest plus C(path), C(intact) (the file
    is there with the manifest's size) and C(mtime).
  returned: always
  type: list
  elements: dict
  sample: [{file: st44-20260101T000000Z-r42-0badcafe.dump, database: st44, time: "2026-01-01T00:00:00Z",
            release: r42, versions: ["000", "001"], size: 12345, verified: true, intact: true}]
foreign:
  description: Names of files in the directory that are not this database's (left alone).
  returned: always
  type: list
  elements: str
  sample: [st44-eu-20260101T000000Z-r42-0badcafe.dump, notes.txt]
deleted:
  description: Paths deleted (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [/var/backups/st44-db/st44-20250101T000000Z-r41-00c0ffee.dump]
manifest:
  description: With O(state=record) and O(state=verify), the manifest of O(file).
  returned: when state is record or verify
  type: dict
  sample: {tool: db_deploy, file: st44-20260101T000000Z-r42-0badcafe.dump, versions: ["000"]}
copies:
  description: The databases kept aside by a restore of this database on this cluster (from O(databases)).
  returned: always
  type: list
  elements: dict
  sample: [{name: st44_before_restore_20260101120000, time: "2026-01-01T12:00:00Z", size: 8000000}]
pg_bin:
  description: With O(state=check), the prefix of the client programs (a directory with a trailing slash, or empty).
  returned: when state is check
  type: str
  sample: /usr/lib/postgresql/16/bin/
version:
  description: With O(state=check), what C(<tool> --version) printed.
  returned: when state is check
  type: str
  sample: pg_dump (PostgreSQL) 16.4
free:
  description: With O(state=check), the free bytes at the nearest existing ancestor of O(path).
  returned: when state is check
  type: int
  sample: 52428800000
file:
  description: With O(state=dump), the path of the backup.
  returned: when state is dump
  type: str
  sample: /var/backups/st44-db/st44-20260101T000000Z-r42-0badcafe.dump
size:
  description: With O(state=dump), the size of the backup in bytes.
  returned: when state is dump
  type: int
  sample: 12345
sha256:
  description: With O(state=dump), the SHA-256 of the backup.
  returned: when state is dump
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
duration_ms:
  description: With O(state=dump), how long the whole step took on the host.
  returned: when state is dump
  type: int
  sample: 2310
leftovers:
  description: With O(state=dump), the leftovers of killed runs removed (names).
  returned: when state is dump
  type: list
  elements: str
  sample: [.pgpass-3f9a0c1d2e4b5a69-0000beef]
notice:
  description: With O(state=dump), what it removed and left alone in a sentence for people; empty when nothing.
  returned: when state is dump
  type: str
msg:
  description: What happened, for people.
  returned: when state is check or dump
  type: str
  sample: "Backed up st44 to /var/backups/st44-db/st44-20260101T000000Z-r42-0badcafe.dump: 12.06 KB in 0.4 s"
'''

import datetime
import errno
import hashlib
import json
import os
import re
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.st44.db_deploy.plugins.module_utils import db_deploy_backup_check as backup_check
from ansible_collections.st44.db_deploy.plugins.module_utils.db_deploy_backup_check import human
from ansible_collections.st44.db_deploy.plugins.module_utils.db_deploy_files import sha256_of

TOOL = "db_deploy"
MANIFEST_FORMAT = 1
MANIFEST_SUFFIX = ".json"
COPY_MARKER = "before_restore"
# Where Debian and Ubuntu install each major version's client programs.


def owner_key(database, system_identifier):
    """Fixed-length digest of the exact owner: no name can be a prefix of another's."""
    return hashlib.sha256(("%s/%s" % (system_identifier, database)).encode("utf-8")).hexdigest()[:16]


def is_own(manifest, database, system_identifier):
    return (
        isinstance(manifest, dict)
        and manifest.get("tool") == TOOL
        and manifest.get("database") == database
        and manifest.get("system_identifier") == str(system_identifier)
    )


def dump_dbname(listing):
    """The database a pg_restore --list header names (';     dbname: X'), or None."""
    for line in (listing or "").splitlines():
        match = re.match(r"^;\s+dbname: (.*)$", line)
        if match:
            return match.group(1)
    return None


def history_versions(copy_text):
    """The versions in the COPY block pg_restore prints for the history table, sorted."""
    versions = []
    column = None
    for line in (copy_text or "").splitlines():
        if column is None:
            match = re.match(r"^COPY \S.* \((.*)\) FROM stdin;$", line)
            if match:
                names = [c.strip().strip('"') for c in match.group(1).split(",")]
                column = names.index("version") if "version" in names else -1
            continue
        if line == "\\.":
            break
        fields = line.split("\t")
        if 0 <= column < len(fields) and fields[column] != "\\N":
            versions.append(fields[column])
    # By number, as postgresql_migrate applies them: 000 before 9 before 10.
    return sorted(versions, key=lambda v: (0, int(v), v) if v.isdigit() and v.isascii() else (1, 0, v))


def build_manifest(database, system_identifier, file, size, sha256, listing, history, release, run_id, host, now):
    return {
        "tool": TOOL,
        "format": MANIFEST_FORMAT,
        "file": file,
        "database": database,
        "system_identifier": str(system_identifier),
        "host": host,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "release": release,
        "run_id": run_id,
        "versions": history_versions(history),
        "size": size,
        "sha256": sha256,
        "verified": dump_dbname(listing) == database,
        "verified_by": "pg_restore --list",
    }


def read_manifest(path):
    """The manifest's dict, or None when it is not one (unreadable, not JSON, not a regular file)."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > 1024 * 1024:
            return None
        with open(path, "rb") as handle:
            data = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def scan(directory, database, system_identifier):
    """(own backups newest first, own leftovers, foreign names) of a directory listing."""
    key = owner_key(database, system_identifier)
    leftover = re.compile(r"^(\.pgpass-%s-[0-9a-f]{8}|.+\.%s\.dump\.partial)$" % (key, key))
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return [], [], []
        raise
    own, leftovers, claimed = [], [], set()
    for name in names:
        if not name.endswith(MANIFEST_SUFFIX):
            continue
        manifest = read_manifest(os.path.join(directory, name))
        # The manifest names its file, which must be the name it sits next to: a copied or
        # renamed manifest cannot make another file this database's.
        if not is_own(manifest, database, system_identifier) or not isinstance(manifest.get("file"), str) or manifest["file"] + MANIFEST_SUFFIX != name:
            continue
        entry = dict(manifest, manifest=name, path=os.path.join(directory, manifest["file"]))
        try:
            st = os.lstat(entry["path"])
            entry["intact"] = stat.S_ISREG(st.st_mode) and st.st_size == manifest.get("size")
            entry["mtime"] = st.st_mtime
        except OSError:
            entry["intact"], entry["mtime"] = False, None
        own.append(entry)
        claimed.update((name, manifest["file"]))
    for name in names:
        if name not in claimed and leftover.match(name) and os.path.isfile(os.path.join(directory, name)):
            leftovers.append(name)
            claimed.add(name)
    own.sort(key=lambda e: (e.get("time") or "", e.get("mtime") or 0), reverse=True)
    foreign = [n for n in names if n not in claimed]
    return own, leftovers, foreign


def to_rotate(own, keep, current, older_than):
    """The own backups to delete: beyond the newest keep (current counted among them), never
    current, never a file changed at or after older_than (a concurrent run's)."""
    candidates = [e for e in own if e["file"] != current and e["mtime"] is not None and e["mtime"] < older_than]
    room = max(keep, 1) - (1 if any(e["file"] == current for e in own) else 0)
    return candidates[max(room, 0) :]


def copy_marker(database, system_identifier, name, restored_file, now):
    """The COMMENT ON DATABASE of a database kept aside by a restore."""
    return json.dumps(
        {
            "tool": TOOL,
            "kind": COPY_MARKER,
            "database": database,
            "system_identifier": str(system_identifier),
            "name": name,
            "restored_file": restored_file,
            "time": now,
        },
        sort_keys=True,
    )


def own_copies(rows, database, system_identifier):
    """The rows of pg_database kept aside by this tool for this database, under the name it gave them."""
    copies = []
    for row in rows:
        try:
            marker = json.loads(row.get("comment") or "")
        except ValueError:
            continue
        if (
            is_own(marker, database, system_identifier)
            and marker.get("kind") == COPY_MARKER
            and marker.get("name") == row.get("datname")
            and row.get("datname") != database
        ):
            copies.append({"name": row["datname"], "time": marker.get("time"), "size": row.get("size"), "restored_file": marker.get("restored_file")})
    return sorted(copies, key=lambda c: c["name"])


def split_table(table):
    """(schema, name) of the history table as pg_restore --schema/--table take them."""
    schema, _dot, name = table.rpartition(".")
    return schema or "public", name


def check_backup(module, dumping=False):
    """state=check, and the start of state=dump: everything a backup needs, before anything is
    changed (module_utils/db_deploy_backup_check.py). The dump runs as the database OS user: it
    needs the directory to exist (a deploy's ship call makes it)."""
    p = module.params
    problem, facts = backup_check.check(
        p["path"],
        p["database"],
        p["tool"],
        p["pg_bin_dir"],
        p["server_major"],
        p["server_version"],
        p["db_size"],
        p["space_factor"],
        p["owner"],
        p["host"],
        module.check_mode,
        must_exist=dumping,
    )
    if problem:
        module.fail_json(msg=problem, **facts)
    return dict(facts, changed=False, msg="A %s can be done" % ("backup" if p["tool"] == "pg_dump" else "restore"))


def remove_quietly(path):
    if not path:
        return
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def publish(partial, target, manifest):
    """Write the manifest, then give the whole dump its name."""
    write_manifest(target + MANIFEST_SUFFIX, manifest)
    try:
        # A hard link, not a rename: it fails instead of replacing a file of that name.
        os.link(partial, target)
    except OSError:
        os.unlink(target + MANIFEST_SUFFIX)
        raise


def run_client(module, argv, env, what, partial):
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if proc.returncode != 0:
        # pg_dump's own words (a full disk, a missing role) are in stderr: the role's failure text shows them.
        module.fail_json(msg="%s exited with %d" % (what, proc.returncode), rc=proc.returncode, stderr=proc.stderr.strip(), cmd=" ".join(argv), partial=partial)
    return proc.stdout


def dump_backup(module):
    """state=dump: leftovers, pg_dump, read back, manifest, rename, rotation; in one call so that a
    backup costs one round trip. The pass file and the partial are removed whatever happens."""
    p = module.params
    started = time.time()
    pg_bin = check_backup(module, dumping=True)["pg_bin"]
    directory, database, sysid = p["path"], p["database"], str(p["system_identifier"])
    file = plain_name(module, p["file"].replace("{utc}", utc_now().strftime("%Y%m%dT%H%M%SZ")), "file")
    partial = os.path.join(directory, plain_name(module, p["partial"], "partial"))
    target = os.path.join(directory, file)
    env = dict(os.environ)
    env.update({k: str(v) for k, v in p["pg_env"].items()})
    env.pop("PGPASSWORD", None)
    try:
        if p["password"] and p["pgpass"]:
            write_pgpass(p["pgpass"], p["password"])
        _own, leftovers, _foreign = scan(directory, database, sysid)
        old_enough = started - max(p["leftover_age"], 0)
        removed = [n for n in leftovers if os.path.join(directory, n) != p["pgpass"] and os.lstat(os.path.join(directory, n)).st_mtime < old_enough]
        for name in removed:
            remove_quietly(os.path.join(directory, name))

        # Created 0600 from the start: the dump is readable by its owner only while it is written, too.
        old_umask = os.umask(0o077)
        try:
            run_client(module, [pg_bin + "pg_dump", "--format=custom", "--no-password", "--file=" + partial], env, "pg_dump", partial)
        finally:
            os.umask(old_umask)
        os.chmod(partial, 0o600)
        # The dump is whole now: hash it while pg_restore reads it back (a big dump's hash takes
        # about as long as both reads).
        with ThreadPoolExecutor(1) as pool:
            hashing = pool.submit(sha256_of, partial)
            listing = run_client(module, [pg_bin + "pg_restore", "--list", partial], env, "pg_restore --list", partial)
            # From the dump itself, not the live table: a concurrent deploy may migrate between a
            # query and pg_dump's snapshot.
            schema, table = split_table(p["table"])
            history = run_client(
                module,
                [pg_bin + "pg_restore", "--data-only", "--table=" + table, "--schema=" + schema, "--file=-", partial],
                env,
                "pg_restore --data-only",
                partial,
            )
            size, sha256 = os.path.getsize(partial), hashing.result()
        manifest = build_manifest(database, sysid, file, size, sha256, listing, history, p["release"], p["run_id"], p["host"], utc_now())
        if not manifest["verified"]:
            module.fail_json(msg="The dump %s names database %r in its header, not %r: not recorded as a backup." % (partial, dump_dbname(listing), database))
        publish(partial, target, manifest)
        # Only backups older than this run: a deploy running at the same time may be about to
        # migrate behind its backup. Ages are measured on the host, so clocks need not agree.
        own, _leftovers, foreign = scan(directory, database, sysid)
        doomed = []
        for entry in to_rotate(own, p["keep"], file, started - max(p["min_age"], 0)):
            doomed += [entry["path"], os.path.join(directory, entry["manifest"])]
        for path in doomed:
            remove_quietly(path)
    finally:
        remove_quietly(partial)
        remove_quietly(p["pgpass"])
    gone = set(doomed)
    took = time.time() - started
    kept = [e for e in own if e["path"] not in gone]
    return dict(
        changed=True,
        file=target,
        size=size,
        sha256=sha256,
        duration_ms=int(took * 1000),
        manifest=manifest,
        leftovers=removed,
        deleted=doomed,
        foreign=foreign,
        backups=kept,
        notice=dump_notice(database, removed, doomed, kept, foreign),
        msg="Backed up %s to %s: %s in %.1f s" % (database, target, human(size), took),
    )


def dump_notice(database, leftovers, deleted, kept, foreign):
    """What a dump removed and left alone, for people (the db_deploy callback prints it); empty
    when it removed nothing and found nothing else in the directory."""
    removed = leftovers + [os.path.basename(p) for p in deleted if not p.endswith(MANIFEST_SUFFIX)]
    if not removed and not foreign:
        return ""
    return "Removed %s (%d backups of %s kept). Left alone: %d files not made for %s on this cluster." % (
        ", ".join(removed) or "no backup",
        len(kept),
        database,
        len(foreign),
        database,
    )


def write_pgpass(path, password):
    """A pass file for any host, port, database and user (libpq's format escapes \\ and :)."""
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("*:*:*:*:%s\n" % escaped)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def plain_name(module, name, what):
    if not name or "/" in name or name in (".", ".."):
        module.fail_json(msg="%s must be a file name in %s, not %r." % (what, module.params["path"], name))
    return name


def write_manifest(path, manifest):
    """0600, created exclusively: an existing manifest is never replaced."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            database=dict(type="str", required=True),
            system_identifier=dict(type="str", required=True),
            state=dict(type="str", default="list", choices=["list", "record", "verify", "rotate", "leftovers", "check", "dump"]),
            file=dict(type="str"),
            partial=dict(type="str"),
            listing=dict(type="str"),
            history=dict(type="str", default=""),
            release=dict(type="str", default=""),
            run_id=dict(type="str", default=""),
            host=dict(type="str", default=""),
            keep=dict(type="int", default=7),
            min_age=dict(type="int", default=0),
            databases=dict(type="list", elements="dict", default=[]),
            pg_bin_dir=dict(type="str", default=""),
            tool=dict(type="str", default="pg_dump", choices=["pg_dump", "pg_restore"]),
            server_major=dict(type="int", default=0),
            server_version=dict(type="str", default=""),
            db_size=dict(type="int", default=0),
            space_factor=dict(type="float", default=1.2),
            owner=dict(type="str", default=""),
            pg_env=dict(type="dict", default={}),
            table=dict(type="str", default="schema_migrations"),
            # A path to the pass file, not a secret: its name alone makes validate-modules suspect one.
            pgpass=dict(type="str", default="", no_log=False),
            password=dict(type="str", default="", no_log=True),
            leftover_age=dict(type="int", default=86400),
        ),
        required_if=[("state", "record", ("file", "partial", "listing")), ("state", "verify", ("file",)), ("state", "dump", ("file", "partial"))],
        supports_check_mode=True,
    )
    p = module.params
    directory, database, sysid = p["path"], p["database"], str(p["system_identifier"])
    result = dict(changed=False, owner_key=owner_key(database, sysid), deleted=[], backups=[], foreign=[], copies=own_copies(p["databases"], database, sysid))

    if p["state"] == "check":
        module.exit_json(**check_backup(module))
    if p["state"] == "dump":
        if module.check_mode:
            module.exit_json(changed=True, msg="A real run would back up %s here" % database)
        module.exit_json(**dump_backup(module))

    if p["state"] == "record":
        file = plain_name(module, p["file"], "file")
        partial = os.path.join(directory, plain_name(module, p["partial"], "partial"))
        target = os.path.join(directory, file)
        manifest = build_manifest(
            database, sysid, file, os.path.getsize(partial), sha256_of(partial), p["listing"], p["history"], p["release"], p["run_id"], p["host"], utc_now()
        )
        if not manifest["verified"]:
            module.fail_json(
                msg="The dump %s names database %r in its header, not %r: not recorded as a backup." % (partial, dump_dbname(p["listing"]), database)
            )
        if not module.check_mode:
            publish(partial, target, manifest)
        result.update(changed=True, manifest=manifest)
        module.exit_json(**result)

    own, leftovers, foreign = scan(directory, database, sysid)
    result.update(backups=own, foreign=foreign)

    if p["state"] == "verify":
        file = plain_name(module, p["file"], "file")
        entry = next((e for e in own if e["file"] == file), None)
        if entry is None:
            module.fail_json(msg="%s is not a backup of %s on this cluster." % (file, database), **result)
        if not entry["intact"] or sha256_of(entry["path"]) != entry.get("sha256"):
            module.fail_json(
                msg="%s is not the file its manifest describes (size or SHA-256 differ): "
                "it was changed after the backup. Nothing was restored." % entry["path"],
                **result,
            )
        result["manifest"] = entry
    elif p["state"] in ("rotate", "leftovers"):
        older_than = time.time() - max(p["min_age"], 0)
        if p["state"] == "rotate":
            doomed = []
            for entry in to_rotate(own, p["keep"], p["file"], older_than):
                doomed += [entry["path"], os.path.join(directory, entry["manifest"])]
        else:
            doomed = [os.path.join(directory, n) for n in leftovers if os.lstat(os.path.join(directory, n)).st_mtime < older_than]
        for path in doomed:
            if not module.check_mode:
                try:
                    os.unlink(path)
                except OSError as exc:
                    if exc.errno != errno.ENOENT:
                        raise
        result.update(deleted=doomed, changed=bool(doomed))
        if doomed and p["state"] == "rotate":
            gone = set(doomed)
            result["backups"] = [e for e in own if e["path"] not in gone]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
