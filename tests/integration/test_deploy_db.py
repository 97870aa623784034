"""deploy-db.yml, restore-db.yml and status-db.yml run as users run them, against a real PostgreSQL.

Every test runs ansible-playbook on localhost with a throwaway inventory and
checks what a person would notice: exit code, output lines, tables, rows, the
backup files and their modes, the JSON report. Two connection shapes: the unix
socket as `postgres` (become), and TCP with a password given only through a
0600 vars file.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.namesakes import copy_name_prefix, kept_copies, named_like_copies
from tests.support.db_state import catalog, public_tables, recorded_versions, row_counts
from tests.support.deploy_runner import dry_run_tmp_entries, mode_of, owner_of, write_sql
from tests.support.st44 import NOTES_017, ST44, ST44_TABLES, ST44_VERSIONS, add_app_rows

pytestmark = pytest.mark.e2e


def assert_nothing_shipped(site):
    assert site.shipped() == [], "files were shipped: %s" % site.shipped()
    assert site.backup_files() == []


def assert_refused_before_the_backup(run, site):
    assert 'failed at "Check that a backup can be taken' in run.output
    assert "No migration was applied. No backup was taken by this run." in run.report["error"]
    assert site.backup_files() == []


# --- 1-3: a fresh deploy, a rerun, a dry run ---------------------------------------


def test_fresh_deploy_over_the_socket_applies_everything_after_a_backup(deploy, db, site):
    run = deploy()

    assert run.rc == 0, run.output
    # Each version in the closing summary with how long it took; the migration step reported changed.
    assert re.search(r"^  000 create_migrations_table +applied  \d+ ms$", run.stdout, re.M), run.stdout
    assert run.version_lines() == [(v, name, "applied") for v, name in ST44.items()]
    assert "changed: [localhost] db_deploy : Apply the pending migrations with postgresql_migrate" in run.changed_lines()
    assert db.tables() == ST44_TABLES
    assert recorded_versions(db) == ST44_VERSIONS
    # The backup: whole (*.dump, no *.partial left), readable by the database OS user only.
    backups = site.backup_files()
    assert len(backups) == 1, backups
    backup = backups[0]
    assert backup.name.startswith(db.name + "-")
    manifest = site.backups / (backup.name + ".json")
    assert sorted(p.name for p in site.backups.iterdir()) == [backup.name, manifest.name]  # no .partial, .pgpass
    assert mode_of(site.backups) == 0o700
    assert owner_of(site.backups) == "postgres"
    assert owner_of(backup) == owner_of(manifest) == "postgres"
    assert mode_of(backup) == mode_of(manifest) == 0o600, oct(mode_of(backup))
    # What the backup is: taken of this database before the first migration, read back.
    facts = json.loads(manifest.read_text())
    assert (facts["tool"], facts["database"], facts["file"], facts["versions"], facts["verified"]) == ("db_deploy", db.name, backup.name, [], True)
    assert facts["system_identifier"] == str(db.sql("SELECT system_identifier FROM pg_control_system()")[0][0])
    assert facts["size"] == backup.stat().st_size
    # The JSON report the pipeline keeps.
    report = run.report
    assert report is not None, run.output
    assert report["result"] == "ok" and report["error"] is None
    assert report["database"] == db.name and report["check_mode"] is False
    assert report["backup_file"] == str(backup)
    assert report["current_version"] == "016"
    assert report["failed_migration"] is None
    assert [(m["version"], m["name"], m["status"]) for m in report["migrations"]] == [(v, name, "applied") for v, name in ST44.items()]
    assert all(isinstance(m["duration_ms"], int) and m["duration_ms"] >= 0 for m in report["migrations"])


@pytest.mark.slow
def test_rerun_changes_nothing_and_takes_no_backup(deploy, db, site):
    assert deploy().rc == 0
    backups = site.backup_files()

    run = deploy()

    assert run.rc == 0, run.output
    assert run.recap()["changed"] == 0, run.stdout
    assert run.version_lines() == [(v, name, "already applied") for v, name in ST44.items()]
    assert site.backup_files() == backups
    assert run.report["result"] == "ok" and run.report["backup_file"] is None
    assert recorded_versions(db) == ST44_VERSIONS


def test_check_mode_on_an_empty_database_writes_nothing_anywhere(deploy, db, site, check_mode_lock):
    before = catalog(db)
    with check_mode_lock():
        tmp_before = dry_run_tmp_entries()
        run = deploy(check=True)
        tmp_after = dry_run_tmp_entries()

    assert run.rc == 0, run.output
    assert run.version_lines() == [(v, name, "would apply") for v, name in ST44.items()]
    assert catalog(db) == before
    assert db.tables() == []
    assert_nothing_shipped(site)
    assert not site.releases.exists()
    assert not site.backups.exists()
    assert tmp_after - tmp_before == set(), "the dry run left files in /tmp"
    assert run.report["check_mode"] is True and run.report["result"] == "ok"
    assert run.report["backup_file"] is None
    assert run.report_path.name.endswith("-check.json")
    assert [m["status"] for m in run.report["migrations"]] == ["would_apply"] * len(ST44)


# A play that asks for diffs with the `diff: true` keyword instead of --diff (ansible_diff_mode
# stays false there).
DIFF_KEYWORD_PLAY = """\
- name: Deploy with diff asked for by the play
  hosts: st44_db
  gather_facts: false
  diff: true
  roles:
    - role: db_deploy
"""


def test_diff_shows_each_pending_file_once_and_no_password(deploy, db, site, check_mode_lock, tmp_path):
    assert deploy().rc == 0
    role = "app_" + db.name[-8:]
    write_sql(site.migrations, "017_app_role.sql", f"CREATE ROLE {role} LOGIN PASSWORD 'Sx-role-pw';\n")
    play = tmp_path / "diff-keyword.yml"
    play.write_text(DIFF_KEYWORD_PLAY)
    try:
        with check_mode_lock():
            dry = deploy(check=True, diff=True)
        real = deploy(str(play))

        assert dry.rc == 0, dry.output
        assert real.rc == 0, real.output
        assert dry.version_lines()[-1] == ("017", "app_role", "would apply")
        assert real.version_lines()[-1] == ("017", "app_role", "applied")
        # The SQL of the pending file, once: from postgresql_migrate (not from the plan of a real
        # run, nor from the copy of the files), the password hidden; nothing of the files applied before.
        for run, status in ((dry, "would apply"), (real, "applied")):
            assert run.output.count("CREATE ROLE") == 1, run.output
            assert f"CREATE ROLE {role} LOGIN PASSWORD ********;" in run.output
            assert f"017_app_role.sql ({status})" in run.output
            assert "CREATE TABLE IF NOT EXISTS users" not in run.output
            assert "Sx-role-pw" not in run.output + run.report_path.read_text()
        assert db.sql("SELECT count(*) FROM pg_roles WHERE rolname = %s", params=(role,)) == [(1,)]
    finally:
        db.sql(f'DROP ROLE IF EXISTS "{role}"')


# --- 4-5: backups restore ------------------------------------------------------------


def deploy_with_rows_then_017(deploy, db, site):
    """Deploy st44, let the app write rows, then deploy a release with 017: the
    second run backs up the tables and rows. Returns (run, row counts at backup)."""
    first = deploy()
    assert first.rc == 0, first.output
    add_app_rows(db)
    counts = row_counts(db.cluster, db.name)
    write_sql(site.migrations, "017_add_household_notes.sql", NOTES_017)
    second = deploy()
    assert second.rc == 0, second.output
    assert second.version_lines()[-1] == ("017", "add_household_notes", "applied")
    return second, counts


@pytest.mark.slow
def test_backup_restores_into_an_empty_database(deploy, pg, db, site):
    run, counts = deploy_with_rows_then_017(deploy, db, site)
    backup = Path(run.report["backup_file"])
    assert backup.exists() and backup in site.backup_files()
    copy = db.name + "_copy"
    pg.create_database(copy)

    proc = subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(pg.bin_dir / "pg_restore"),
            "--exit-on-error",
            "-h",
            str(pg.socket_dir),
            "-p",
            str(pg.port),
            "-U",
            "postgres",
            "-d",
            copy,
            str(backup),
        ],
        cwd=site.root,
        capture_output=True,
        text=True,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert counts["users"] == 2 and counts["households"] == 1 and counts["schema_migrations"] == 8
    assert public_tables(pg, copy) == ST44_TABLES  # taken before 017 ran
    assert row_counts(pg, copy) == counts
    assert "household_notes" in db.tables()


@pytest.mark.slow
def test_restore_playbook_needs_confirmation_then_brings_back_the_backup(deploy, pg, db, site):
    # t_<test name>_<hex>: longer than 33 characters, so the copy is named <24 + hash>_before_restore_<time>.
    assert len(db.name) > 40
    run, _ = deploy_with_rows_then_017(deploy, db, site)
    backup = Path(run.report["backup_file"])
    db.sql("INSERT INTO users (email, password_hash) VALUES ('carol@example.com', 'z')")  # after the backup

    refused = deploy("playbooks/restore-db.yml")

    assert refused.rc != 0
    assert f"rerun with -e db_deploy_restore_confirm={db.name}" in refused.output
    assert "household_notes" in db.tables()
    assert row_counts(pg, db.name)["users"] == 3

    restored = deploy("playbooks/restore-db.yml", extra_vars={"db_deploy_restore_confirm": db.name})

    assert restored.rc == 0, restored.output
    assert db.tables() == ST44_TABLES
    assert recorded_versions(db) == ST44_VERSIONS
    assert sorted(e for (e,) in db.sql("SELECT email FROM users")) == ["ann@example.com", "bob@example.com"]
    kept = kept_copies(pg, db.name)
    assert len(kept) == 1 and kept[0].startswith(copy_name_prefix(db.name)), kept
    assert kept[0] in restored.stdout and backup.name in restored.stdout
    assert "household_notes" in public_tables(pg, kept[0])
    assert row_counts(pg, kept[0])["users"] == 3
    assert backup.exists()


def test_failed_restore_puts_the_original_database_back(deploy, pg, db, site):
    """pg_restore stops halfway: the backup grants to a role dropped since, and the grants come
    after the tables and rows. The database renamed aside comes back under its name."""
    reader = "reader_" + db.name[-8:]
    pg.sql(f'CREATE ROLE "{reader}"')
    assert deploy().rc == 0
    add_app_rows(db)
    db.sql(f'GRANT SELECT ON users TO "{reader}"')
    write_sql(site.migrations, "017_add_household_notes.sql", NOTES_017)
    run = deploy()
    assert run.rc == 0, run.output
    backup = Path(run.report["backup_file"])
    db.sql(f'REVOKE SELECT ON users FROM "{reader}"')
    pg.sql(f'DROP ROLE "{reader}"')
    db.sql("INSERT INTO users (email, password_hash) VALUES ('carol@example.com', 'z')")  # after the backup

    failed = deploy("playbooks/restore-db.yml", extra_vars={"db_deploy_restore_confirm": db.name})

    assert failed.rc != 0, failed.output
    assert f'role "{reader}" does not exist' in failed.output, failed.output[-4000:]
    assert f"Restoring {backup} on localhost failed" in failed.output, failed.output[-3000:]
    assert "The original database was put back under its name." in failed.output
    assert "household_notes" in db.tables()
    assert row_counts(pg, db.name)["users"] == 3
    # No copy of this database kept aside (copies of other tests' databases may exist meanwhile).
    assert kept_copies(pg, db.name) == [] and named_like_copies(pg, db.name) == []


# --- 6: a failing migration -------------------------------------------------------------


@pytest.mark.slow
def test_failing_migration_stops_names_the_line_and_the_backup(deploy, db, site):
    assert deploy().rc == 0
    old_backups = site.backup_files()
    write_sql(site.migrations, "017_ok.sql", "CREATE TABLE ok_017 (id int);\n")
    write_sql(site.migrations, "018_broken.sql", "-- half of it would apply, then a typo\nCREATE TABLE half_018 (id int);\n\nCREATE TABEL oops (id int);\n")
    write_sql(site.migrations, "019_after.sql", "CREATE TABLE after_019 (id int);\n")

    run = deploy()

    assert run.rc != 0
    assert "migration 018 failed at 018_broken.sql line 4" in run.output
    assert recorded_versions(db) == ST44_VERSIONS + ["017"]
    tables = db.tables()
    assert "ok_017" in tables
    assert "half_018" not in tables and "after_019" not in tables
    new_backups = [b for b in site.backup_files() if b not in old_backups]
    assert len(new_backups) == 1, site.backup_files()
    assert str(new_backups[0]) in run.output
    # The way back names this run's backup: after a second failed run, "the newest" would be
    # a backup that already holds the first run's migrations.
    assert (
        f"ansible-playbook playbooks/restore-db.yml -i <inventory> -l localhost -e db_deploy_restore_confirm="
        f"{db.name} -e db_deploy_restore_file={new_backups[0].name}"
    ) in run.output
    assert "restore-db.yml" in run.output
    report = run.report
    assert report["result"] == "failed"
    assert report["backup_file"] == str(new_backups[0])
    assert str(new_backups[0]) in report["error"]
    assert report["failed_migration"]["version"] == "018"
    assert report["failed_migration"]["line"] == 4
    statuses = {m["version"]: m["status"] for m in report["migrations"]}
    assert (statuses["017"], statuses["018"], statuses["019"]) == ("applied", "failed", "skipped")


# --- 7-11: refusals before anything changes ----------------------------------------------


def test_hot_standby_is_refused_before_anything_is_shipped(deploy, pg, db, standby, socket_vars, site):
    pg.wait_for_replay(standby)
    on_standby = dict(socket_vars, db_deploy_login_unix_socket=str(standby.socket_dir), db_deploy_login_port=standby.port)

    run = deploy(vars=on_standby)

    assert run.rc != 0
    assert "hot standby" in run.output and "primary" in run.output
    assert_nothing_shipped(site)
    assert run.report["result"] == "failed"


def test_wrong_password_over_tcp_is_clear_and_never_shown(deploy, db, site, tcp_login):
    wrong = tcp_login.password + "-wrong"

    run = deploy(vars=tcp_login.vars, secrets=tcp_login.secrets(wrong), verbosity=3)

    assert run.rc != 0
    assert "password authentication failed" in run.output
    # The right password is a prefix of the wrong one: neither appears.
    assert tcp_login.password not in run.output
    assert run.report is not None and run.report["result"] == "failed"
    assert tcp_login.password not in run.report_path.read_text()
    assert db.tables() == []
    assert_nothing_shipped(site)


def test_tcp_dry_run_with_password_reaches_the_database_without_showing_it(deploy, db, site, tcp_login, check_mode_lock):
    with check_mode_lock():  # its temporary copy in /tmp is not another dry run's leftover
        run = deploy(vars=tcp_login.vars, secrets=tcp_login.secrets(), check=True, verbosity=3)

    assert run.rc == 0, run.output[-5000:]
    assert run.report["server_version"].startswith("15")
    assert [m["status"] for m in run.report["migrations"]] == ["would_apply"] * len(ST44)
    assert db.tables() == []
    assert tcp_login.password not in run.output
    assert tcp_login.password not in run.report_path.read_text()


@pytest.mark.slow
def test_tcp_with_password_deploys_backs_up_and_restores_without_showing_it(deploy, pg, db, site, tcp_login):
    run = deploy(vars=tcp_login.vars, secrets=tcp_login.secrets(), verbosity=3)

    assert run.rc == 0, run.output[-5000:]
    assert db.tables() == ST44_TABLES
    assert recorded_versions(db) == ST44_VERSIONS
    (backup,) = site.backup_files()
    assert run.report["backup_file"] == str(backup)
    assert sorted(p.name for p in site.backups.iterdir()) == [backup.name, backup.name + ".json"]  # no pass file
    assert mode_of(site.backups) == 0o700 and mode_of(backup) == 0o600
    add_app_rows(db)  # after the backup: the restore takes them away

    restored = deploy(
        "playbooks/restore-db.yml", vars=tcp_login.vars, secrets=tcp_login.secrets(), extra_vars={"db_deploy_restore_confirm": db.name}, verbosity=3
    )

    assert restored.rc == 0, restored.output[-5000:]
    assert db.tables() == []  # the backup was taken before the first migration
    (kept,) = kept_copies(pg, db.name)
    assert public_tables(pg, kept) == ST44_TABLES and row_counts(pg, kept)["users"] == 2
    assert sorted(p.name for p in site.backups.iterdir()) == [backup.name, backup.name + ".json"]
    for text in (run.output, restored.output, run.report_path.read_text()):
        assert tcp_login.password not in text
    assert all(tcp_login.password not in str(p) for p in site.shipped() + site.backup_files())


def test_pg_dump_older_than_the_server_is_refused(deploy, db, site, socket_vars):
    fake_bin = site.root / "pg14-bin"
    fake_bin.mkdir()
    for tool in ("pg_dump", "pg_restore"):
        script = fake_bin / tool
        script.write_text(f'#!/bin/sh\necho "{tool} (PostgreSQL) 14.9"\n')
        script.chmod(0o755)
    before = catalog(db)

    run = deploy(vars=dict(socket_vars, db_deploy_pg_bin_dir=str(fake_bin)))

    assert run.rc != 0
    assert "14.9" in run.output
    assert "install postgresql-client-15" in run.output
    assert catalog(db) == before
    # Checked once the plan says a backup will be taken: after shipping, before any change.
    assert_refused_before_the_backup(run, site)


def test_backup_that_would_not_fit_is_refused(deploy, db, site, socket_vars):
    before = catalog(db)

    run = deploy(vars=dict(socket_vars, db_deploy_backup_space_factor=1000000000))

    assert run.rc != 0
    assert f"{site.backups} has " in run.output
    assert "Free space there or point db_deploy_backup_dir elsewhere. Nothing was changed." in run.output
    assert catalog(db) == before
    # Checked once the plan says a backup will be taken: after shipping, before any change.
    assert_refused_before_the_backup(run, site)


# --- 12: status ----------------------------------------------------------------------------


@pytest.mark.slow
def test_status_after_a_partial_deploy_lists_applied_and_pending(deploy, db, site, socket_vars, check_mode_lock):
    partial = deploy(
        vars=dict(
            socket_vars,
            db_deploy_target_version="012",
            db_deploy_expected_tables=["schema_migrations", "users", "user_sessions", "households", "household_members"],
        )
    )
    assert partial.rc == 0, partial.output
    assert recorded_versions(db) == ["000", "001", "011", "012"]
    # A new release on the controller: a real run would ship it to a directory of its own.
    write_sql(site.migrations, "017_add_household_notes.sql", NOTES_017)
    before = (catalog(db), db.sql("SELECT * FROM schema_migrations ORDER BY version"), site.shipped(), site.backup_files())

    with check_mode_lock():
        tmp_before = dry_run_tmp_entries()
        run = deploy("playbooks/status-db.yml")
        tmp_after = dry_run_tmp_entries()

    assert run.rc == 0, run.output
    expected = [f"{v} {name}: {'applied' if v <= '012' else 'pending'}" for v, name in ST44.items()]
    expected.append("017 add_household_notes: pending")
    assert run.shown_lines() == expected + [f"localhost {db.name}: status OK, 4 applied, 5 pending."]
    assert (catalog(db), db.sql("SELECT * FROM schema_migrations ORDER BY version"), site.shipped(), site.backup_files()) == before
    assert tmp_after - tmp_before == set()


def test_a_rerun_after_tables_were_dropped_fails_naming_them_and_applies_nothing(deploy, db, site):
    """The history says applied but a table is gone: never a silent re-run (docs/runbook.md)."""
    assert deploy().rc == 0
    history = recorded_versions(db)
    db.sql("DROP TABLE task_completions")

    run = deploy()

    assert run.rc == 2, run.output
    assert "the schema is not what the release expects" in run.stdout
    assert "Missing tables: public.task_completions." in run.stdout
    assert recorded_versions(db) == history and "task_completions" not in db.tables()
