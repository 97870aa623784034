"""The st44 migrations through ansible-playbook: fresh database, rerun, check mode, adoption."""

from __future__ import annotations

import subprocess

import pytest
from tests.support import VENV_BIN
from tests.support.db_state import catalog_snapshot
from tests.support.migrate_runner import env
from tests.support.st44 import MIGRATIONS, ST44_TABLES, ST44_VERSIONS

pytestmark = pytest.mark.e2e


def history(db):
    return db.sql("SELECT version, name, checksum, applied_by, execution_ms, applied_at FROM schema_migrations ORDER BY version")


def test_fresh_database_gets_every_migration_once(db, migrate):
    run = migrate(MIGRATIONS, applied_by="release-42")

    assert run.rc == 0, run.output
    assert run.result["changed"] is True
    assert run.status_of() == {v: "applied" for v in ST44_VERSIONS}
    assert all(m["changed"] for m in run.result["migrations"])
    assert run.result["applied"] == ST44_VERSIONS
    assert run.result["current_version"] == "016"
    assert db.tables() == ST44_TABLES
    rows = history(db)
    assert [r[0] for r in rows] == ST44_VERSIONS
    assert rows[1][1] == "create_users_table"
    for version, _name, checksum, applied_by, execution_ms, applied_at in rows:
        assert len(checksum) == 64, version
        assert applied_by == "release-42"
        assert execution_ms is not None and execution_ms >= 0
        assert applied_at is not None
    # The outage: registration needs users; a case-insensitive duplicate is refused.
    db.sql("INSERT INTO users (email, password_hash) VALUES ('Ann@Example.com', 'x')")
    with pytest.raises(Exception, match="duplicate key"):
        db.sql("INSERT INTO users (email, password_hash) VALUES ('ann@example.COM', 'y')")


def test_rerun_changes_nothing(db, migrate):
    assert migrate(MIGRATIONS).rc == 0
    before = history(db)

    run = migrate(MIGRATIONS)

    assert run.rc == 0, run.output
    assert run.result["changed"] is False
    assert run.status_of() == {v: "already_applied" for v in ST44_VERSIONS}
    assert not any(m["changed"] for m in run.result["migrations"])
    assert history(db) == before
    assert "changed=0" in run.stdout and "failed=0" in run.stdout


def test_history_table_stays_readable_for_the_app(db, migrate):
    assert migrate(MIGRATIONS).rc == 0
    # What the app's own migration runner reads and writes.
    assert db.sql("SELECT version, name FROM schema_migrations WHERE version = '001'") == [("001", "create_users_table")]
    db.sql("INSERT INTO schema_migrations (version, name) VALUES ('900', 'app_side') ON CONFLICT (version) DO NOTHING")
    run = migrate(MIGRATIONS)
    assert run.rc == 0
    assert run.result["missing"] == ["900"]
    assert "900" in run.stderr + run.stdout  # warned, not fatal


def test_check_mode_on_empty_database_writes_nothing_and_lists_all(db, migrate):
    before = catalog_snapshot(db)

    run = migrate(MIGRATIONS, check=True)

    assert run.rc == 0, run.output
    assert run.result["changed"] is True
    assert run.status_of() == {v: "would_apply" for v in ST44_VERSIONS}
    assert run.result["applied"] == ST44_VERSIONS
    assert catalog_snapshot(db) == before
    assert db.tables() == []


def test_check_mode_lists_exactly_what_a_real_run_applies(db, migrate):
    assert migrate(MIGRATIONS, target_version="012").rc == 0
    before = catalog_snapshot(db)
    rows_before = history(db)

    dry = migrate(MIGRATIONS, check=True)
    assert catalog_snapshot(db) == before
    assert history(db) == rows_before
    real = migrate(MIGRATIONS)

    assert dry.rc == 0 and real.rc == 0
    would = [m["version"] for m in dry.result["migrations"] if m["status"] == "would_apply"]
    did = [m["version"] for m in real.result["migrations"] if m["status"] == "applied"]
    assert would == did == ["013", "014", "015", "016"]


def test_check_mode_takes_no_lock(db, migrate, pg):
    # Another deploy holds the migration lock: a dry run still answers at once.
    holder = db.connect()
    try:
        holder.cursor().execute("SELECT pg_advisory_lock(424242)")
        run = migrate(MIGRATIONS, check=True, lock_key=424242, lock_wait=0)
        assert run.rc == 0, run.output
        locks = db.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 424242")
        assert locks == [(1,)]  # only the holder's
    finally:
        holder.close()


def test_diff_shows_the_sql(db, migrate):
    run = migrate(MIGRATIONS, check=True, diff=True, target_version="001")

    assert run.rc == 0
    assert "001_create_users_table.sql (would apply)" in run.stdout
    assert "CREATE TABLE IF NOT EXISTS users" in run.stdout
    assert "011_create_households_table.sql" not in run.stdout


def test_versions_applied_by_hand_are_adopted_not_rerun(db, migrate, pg):
    # Someone ran 000 and 001 with psql during the outage, then dropped an index by hand.
    for name in ("000_create_migrations_table.sql", "001_create_users_table.sql"):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(MIGRATIONS / name), db.dsn()], check=True, capture_output=True)
    db.sql("DROP INDEX IF EXISTS user_sessions_expires_at_idx")
    indexes_before = db.sql("SELECT indexname FROM pg_indexes WHERE tablename IN ('users', 'user_sessions') ORDER BY 1")
    assert db.sql("SELECT version FROM schema_migrations ORDER BY 1") == [("000",), ("001",)]

    run = migrate(MIGRATIONS)

    assert run.rc == 0, run.output
    statuses = run.status_of()
    assert statuses["000"] == statuses["001"] == "already_applied"
    assert [m.get("adopted") for m in run.result["migrations"]] == [True, True] + [None] * 6
    assert [v for v, s in statuses.items() if s == "applied"] == ST44_VERSIONS[2:]
    # Not run again: the index dropped by hand stays dropped.
    assert db.sql("SELECT indexname FROM pg_indexes WHERE tablename IN ('users', 'user_sessions') ORDER BY 1") == indexes_before
    # Adopted: the checksum is now recorded, so later edits are detected.
    assert db.sql("SELECT count(*) FROM schema_migrations WHERE checksum IS NULL") == [(0,)]
    assert migrate(MIGRATIONS).result["changed"] is False


def test_check_mode_on_hand_applied_versions(db, migrate):
    for name in ("000_create_migrations_table.sql", "001_create_users_table.sql"):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(MIGRATIONS / name), db.dsn()], check=True, capture_output=True)
    before = catalog_snapshot(db)

    run = migrate(MIGRATIONS, check=True)

    assert run.rc == 0
    assert [m["version"] for m in run.result["migrations"] if m["status"] == "would_apply"] == ST44_VERSIONS[2:]
    assert catalog_snapshot(db) == before
    assert db.sql("SELECT version FROM schema_migrations ORDER BY 1") == [("000",), ("001",)]


def test_target_version_stops_there(db, migrate):
    run = migrate(MIGRATIONS, target_version="13")

    assert run.rc == 0
    statuses = run.status_of()
    assert [v for v, s in statuses.items() if s == "applied"] == ["000", "001", "011", "012", "013"]
    assert [v for v, s in statuses.items() if s == "skipped"] == ["014", "015", "016"]
    assert "tasks" not in db.tables()


def test_unknown_target_version_is_refused(db, migrate):
    run = migrate(MIGRATIONS, target_version="020")

    assert run.rc != 0
    assert "target_version 020 does not match any migration file" in run.result["msg"]
    assert db.tables() == []


def test_ansible_doc_shows_the_module(repo_root):
    proc = subprocess.run([str(VENV_BIN / "ansible-doc"), "-M", "library", "postgresql_migrate"], cwd=repo_root, env=env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for text in ("allow_out_of_order", "target_version", "login_password", "EXAMPLES", "RETURN VALUES", "would_apply", "no-transaction"):
        assert text in proc.stdout, text
