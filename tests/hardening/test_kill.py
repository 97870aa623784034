"""The deploy process killed with SIGKILL in the middle of a migration.

Where the kill lands decides what happens, so each way is a test:

- a CI runner cancelling a job signals the job's process group, and a person may
  kill ansible-playbook by its pid. Neither reaches the module: ansible-core runs
  each task in a worker that starts its own session (setsid), so the worker and
  the module's python outlive ansible-playbook and finish the migration. The
  rerun meanwhile gets the clean lock message naming that orphan; afterwards it
  converges.
- a killed container, or a runner that kills the whole process tree, kills the
  module too. PostgreSQL must then notice the dead client during the running
  statement (client_connection_check_interval), roll the migration back and free
  the lock at once, not when the statement would have ended.

Migration 002 waits inside its transaction on ``fault_gate`` (tests/hardening/faults.py),
so "the middle" is deterministic: the kill lands while 002 is running, 001 is committed.
"""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from tests.support import faults
from tests.support.background_runs import (
    backends,
    deploy_waiting_in_pg_dump,
    forms_of,
    module_pids,
    pids_alive,
    start_deploy,
    start_module,
    wait_for,
    wait_for_backend,
)
from tests.support.namesakes import system_identifier
from tests.support import migrate_runner
from tests.support.db_state import recorded_versions

pytestmark = [pytest.mark.e2e]

# A backend whose client died ends within about client_connection_check_interval (1 s);
# without it, 002 would keep its transaction and the lock for up to two minutes.
GONE_WITHIN = 10


def migrate_args(db, path, **more):
    return dict(db.login_params(), path=str(path), **more)


def started_module_run(db, tmp_path, reap):
    """A module run started in the background and stopped in the middle of 002."""
    mdir = faults.write_files(tmp_path / "m")
    faults.close_gate(db)
    run = start_module(migrate_args(db, mdir), tmp_path / "run")
    reap(run)
    wait_for_backend(db.cluster, db.name, faults.SLEEP_LIKE)
    run.orphans = wait_for(lambda: module_pids(run.tree()) and run.tree(), what="the module's python")
    return run, mdir


def test_kill_of_the_whole_process_tree_rolls_back_and_frees_the_lock_at_once(db, tmp_path, reap):
    run, mdir = started_module_run(db, tmp_path, reap)
    module = module_pids(run.orphans)
    (backend,) = [pid for pid, *_ in backends(db.cluster, db.name)]

    run.kill_tree()
    killed_at = time.monotonic()

    wait_for(lambda: not pids_alive(module), 5, what="the module to die")
    wait_for(lambda: not backends(db.cluster, db.name), GONE_WITHIN, what=f"backend {backend} to end")
    assert time.monotonic() - killed_at < GONE_WITHIN
    faults.assert_all_or_nothing(db, ["001"])  # 002 rolled back, its lock freed

    faults.open_gate(db)
    rerun = migrate_runner.run_migrate(migrate_args(db, mdir, lock_wait=5))

    assert rerun.rc == 0, rerun.output
    assert rerun.status_of() == {"001": "already_applied", "002": "applied", "003": "applied"}
    faults.assert_all_or_nothing(db, ["001", "002", "003"])


@pytest.mark.parametrize("kill", ["process group (CI cancel)", "ansible-playbook pid only"])
def test_sigkill_of_ansible_playbook_leaves_the_module_finishing_the_job(db, tmp_path, reap, kill):
    run, mdir = started_module_run(db, tmp_path, reap)
    module = module_pids(run.orphans)

    if kill.startswith("process group"):
        run.kill_group()
    else:
        run.kill_playbook_only()
    run.proc.wait(timeout=10)

    # The module runs in ansible-core's worker, in a session of its own: it survives,
    # holding the migration lock with 002 open (not committed, so not visible).
    assert pids_alive(module) == module
    faults.assert_all_or_nothing(db, ["001"], locks_free=False)
    second = migrate_runner.run_migrate(migrate_args(db, mdir, lock_wait=1))
    assert second.rc == 2
    msg = second.result["msg"]
    assert "another migration run holds the migration lock" in msg
    assert f"pid {backends(db.cluster, db.name, faults.SLEEP_LIKE)[0][0]}" in msg  # the orphan, by pid
    assert 'application "postgresql_migrate' in msg
    assert "Nothing was applied; wait for it to finish and rerun" in msg

    # The orphan finishes the job: every migration whole, once; the worker exits too.
    faults.open_gate(db)
    wait_for(lambda: not pids_alive(run.orphans), 60, what="the orphaned worker and module to exit")
    faults.assert_all_or_nothing(db, ["001", "002", "003"])
    rerun = migrate_runner.run_migrate(migrate_args(db, mdir, lock_wait=5))
    assert rerun.rc == 0, rerun.output
    assert rerun.result["changed"] is False
    assert set(rerun.status_of().values()) == {"already_applied"}


# --- the real deploy-db.yml ---------------------------------------------------------------


def fault_deploy_vars(socket_vars, site, **more):
    """The socket shape (become postgres) deploying the fault migrations instead of st44's."""
    for path in site.migrations.iterdir():
        path.unlink()
    faults.write_files(site.migrations)
    return dict(socket_vars, db_deploy_expected_tables=[], **more)


def deploy_held_in_002(db, site, socket_vars, tmp_path, reap):
    """A deploy of the fault migrations started in the background and waiting inside 002."""
    host_vars = fault_deploy_vars(socket_vars, site)
    faults.close_gate(db)
    run = start_deploy(host_vars, tmp_path / "first")
    reap(run)
    wait_for_backend(db.cluster, db.name, faults.SLEEP_LIKE, timeout=120)
    return host_vars, run


def test_ci_cancel_of_a_deploy_lets_it_finish_and_a_second_deploy_waits_cleanly(db, site, socket_vars, deploy, tmp_path, reap):
    host_vars, first = deploy_held_in_002(db, site, socket_vars, tmp_path, reap)
    first.orphans = first.tree()

    first.kill_group()  # what a runner does when the job is cancelled
    first.proc.wait(timeout=10)

    assert module_pids(first.orphans), "the module did not outlive ansible-playbook"
    second = deploy(vars=dict(host_vars, db_deploy_lock_wait=1))
    assert second.rc != 0
    assert "another migration run holds the migration lock" in second.output
    assert "Nothing was applied; wait for it to finish and rerun" in second.output
    assert second.report["result"] == "failed"
    assert second.report["backup_file"] in second.output  # it took a backup: it names it
    faults.assert_all_or_nothing(db, ["001"], locks_free=False)

    faults.open_gate(db)
    wait_for(lambda: not pids_alive(first.orphans), 60, what="the cancelled deploy's module to finish")
    faults.assert_all_or_nothing(db, ["001", "002", "003"])
    assert db.sql("SELECT applied_by FROM schema_migrations WHERE version = '003'")[0][0].startswith("files-")
    rerun = migrate_runner.run_migrate(migrate_args(db, site.migrations, lock_wait=5))
    assert rerun.rc == 0 and rerun.result["changed"] is False, rerun.output


def test_killed_deploy_leaves_a_whole_backup_and_a_rerun_of_the_playbook_converges(db, site, socket_vars, deploy, tmp_path, reap):
    host_vars, first = deploy_held_in_002(db, site, socket_vars, tmp_path, reap)

    first.kill_tree()  # the container running the job is killed

    wait_for(lambda: not backends(db.cluster, db.name), GONE_WITHIN, what="the killed deploy's backend to end")
    faults.assert_all_or_nothing(db, ["001"])
    (backup,) = site.backup_files()  # taken before migrating, whole (linked from .partial), recorded
    assert sorted(p.name for p in site.backups.iterdir()) == [backup.name, backup.name + ".json"]

    faults.open_gate(db)
    rerun = deploy(vars=host_vars)

    assert rerun.rc == 0, rerun.output
    assert [(v, st) for v, _, st in rerun.version_lines()] == [("001", "already applied"), ("002", "applied"), ("003", "applied")]
    faults.assert_all_or_nothing(db, ["001", "002", "003"])
    assert rerun.report["result"] == "ok" and rerun.report["backup_file"] != str(backup)
    assert backup.exists()


def files_holding(roots, secrets) -> list[str]:
    """Every file under roots that holds one of secrets; a file removed meanwhile is skipped."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            try:
                raw = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            except OSError:
                continue
            if any(secret.encode() in raw for secret in secrets):
                found.append(str(path.relative_to(root.parent)))
    return found


def test_killed_deploy_leaves_no_copy_of_the_password_on_the_host(db, site, tcp_login, deploy, tmp_path, reap):
    """Ansible writes a module, its arguments included, to a file on the host and removes it after the
    task, unless the module is pipelined (sent on python's stdin). Killed mid-migration, a deploy never
    removes anything, so the password must not have been written anywhere in the first place."""
    secrets = forms_of(tcp_login.password)
    host_vars = fault_deploy_vars(tcp_login.vars, site)
    faults.close_gate(db)
    db.sql(f'GRANT SELECT ON fault_gate TO "{tcp_login.role}"')  # 002 reads it, pg_dump dumps it
    # Ansible's temporary directories, on the host (remote) and the controller (local), where a test sees them.
    tmp_dirs = {"ANSIBLE_REMOTE_TMP": tmp_path / "remote-tmp", "ANSIBLE_LOCAL_TEMP": tmp_path / "local-tmp"}
    run = start_deploy(host_vars, tmp_path / "first", secrets=tcp_login.secrets(), env={k: str(v) for k, v in tmp_dirs.items()})
    reap(run)
    wait_for_backend(db.cluster, db.name, faults.SLEEP_LIKE, timeout=120)

    during = files_holding(tmp_dirs.values(), secrets)
    used = sorted(str(p.relative_to(tmp_path)) for d in tmp_dirs.values() for p in d.rglob("*"))
    run.kill_tree()
    wait_for(lambda: not backends(db.cluster, db.name), GONE_WITHIN, what="the killed deploy's backend to end")
    after = files_holding(list(tmp_dirs.values()) + [site.root], secrets)

    assert any(p.startswith("local-tmp/") for p in used), used  # the run really used these directories
    assert during == [], "while the module ran, the password was in " + ", ".join(during)
    assert after == [], "after the kill, the password is in " + ", ".join(after)
    assert not list(site.backups.glob(".pgpass*"))  # the pass file lived only while pg_dump ran
    faults.assert_all_or_nothing(db, ["001"])

    faults.open_gate(db)
    rerun = deploy(vars=host_vars, secrets=tcp_login.secrets())
    assert rerun.rc == 0, rerun.output
    faults.assert_all_or_nothing(db, ["001", "002", "003"])


def test_leftovers_of_a_deploy_killed_during_pg_dump_are_removed_by_a_later_backup(pg, db, site, tcp_login, deploy, tmp_path, reap):
    """Killed while pg_dump runs, a deploy leaves its pass file (the password) and a partial dump.
    A later backup of the same database removes such leftovers once older than
    db_deploy_leftover_hours, and keeps younger ones (also when the setting is 0): they may
    belong to a deploy running now. Files without its owner key are never its leftovers."""
    with deploy_waiting_in_pg_dump(pg, db, site, tcp_login, tmp_path / "killed", reap) as run:
        run.kill_tree()
    # Its backend notices the dead client once it has the lock and writes to it.
    wait_for(lambda: not [b for b in backends(db.cluster, db.name) if b[1] == "pg_dump"], GONE_WITHIN, what="pg_dump's backend to end")
    old = sorted(p.name for p in site.backups.iterdir())
    # Both carry the owner key of this database on this cluster: a later run knows them as its own.
    key = hashlib.sha256(f"{system_identifier(pg)}/{db.name}".encode()).hexdigest()[:16]
    assert len(old) == 2 and old[0].startswith(f".pgpass-{key}-") and old[1].endswith(f".{key}.dump.partial"), old
    day_ago = time.time() - 25 * 3600
    # As old, but not this database's (no owner key: another tool's, or an older version's): left alone.
    foreign = [".pgpass-deadbeef", f"{db.name}-20260101T000000Z-r-deadbeef.dump.partial"]
    for name in foreign:
        (site.backups / name).write_text("not ours")
    for name in old + foreign:
        os.utime(site.backups / name, (day_ago, day_ago))
    # A deploy of this database running right now: its files are minutes old.
    young = [f".pgpass-{key}-0000beef", f"{db.name}-20260101T000000Z-r-0000beef.{key}.dump.partial"]
    for name in young:
        (site.backups / name).write_text("in use")

    # 0 counts as the minimum of 1 hour: a deploy running now never loses its pass file.
    rerun = deploy(vars=dict(tcp_login.vars, db_deploy_leftover_hours=0), secrets=tcp_login.secrets())

    assert rerun.rc == 0, rerun.output
    assert "017" in recorded_versions(db)
    (backup,) = site.backup_files()
    assert sorted(p.name for p in site.backups.iterdir()) == sorted(young + foreign + [backup.name, backup.name + ".json"])
    for name in old:
        assert name in rerun.output  # each removal is listed
