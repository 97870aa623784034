"""deploy-db.yml where the backup cannot be written or the database cannot be reached.

Each case must stop before any migration runs, say what went wrong and what to
do, leave no partial backup looking like a good one, and (where the cause goes
away) converge on the rerun.

The backup faults use real filesystems: a tmpfs mounted read-only over the
backup directory (a backup volume remounted read-only after errors), and a 1 MiB
tmpfs that fills up while pg_dump writes (ENOSPC from the kernel, not a
simulation). The preflight's free-space estimate would refuse a 1 MiB directory
for this database, and rightly; the disk-full case lowers
db_deploy_backup_space_factor so that the estimate is wrong, as it is when the
dump compresses worse than expected or another process fills the disk meanwhile.
"""

from __future__ import annotations

import os
import pwd
import subprocess

import pytest

from tests.support.db_state import catalog, recorded_versions
from tests.support.pgcluster import free_port
from tests.support.st44 import ST44_VERSIONS

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def tmpfs():
    """tmpfs(path, size, read_only=False): a real small filesystem mounted at path."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mounted = []

    def _mount(path, size: str, read_only: bool = False):
        path.mkdir(parents=True, exist_ok=True)
        # A volume mounted for the database OS user, as an operator would: the deploy sets the
        # owner and mode only of a backup directory it creates itself.
        postgres = pwd.getpwnam("postgres")
        options = f"size={size},mode=0700,uid={postgres.pw_uid},gid={postgres.pw_gid}" + (",ro" if read_only else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
        mounted.append(path)
        return path

    yield _mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def assert_refused_before_migrating(run, db, before):
    assert run.rc != 0
    assert "No migration was applied." in run.output
    assert catalog(db) == before
    assert run.report["result"] == "failed" and run.report["backup_file"] is None
    assert "No backup was taken by this run." in run.report["error"]


def test_read_only_backup_directory_stops_before_migrating(deploy, db, site, tmpfs):
    tmpfs(site.backups, "64m", read_only=True)
    before = catalog(db)

    run = deploy()

    assert_refused_before_migrating(run, db, before)
    assert "Read-only file system" in run.output
    # Refused by the check before the pass file is written, not by pg_dump.
    assert 'failed at "Check that a backup can be taken' in run.output
    assert f"the backup directory {site.backups} exists but postgres cannot write to it" in run.output
    assert os.listdir(site.backups) == []


def test_disk_full_during_pg_dump_leaves_no_backup_and_applies_nothing(deploy, db, site, socket_vars, tmpfs):
    # About 2 MiB of compressed dump for a 1 MiB filesystem.
    db.sql("CREATE TABLE filler (v text)")
    db.sql("INSERT INTO filler SELECT md5(random()::text) || md5(random()::text) FROM generate_series(1, 60000)")
    tmpfs(site.backups, "1m")
    before = catalog(db)
    host_vars = dict(socket_vars, db_deploy_backup_space_factor=0.01)

    run = deploy(vars=host_vars)

    assert_refused_before_migrating(run, db, before)
    assert 'failed at "Dump the database with pg_dump (custom format)"' in run.output
    assert "No space left on device" in run.output  # pg_dump's own words, in the failure message
    assert "No space left on device" in run.report["error"]
    assert os.listdir(site.backups) == [], "a partial dump (or the pass file) was left behind"
    assert os.statvfs(site.backups).f_bfree == os.statvfs(site.backups).f_blocks  # the space is free again

    # Room again (a bigger volume): the same deploy converges.
    subprocess.run(["umount", str(site.backups)], check=True)
    site.backups.rmdir()  # the mount point: the deploy creates the directory itself
    rerun = deploy(vars=host_vars)
    assert rerun.rc == 0, rerun.output
    assert recorded_versions(db) == ST44_VERSIONS
    assert len(site.backup_files()) == 1


def test_missing_pg_dump_is_refused_before_anything_changes(deploy, db, site, socket_vars):
    empty_bin = site.root / "no-client-bin"
    empty_bin.mkdir()
    before = catalog(db)

    run = deploy(vars=dict(socket_vars, db_deploy_pg_bin_dir=str(empty_bin)))

    assert run.rc != 0
    assert f"no pg_dump was found ({empty_bin}/pg_dump)" in run.output
    assert "install postgresql-client-15" in run.output and "Nothing was changed." in run.output
    assert catalog(db) == before
    # Checked once the plan says a backup will be taken: after shipping, before any change.
    assert 'failed at "Check that a backup can be taken' in run.output
    assert not site.backups.exists()  # not even created


@pytest.mark.parametrize("fault", ["server unreachable", "wrong database name"])
def test_unreachable_database_is_refused_before_anything_changes(deploy, db, site, socket_vars, fault):
    if fault == "server unreachable":
        host_vars = dict(socket_vars, db_deploy_login_port=free_port())  # nothing listens there
        expected = "Is the server running locally and accepting connections"
    else:
        host_vars = dict(socket_vars, db_deploy_db_name=db.name + "_typo")
        expected = f'database "{db.name}_typo" does not exist'
    before = catalog(db)

    run = deploy(vars=host_vars)

    assert run.rc != 0
    assert 'failed at "Connect and read the server version, role and database size"' in run.output
    assert expected in run.output and expected in run.report["error"]
    assert "No migration was applied. No backup was taken by this run." in run.report["error"]
    assert catalog(db) == before
    assert site.shipped() == [] and site.backup_files() == []
