"""Several deploys at once against one database: every migration applied exactly once."""

from __future__ import annotations

import pytest
from tests.support.migrate_runner import finish, start_migrate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUNS = 6


def test_concurrent_runs_apply_each_migration_exactly_once(db, mdir, tmp_path):
    # Plain INSERTs, no IF NOT EXISTS: a second execution of any file would show as a duplicate row.
    (mdir / "001_log.sql").write_text("CREATE TABLE applied_log (version text, at timestamptz DEFAULT clock_timestamp());\n")
    for n in range(2, 13):
        (mdir / f"{n:03d}_step.sql").write_text(f"INSERT INTO applied_log (version) VALUES ('{n:03d}');\nSELECT pg_sleep(0.05);\n")
    args = dict(db.login_params(), path=str(mdir), lock_wait=120)

    procs = [(start_migrate(args, tmp_path / f"run{i}"), tmp_path / f"run{i}") for i in range(RUNS)]
    runs = [finish(proc, workdir) for proc, workdir in procs]

    assert [r.rc for r in runs] == [0] * RUNS, "\n".join(r.output for r in runs if r.rc)
    assert db.sql("SELECT version, count(*) FROM applied_log GROUP BY 1 HAVING count(*) > 1") == []
    assert db.sql("SELECT count(*) FROM applied_log") == [(11,)]
    assert db.sql("SELECT count(*) FROM schema_migrations") == [(12,)]
    # Exactly one run applied everything; the others waited for the lock and found nothing to do.
    applied_counts = sorted(len([m for m in r.result["migrations"] if m["status"] == "applied"]) for r in runs)
    assert applied_counts == [0] * (RUNS - 1) + [12]
    assert sum(r.result["changed"] for r in runs) == 1


def test_concurrent_runs_with_a_short_wait_end_ok_or_with_the_lock_message(db, mdir, tmp_path):
    (mdir / "001_slow.sql").write_text("CREATE TABLE slow (id int);\nSELECT pg_sleep(3);\n")
    args = dict(db.login_params(), path=str(mdir), lock_wait=0.5)

    procs = [(start_migrate(args, tmp_path / f"run{i}"), tmp_path / f"run{i}") for i in range(4)]
    runs = [finish(proc, workdir) for proc, workdir in procs]

    ok = [r for r in runs if r.rc == 0]
    refused = [r for r in runs if r.rc != 0]
    assert ok, "at least the lock holder succeeds"
    for r in refused:
        assert "another migration run holds the migration lock" in r.result["msg"], r.output
    assert db.sql("SELECT count(*) FROM schema_migrations") == [(1,)]
