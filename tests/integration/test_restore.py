"""restore-db.yml, backups-db.yml and drop-copy-db.yml with namesake databases in one backup
directory: a restore takes only its own database's backup, on one host,
says what it restores; kept copies are listed and only a marked copy is dropped."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.namesakes import create, drop, host_vars, insert_user, kept_copies, namesakes, own_backups, users
from tests.support import REPO_ROOT, migrate_runner
from tests.support.db_state import recorded_versions

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RESTORE = "playbooks/restore-db.yml"
LIST = "playbooks/backups-db.yml"
DROP = "playbooks/drop-copy-db.yml"


def deploy_with_a_row(deploy, pg, socket_vars, name):
    """Deploy name, add a user named after it, back it up: its one backup holds that one user
    (keep 1: the backup of the empty database, taken by the first deploy, is rotated away)."""
    assert deploy(vars=host_vars(socket_vars, name)).rc == 0
    insert_user(pg, name, f"{name}@example.com")
    run = deploy(vars=host_vars(socket_vars, name, db_deploy_backup_always=True, db_deploy_backup_keep=1))
    assert run.rc == 0, run.output[-3000:]
    return run


def test_each_of_four_namesakes_restores_its_own_backup(deploy, pg, db, site, socket_vars):
    names = namesakes(db)
    create(pg, names)
    try:
        for name in names:
            deploy_with_a_row(deploy, pg, socket_vars, name)
        for name in names:
            insert_user(pg, name, "after-the-backup@example.com")

        for name in names:
            restored = deploy(RESTORE, vars=host_vars(socket_vars, name), extra_vars={"db_deploy_restore_confirm": name})
            assert restored.rc == 0, restored.output[-4000:]
            (backup,) = own_backups(site, name, pg)
            facts = json.loads((site.backups / (backup.name + ".json")).read_text())
            # Before acting and in the final message: what the backup holds.
            said = f"{backup.name}: a backup of {name} taken at {facts['time']} by release {facts['release']}"
            assert restored.stdout.count(said) == 2, restored.stdout[-4000:]
            assert "migration versions 000, 001, 011, 012, 013, 014, 015, 016." in restored.stdout
            (copy,) = kept_copies(pg, name)
            assert copy in restored.stdout and "_before_restore_" in copy

        for name in names:
            assert users(pg, name) == [f"{name}@example.com"], name
            assert recorded_versions(type("D", (), {"sql": lambda self, q: pg.sql(q, dbname=name)})()) == [
                "000",
                "001",
                "011",
                "012",
                "013",
                "014",
                "015",
                "016",
            ]
    finally:
        for name in names:
            drop(pg, kept_copies(pg, name))
        drop(pg, names[1:])


def test_restore_with_two_hosts_and_no_limit_is_refused_and_changes_nothing(deploy, pg, db, site, socket_vars, tmp_path):
    deploy_with_a_row(deploy, pg, socket_vars, db.name)
    insert_user(pg, db.name, "after-the-backup@example.com")
    inventory = tmp_path / "two-hosts.json"
    inventory.write_text(json.dumps({"st44_db": {"hosts": {"db-1": socket_vars, "db-2": socket_vars}}}))

    proc = subprocess.run(
        [str(migrate_runner.VENV_BIN / "ansible-playbook"), str(REPO_ROOT / RESTORE), "-i", str(inventory), "-e", f"db_deploy_restore_confirm={db.name}"],
        cwd=REPO_ROOT,
        env=migrate_runner.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "this play targets 2 hosts (db-1, db-2). Rerun with -l HOST" in proc.stdout
    assert users(pg, db.name) == ["after-the-backup@example.com", f"{db.name}@example.com"]
    assert kept_copies(pg, db.name) == []


def test_restore_file_of_another_database_is_refused(deploy, pg, db, site, socket_vars):
    other = f"{db.name}-eu"
    create(pg, [other])
    try:
        deploy_with_a_row(deploy, pg, socket_vars, db.name)
        deploy_with_a_row(deploy, pg, socket_vars, other)
        (mine,) = own_backups(site, db.name, pg)
        (theirs,) = own_backups(site, other, pg)

        refused = deploy(
            RESTORE, vars=host_vars(socket_vars, db.name), extra_vars={"db_deploy_restore_confirm": db.name, "db_deploy_restore_file": theirs.name}
        )

        assert refused.rc != 0
        assert f"No backup {theirs.name} of {db.name} on this cluster" in refused.output
        assert f"Backups of {db.name} there: {mine.name}" in refused.output
        assert "Nothing was changed." in refused.output
        assert users(pg, db.name) == [f"{db.name}@example.com"]
        assert kept_copies(pg, db.name) == []
    finally:
        drop(pg, [other])


def test_backups_are_listed_and_only_a_marked_copy_is_dropped(deploy, pg, db, site, socket_vars):
    run = deploy_with_a_row(deploy, pg, socket_vars, db.name)
    (backup,) = own_backups(site, db.name, pg)
    (site.backups / "notes.txt").write_text("not a backup")
    assert deploy(RESTORE, extra_vars={"db_deploy_restore_confirm": db.name}).rc == 0
    (copy,) = kept_copies(pg, db.name)
    # Looks like a kept copy, but no restore made it.
    lookalike = copy[:-14] + "20200101000000"
    pg.create_database(lookalike)
    try:
        listed = deploy(LIST, check=False)

        assert listed.rc == 0, listed.output[-3000:]
        assert (f"{backup.name} | database {db.name} | ") in listed.stdout
        assert "| versions 000,001,011,012,013,014,015,016 | " in listed.stdout
        assert "| verified" in listed.stdout
        assert "Left alone: 1 files not made for " + db.name in listed.stdout
        assert f"{copy} | kept at " in listed.stdout and f"before restoring {backup.name}" in listed.stdout
        assert lookalike not in listed.stdout
        assert listed.recap()["changed"] == 0

        unconfirmed = deploy(DROP, extra_vars={"db_deploy_drop_copy": copy})
        assert unconfirmed.rc != 0 and "-e db_deploy_drop_confirm=NAME" in unconfirmed.output
        for target in (lookalike, db.name):
            refused = deploy(DROP, extra_vars={"db_deploy_drop_copy": target, "db_deploy_drop_confirm": target})
            assert refused.rc != 0, refused.output[-3000:]
            assert f"{target} on localhost is not a copy kept by a restore of {db.name}" in refused.output
            assert f"Kept copies of {db.name}: {copy}." in refused.output
        assert kept_copies(pg, db.name) == [copy]
        assert pg.sql("SELECT count(*) FROM pg_database WHERE datname = %s", params=(lookalike,)) == [(1,)]
        assert users(pg, db.name) == [f"{db.name}@example.com"]

        dropped = deploy(DROP, extra_vars={"db_deploy_drop_copy": copy, "db_deploy_drop_confirm": copy})

        assert dropped.rc == 0, dropped.output[-3000:]
        assert f"Dropped {copy}, the copy of {db.name} kept at" in dropped.stdout
        assert kept_copies(pg, db.name) == []
        assert pg.sql("SELECT count(*) FROM pg_database WHERE datname = %s", params=(lookalike,)) == [(1,)]
        assert run.rc == 0
    finally:
        pg.drop_database(lookalike)
        drop(pg, kept_copies(pg, db.name))


@pytest.mark.parametrize("suffix", [' a "quoted" \'name', "-" + "x" * 38 + ".Y"], ids=["quotes-and-spaces", "long"])
def test_an_odd_database_name_is_backed_up_restored_listed_and_its_copy_dropped(deploy, pg, db, site, socket_vars, suffix):
    """Names with spaces and both quotes, or near PostgreSQL's 63 characters: every identifier
    and literal of the backup, restore, list and drop steps is quoted (variables from the
    inventory, not -e, which would need shell quoting)."""
    name = db.name[:20] + suffix
    create(pg, [name])
    try:
        assert deploy(vars=host_vars(socket_vars, name)).rc == 0
        insert_user(pg, name, "kept@example.com")
        backed_up = deploy(vars=host_vars(socket_vars, name, db_deploy_backup_always=True, db_deploy_backup_keep=1))
        assert backed_up.rc == 0, backed_up.output[-3000:]
        insert_user(pg, name, "after-the-backup@example.com")

        restored = deploy(RESTORE, vars=host_vars(socket_vars, name, db_deploy_restore_confirm=name))
        listed = deploy(LIST, vars=host_vars(socket_vars, name))

        assert restored.rc == 0, restored.output[-4000:]
        assert users(pg, name) == ["kept@example.com"]
        (copy,) = kept_copies(pg, name)
        # The listing shows the copy's name as it is (the output prints messages, not JSON).
        assert listed.rc == 0 and copy in listed.stdout, listed.output[-3000:]
        dropped = deploy(DROP, vars=host_vars(socket_vars, name, db_deploy_drop_copy=copy, db_deploy_drop_confirm=copy))
        assert dropped.rc == 0, dropped.output[-3000:]
        assert kept_copies(pg, name) == []
    finally:
        drop(pg, kept_copies(pg, name))
        drop(pg, [name])
