"""The server side fails in the middle of a migration: the module's backend terminated,
PostgreSQL restarted (fast: sessions terminated; immediate: crash and recovery).

Each fault lands while migration 002 runs (it waits on ``fault_gate`` inside its
transaction, tests/hardening/faults.py), 001 already committed. The run must fail
saying the connection was lost, that 002 was rolled back and that a rerun is safe;
001 stays, nothing of 002 remains, and the rerun applies 002 and 003 once.
Restarts get a PostgreSQL of their own (``own_pg``).
"""

from __future__ import annotations

import pytest

from tests.support import faults
from tests.support.background_runs import start_module, wait_for_backend
from tests.support import migrate_runner

pytestmark = [pytest.mark.e2e]


def inject_and_rerun(database, tmp_path, reap, inject):
    mdir = faults.write_files(tmp_path / "m")
    faults.close_gate(database)
    args = dict(database.login_params(), path=str(mdir))
    run = start_module(args, tmp_path / "run")
    reap(run)
    backend = wait_for_backend(database.cluster, database.name, faults.SLEEP_LIKE)

    inject(database.cluster, backend)
    failed = run.finish(timeout=120)
    result = run.result()

    assert failed.rc == 2, failed.output
    msg = result["msg"]
    assert "migration 002 failed at 002_slow.sql" in msg
    assert "The run lost the connection to the database" in msg, msg
    assert "Nothing of 002 was applied (its transaction was rolled back)" in msg
    assert "rerun: it applies 002 again" in msg
    assert "Applied by this run before it: 001" in msg
    assert "Fix the file" not in msg  # nothing is wrong with the file
    assert [(m["version"], m["status"]) for m in result["migrations"]] == [("001", "applied"), ("002", "failed"), ("003", "skipped")]
    assert "002" in failed.stdout  # what the person at the terminal reads
    faults.assert_all_or_nothing(database, ["001"])

    faults.open_gate(database)
    rerun = migrate_runner.run_migrate(args)
    assert rerun.rc == 0, rerun.output
    assert rerun.status_of() == {"001": "already_applied", "002": "applied", "003": "applied"}
    faults.assert_all_or_nothing(database, ["001", "002", "003"])
    return msg


def test_backend_terminated_mid_migration(db, tmp_path, reap):
    def terminate(cluster, backend):
        assert cluster.sql("SELECT pg_terminate_backend(%s)", params=(backend,)) == [(True,)]

    inject_and_rerun(db, tmp_path, reap, terminate)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_restarted_mid_migration(own_db, tmp_path, reap, mode):
    def restart(cluster, backend):
        cluster.stop(mode)
        cluster.start()

    inject_and_rerun(own_db, tmp_path, reap, restart)
