"""A table the migration alters is locked by the app: the app is never kept waiting
longer than lock_timeout, the migration retries a bounded number of times, then
fails saying why and what to do; released, the rerun converges.

The app here is two sessions: one holds a read transaction open on the table
(ACCESS SHARE, as a long report or a forgotten transaction does), the other
keeps reading it. The migration's ALTER TABLE waits for ACCESS EXCLUSIVE behind
the first, and every new read of the second queues behind that request: the
measured time of those reads is what the app's users feel.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.background_runs import wait_for
from tests.support import migrate_runner

pytestmark = [pytest.mark.e2e]

LOCK_TIMEOUT_S = 1.0
RETRIES = 2
SLACK_S = 0.75  # scheduling on a loaded 2-core machine


def column_count(db) -> int:
    return db.sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'one' AND column_name = 'name'")[0][0]


def test_app_lock_times_out_retries_then_fails_without_blocking_the_app(db, tmp_path):
    mdir = tmp_path / "m"
    mdir.mkdir()
    (mdir / "001_one.sql").write_text("CREATE TABLE one (id int);\nINSERT INTO one VALUES (1);\n")
    args = dict(db.login_params(), path=str(mdir), lock_timeout=f"{int(LOCK_TIMEOUT_S * 1000)}ms", lock_retries=RETRIES)
    assert migrate_runner.run_migrate(args).rc == 0
    (mdir / "002_alter.sql").write_text("ALTER TABLE one ADD COLUMN name text;\n")

    holder = db.connect()
    holder.autocommit = False
    holder.cursor().execute("SELECT * FROM one")  # an open read transaction: ACCESS SHARE held
    reader = db.connect()
    latencies: list[float] = []
    stop = threading.Event()

    def app_reads():
        cur = reader.cursor()
        while not stop.is_set():
            started = time.monotonic()
            cur.execute("SELECT count(*) FROM one")
            cur.fetchall()
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)

    thread = threading.Thread(target=app_reads, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        run = migrate_runner.run_migrate(args)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join(timeout=10)
        reader.close()

    assert run.rc == 2
    failed = run.result["failed_migration"]
    assert (failed["version"], failed["sqlstate"], failed["attempts"]) == ("002", "55P03", RETRIES + 1)
    msg = run.result["msg"]
    assert f"(after {RETRIES + 1} attempts)" in msg
    assert "Another session held a lock the migration needed for longer than lock_timeout" in msg
    assert "pg_stat_activity" in msg and "rerun when that session is gone" in msg  # how to find the blocker
    assert "Nothing of 002 was applied (its transaction was rolled back)" in msg
    assert run.status_of() == {"001": "already_applied", "002": "failed"}
    # Bounded: three waits of lock_timeout and pauses of 1 s and 2 s, plus Ansible's own start-up.
    assert elapsed < (RETRIES + 1) * LOCK_TIMEOUT_S + 3 + 30
    # The app: reads queued behind the migration (so the test measured something), never
    # for longer than lock_timeout; the session holding the lock was not disturbed.
    assert max(latencies) > LOCK_TIMEOUT_S / 3, f"no read ever queued: {max(latencies):.3f}s"
    assert max(latencies) < LOCK_TIMEOUT_S + SLACK_S, f"an app read waited {max(latencies):.3f}s"
    holder.cursor().execute("SELECT count(*) FROM one")
    holder.rollback()
    holder.close()
    assert column_count(db) == 0

    rerun = migrate_runner.run_migrate(args)
    assert rerun.rc == 0, rerun.output
    assert rerun.status_of() == {"001": "already_applied", "002": "applied"}
    assert column_count(db) == 1


@pytest.mark.parametrize("setting", ["lock_timeout", "statement_timeout"])
def test_a_files_own_lock_timeout_does_not_cut_the_history_write_short(db, tmp_path, setting):
    """A file that sets a tight lock_timeout (common practice) or statement_timeout for its own
    statements does not impose it on the module's history row, written in the same transaction:
    that write waits up to the run's lock_timeout, as every other wait of the module does."""
    mdir = tmp_path / "m"
    mdir.mkdir()
    (mdir / "001_one.sql").write_text("CREATE TABLE one (id int);\n")
    args = dict(db.login_params(), path=str(mdir), lock_timeout="60s", lock_retries=0)
    assert migrate_runner.run_migrate(args).rc == 0
    (mdir / "002_tight.sql").write_text(f"SET {setting} = '20ms';\nCREATE TABLE two (id int);\n")
    holder = db.connect()
    holder.autocommit = False
    # Reads of the history go on; writing its new row waits (SHARE conflicts with ROW EXCLUSIVE,
    # which even the PREPARE of that write takes).
    holder.cursor().execute("LOCK TABLE schema_migrations IN SHARE MODE")
    proc = migrate_runner.start_migrate(args, tmp_path / "run")

    def history_write_waits():
        if proc.poll() is not None:
            return "exited"
        return db.sql(
            "SELECT 'waits' FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE %s",
            params=("%schema_migrations%",),
        )

    try:
        waited = wait_for(history_write_waits, timeout=120, what="the history write to wait for the lock")
        time.sleep(0.5)  # 25 times the file's timeout
    finally:
        holder.rollback()
        holder.close()
    run = migrate_runner.finish(proc, tmp_path / "run")

    assert run.rc == 0, run.output
    assert waited != "exited"
    assert run.status_of() == {"001": "already_applied", "002": "applied"}
    assert db.tables() == ["one", "schema_migrations", "two"]
