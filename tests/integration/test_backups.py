"""Backups of databases whose names share a prefix, in one directory.

st44, st44-eu, st44_eu and st44.x (here: the test's database and three namesakes) deploy into
ONE backup directory with a small db_deploy_backup_keep. Each keeps exactly its own newest
backups; nothing without a manifest, nothing of another database or of a namesake on another
cluster, and no other database's leftovers are ever deleted.
"""

from __future__ import annotations

import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.namesakes import create, drop, host_vars, manifests, namesakes, own_backups, system_identifier
from tests.support.db_state import catalog, recorded_versions
from tests.support.deploy_runner import mode_of
from tests.support.st44 import ST44_VERSIONS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_four_namesakes_in_one_directory_keep_only_their_own_backups(deploy, pg, db, site, socket_vars):
    names = namesakes(db)
    create(pg, names)
    try:
        site.backups.mkdir(mode=0o700)
        os.chown(site.backups, *_postgres_ids())
        two_days_ago = time.time() - 48 * 3600
        # Not made by this tool (no manifest), or by it for someone else: never deleted.
        strangers = {
            f"{db.name}-20200101T000000Z-old-deadbeef.dump": b"PGDMP by hand",
            f"{db.name}-eu-20200101T000000Z-old-deadbeef.dump": b"PGDMP by hand",
            "notes.txt": b"keep me",
            # Leftovers of another tool or of an older version of this one: no owner key in the name.
            ".pgpass-deadbeef": b"*:*:*:*:other",
            f"{db.name}-20200101T000000Z-old-deadbeef.dump.partial": b"PGDMP",
            # A manifest that cannot be read, next to its dump.
            f"{db.name}-20200102T000000Z-old-0badf00d.dump": b"PGDMP",
            f"{db.name}-20200102T000000Z-old-0badf00d.dump.json": b"{not json",
        }
        # The same database name on another cluster, a valid manifest otherwise.
        namesake = f"{db.name}-20200103T000000Z-old-c0ffee00.dump"
        strangers[namesake] = b"PGDMP other cluster"
        strangers[namesake + ".json"] = json.dumps(
            {
                "tool": "db_deploy",
                "format": 1,
                "file": namesake,
                "database": db.name,
                "system_identifier": "1" + system_identifier(pg)[1:] if system_identifier(pg)[0] != "1" else "2",
                "time": "2020-01-03T00:00:00Z",
                "release": "old",
                "versions": [],
                "size": 19,
                "verified": True,
            }
        ).encode()
        for name, content in strangers.items():
            path = site.backups / name
            path.write_bytes(content)
            os.utime(path, (two_days_ago, two_days_ago))

        for round_ in range(2):
            for name in names:
                run = deploy(vars=host_vars(socket_vars, name, db_deploy_backup_keep=1, db_deploy_backup_always=True, db_deploy_leftover_hours=1))
                assert run.rc == 0, run.output[-4000:]
                assert run.report["backup_file"], run.output[-2000:]
                if round_ == 1:
                    assert "files not made for " + name in run.output

        for name in names:
            (backup,) = own_backups(site, name, pg)  # keep 1: the second round's, the first rotated away
            facts = manifests(site)[backup.name]
            assert facts["database"] == name and facts["verified"] is True
            assert facts["system_identifier"] == system_identifier(pg)
            assert facts["versions"] == ["000", "001", "011", "012", "013", "014", "015", "016"]
            assert mode_of(backup) == mode_of(site.backups / (backup.name + ".json")) == 0o600
        for name, content in strangers.items():
            assert (site.backups / name).read_bytes() == content, f"{name} was deleted or changed"
        # Exactly: four backups, their manifests and the strangers; no pass file, no partial.
        expected = (
            set(strangers) | {p.name for n in names for p in own_backups(site, n, pg)} | {p.name + ".json" for n in names for p in own_backups(site, n, pg)}
        )
        assert {p.name for p in site.backups.iterdir()} == expected
    finally:
        drop(pg, names[1:])


def test_killed_runs_leftovers_are_removed_only_for_their_own_database(deploy, pg, db, site, socket_vars):
    """A killed run's pass file and partial dump carry the owner key; st44's next backup removes
    its own old ones, never st44-eu's."""
    names = namesakes(db)[:2]
    create(pg, names)
    try:
        keys = {}
        for name in names:
            run = deploy(vars=host_vars(socket_vars, name, db_deploy_backup_always=True), verbosity=1)
            assert run.rc == 0, run.output[-3000:]
            keys[name] = _owner_key(pg, name)
        two_days_ago = time.time() - 48 * 3600
        leftovers = {}
        for name in names:
            k = keys[name]
            leftovers[name] = [f".pgpass-{k}-0000beef", f"{name}-20200101T000000Z-r-0000beef.{k}.dump.partial"]
            for left in leftovers[name]:
                (site.backups / left).write_text("killed")
                os.utime(site.backups / left, (two_days_ago, two_days_ago))

        run = deploy(vars=host_vars(socket_vars, db.name, db_deploy_backup_always=True))

        assert run.rc == 0, run.output[-3000:]
        for left in leftovers[db.name]:
            assert not (site.backups / left).exists()
            assert left in run.output
        for left in leftovers[names[1]]:
            assert (site.backups / left).exists(), f"{left} of {names[1]} was deleted"
    finally:
        drop(pg, names[1:])


def _owner_key(pg, name):
    import hashlib

    return hashlib.sha256(f"{system_identifier(pg)}/{name}".encode()).hexdigest()[:16]


def _postgres_ids():
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def test_a_shared_backup_directory_keeps_its_owner_and_mode(deploy, db, site):
    """Pointed at a directory other tools use, the deploy writes its backup there and changes
    neither the directory's mode nor its owner (it once made it 0700 for postgres)."""
    site.backups.mkdir()
    os.chown(site.backups, 0, 0)
    site.backups.chmod(0o1777)  # like /tmp: anyone may write, only owners delete
    other = site.backups / "nightly-app.tar"
    other.write_text("another tool's file")

    run = deploy()

    assert run.rc == 0, run.output[-3000:]
    assert mode_of(site.backups) == 0o1777 and site.backups.stat().st_uid == 0
    assert other.read_text() == "another tool's file"
    assert len(site.backup_files()) == 1 and mode_of(site.backup_files()[0]) == 0o600


# --- The checks stop a deploy only when a backup will be taken; the dump is one call --------


def test_a_dry_run_with_something_pending_and_no_pg_dump_says_the_backup_would_fail(deploy, db, site, socket_vars, check_mode_lock):
    empty_bin = site.root / "no-client-bin"
    empty_bin.mkdir()
    before = catalog(db)

    with check_mode_lock():  # its temporary copy in /tmp is not another dry run's leftover
        run = deploy(vars=dict(socket_vars, db_deploy_pg_bin_dir=str(empty_bin)), check=True)

    assert run.rc != 0
    assert "a real run would stop here, before changing anything" in run.output
    assert f"no pg_dump was found ({empty_bin}/pg_dump)" in run.output and "Nothing was changed." in run.output
    assert catalog(db) == before
    assert not site.backups.exists() and site.shipped() == []


def test_an_existing_backup_directory_the_database_user_cannot_write_is_refused_before_migrating(deploy, db, site, socket_vars):
    site.backups.mkdir(mode=0o755)  # root's: postgres may read it, not write to it
    os.chown(site.backups, 0, 0)
    site.backups.chmod(0o755)
    before = catalog(db)

    run = deploy()

    assert run.rc != 0
    assert 'failed at "Check that a backup can be taken' in run.output
    assert f"the backup directory {site.backups} exists but postgres cannot write to it" in run.output
    assert "No migration was applied. No backup was taken by this run." in run.report["error"]
    assert catalog(db) == before
    assert os.listdir(site.backups) == [] and mode_of(site.backups) == 0o755


def test_a_deploy_with_nothing_pending_spends_no_call_on_the_backup(deploy, db, site, socket_vars, tmp_path):
    assert deploy().rc == 0
    empty_bin = tmp_path / "no-client-bin"
    empty_bin.mkdir()

    # The ship call answers whether a backup could be taken; only a due backup acts on it.
    run = deploy(vars=dict(socket_vars, db_deploy_pg_bin_dir=str(empty_bin)), verbosity=3)

    assert run.rc == 0, run.output[-3000:]
    used = re.findall(r"^Using module file (\S+)", run.output, re.M)
    assert used, "no module call seen at -vvv"
    assert not [m for m in used if m.endswith("db_deploy_backups.py")], used
    assert len(site.backup_files()) == 1  # the first deploy's


def test_a_failed_dump_leaves_no_pass_file_and_no_partial_and_a_rerun_backs_up(deploy, db, site, tcp_login):
    fake_bin = site.root / "failing-bin"
    fake_bin.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        script = fake_bin / tool
        # Writes part of a dump, as pg_dump does before a full disk or a lost connection stops it.
        script.write_text(
            "#!/bin/sh\n"
            f'[ "$1" = --version ] && {{ echo "{tool} (PostgreSQL) 99.0"; exit 0; }}\n'
            'for a; do case "$a" in --file=*) echo PGDMP-partial > "${a#--file=}";; esac; done\n'
            f'echo "{tool}: error: connection to server lost (simulated)" >&2\nexit 1\n'
        )
        script.chmod(0o755)
    before = catalog(db)

    failed = deploy(vars=dict(tcp_login.vars, db_deploy_pg_bin_dir=str(fake_bin)), secrets=tcp_login.secrets())

    assert failed.rc != 0
    assert 'failed at "Dump the database with pg_dump (custom format)"' in failed.output
    assert "connection to server lost (simulated)" in failed.report["error"]
    assert os.listdir(site.backups) == [], "the pass file or the partial dump was left behind"
    assert catalog(db) == before

    run = deploy(vars=tcp_login.vars, secrets=tcp_login.secrets())

    assert run.rc == 0, run.output[-3000:]
    (backup,) = site.backup_files()
    assert sorted(os.listdir(site.backups)) == [backup.name, backup.name + ".json"]
    assert run.report["backup_file"] == str(backup)
    assert tcp_login.password not in failed.output + run.output


def test_a_dump_of_a_big_database_says_how_far_it_got(deploy, db, site, socket_vars):
    """db_deploy_progress_min_size 0: every dump is big. pg_dump is held for a few seconds by a
    lock on a table of the app, as a long dump would take them. Each poll is a line of the
    default output."""
    db.sql("CREATE TABLE app_filler (v text)")
    db.sql("INSERT INTO app_filler SELECT md5(g::text) FROM generate_series(1, 1000) g")
    host = dict(socket_vars, db_deploy_progress_min_size=0, db_deploy_progress_interval=1)

    with ThreadPoolExecutor(1) as pool:
        with db.open_transaction("LOCK TABLE app_filler IN ACCESS EXCLUSIVE MODE"):
            future = pool.submit(deploy, vars=host)
            deadline = time.time() + 240
            # pg_dump opens its file before it asks for the lock it then waits for.
            while not (site.backups.exists() and list(site.backups.glob("*.dump.partial"))):
                assert not future.done(), future.result().output[-3000:]
                assert time.time() < deadline, "pg_dump never started"
                time.sleep(0.2)
            time.sleep(3.5)
        run = future.result()

    assert run.rc == 0, run.output[-3000:]
    lines = re.findall(rf"^\[localhost\] pg_dump of {re.escape(db.name)}: \d+ MB written, \d+ s$", run.stdout, re.M)
    assert len(lines) >= 2, run.output[-3000:]
    assert recorded_versions(db) == ST44_VERSIONS
    (backup,) = site.backup_files()
    assert sorted(os.listdir(site.backups)) == [backup.name, backup.name + ".json"]
    assert run.report["backup_file"] == str(backup)
