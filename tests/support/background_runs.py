"""What a fault needs: a run (the deploy playbook or the module) started in the
background in its own process group, the processes of that run, and polling of
pg_stat_activity until the run reaches the point a test injects its fault at."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import REPO_ROOT, VENV_BIN, migrate_runner
from tests.support.deploy_runner import DeployRun, write_sql
from tests.support.st44 import NOTES_017


def wait_for(predicate, timeout: float = 30, interval: float = 0.05, what: str = "condition"):
    """Poll predicate() until it returns something truthy; return it, or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def backends(cluster, dbname: str, query_like: str = "%") -> list[tuple]:
    """(pid, application_name, state, wait_event_type, query) of client backends in dbname."""
    return cluster.sql(
        "SELECT pid, application_name, state, wait_event_type, query FROM pg_stat_activity "
        "WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
        "AND query LIKE %s ORDER BY backend_start",
        params=(dbname, query_like),
    )


def wait_for_backend(cluster, dbname: str, query_like: str, timeout: float = 60, state: str | None = None):
    """The pid of the first backend of dbname running a query LIKE query_like."""

    def found():
        rows = [r for r in backends(cluster, dbname, query_like) if state is None or r[2] == state]
        return rows[0][0] if rows else None

    return wait_for(found, timeout, what=f"a backend running {query_like!r} in {dbname}")


def pids_alive(pids) -> list[int]:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    continue  # a zombie has already exited
            alive.append(pid)
        except FileNotFoundError:
            pass
    return alive


def process_tree(root: int) -> list[int]:
    """root and every process descending from it, right now."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return pids_alive(tree)


def module_pids(pids) -> list[int]:
    """Those of pids that run a module: python reading it from stdin (pipelined, see ansible.cfg)
    or from an AnsiballZ file. ansible-playbook's own processes run python with its script."""
    found = []
    for pid in pids:
        try:
            argv = [a for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if argv and "python" in os.path.basename(argv[0].decode(errors="replace")) and (len(argv) == 1 or any(b"AnsiballZ_" in a for a in argv[1:])):
            found.append(pid)
    return found


@dataclass
class Background:
    """A run of ansible-playbook started in its own process group, as a CI job runs it."""

    proc: subprocess.Popen
    workdir: Path
    report_dir: Path | None = None
    orphans: list[int] = field(default_factory=list)  # processes of the run that outlived it

    def kill_group(self, sig=signal.SIGKILL) -> None:
        """What a CI runner does on cancel: signal the job's whole process group."""
        os.killpg(self.proc.pid, sig)

    def kill_playbook_only(self, sig=signal.SIGKILL) -> None:
        self.proc.send_signal(sig)

    def tree(self) -> list[int]:
        return process_tree(self.proc.pid)

    def kill_tree(self) -> list[int]:
        """What a killed container or a runner that kills the process tree does: every
        process of the run, whatever its process group or session, killed at once."""
        pids = self.tree()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGSTOP)  # nobody forks or reacts while we kill
            except ProcessLookupError:
                pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def finish(self, timeout: float = 300) -> DeployRun:
        self.proc.wait(timeout=timeout)
        out = (self.workdir / "stdout").read_text(errors="replace")
        err = (self.workdir / "stderr").read_text(errors="replace")
        report = report_path = None
        if self.report_dir and self.report_dir.exists():
            found = sorted(self.report_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
            if found:
                report_path = found[-1]
                report = json.loads(report_path.read_text())
        return DeployRun(self.proc.returncode, out, err, report, report_path)

    def result(self) -> dict:
        """The module's registered result (module runs through tests/e2e's runner)."""
        path = self.workdir / "result.json"
        return json.loads(path.read_text()) if path.exists() else {}


def _popen(cmd: list[str], workdir: Path, env: dict | None = None) -> subprocess.Popen:
    """Output goes to files, not pipes: a verbose run never blocks on a full pipe."""
    # The controller's temporary directory, which a killed run leaves behind: in the test's, not in $HOME.
    env = dict({"ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-local")}, **(env or {}))
    with open(workdir / "stdout", "wb") as out, open(workdir / "stderr", "wb") as err:
        return subprocess.Popen(cmd, cwd=REPO_ROOT, env=migrate_runner.env(env), stdout=out, stderr=err, start_new_session=True)


def start_deploy(
    host_vars: dict, workdir: Path, *, secrets: dict | None = None, verbosity: int = 0, playbook: str = "deploy-db.yml", env: dict | None = None
) -> Background:
    """Start deploy-db.yml in the background, in a new session (its own process group)."""
    workdir.mkdir(parents=True, exist_ok=True)
    inventory = workdir / "inventory.yml"
    inventory.write_text(json.dumps({"st44_db": {"hosts": {"localhost": host_vars}}}))
    cmd = [str(VENV_BIN / "ansible-playbook"), str(REPO_ROOT / playbook), "-i", str(inventory)]
    if secrets:
        secret_file = workdir / "secrets.json"
        secret_file.touch(mode=0o600)
        secret_file.write_text(json.dumps(secrets))
        cmd += ["-e", f"@{secret_file}"]
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    return Background(_popen(cmd, workdir, env), workdir, Path(host_vars["db_deploy_report_dir"]))


def start_module(module_args: dict, workdir: Path) -> Background:
    """Start the module through ansible-playbook in the background, in its own process group."""
    workdir.mkdir(parents=True, exist_ok=True)
    playbook, secrets = migrate_runner.write_playbook(workdir, module_args, {})
    cmd = migrate_runner.command(playbook, secrets, False, False, 0)
    return Background(_popen(cmd, workdir), workdir)


def forms_of(password: str) -> list[str]:
    """The password as typed, as the pass file writes it, and its longest run of letters and digits:
    that part is found whatever a writer escapes (JSON, a Python literal, a shell word...)."""
    core = max(re.findall(r"[A-Za-z0-9_-]{12,}", password), key=len, default=None)
    return [password, password.replace("\\", "\\\\").replace(":", "\\:")] + ([core] if core else [])


@contextmanager
def deploy_waiting_in_pg_dump(pg, db, site, tcp_login, workdir: Path, reap, verbosity: int = 0):
    """A password deploy (tcp_login) with 017 pending, started in the background and held while its
    pg_dump waits for a lock on users; the st44 tables are applied first, owned by the deploy's role.
    Yields the run; leaving the block releases the lock."""
    first = migrate_runner.run_migrate(
        dict(path=str(site.migrations), db=db.name, login_host="127.0.0.1", login_port=pg.port, login_user=tcp_login.role),
        secret_args={"login_password": tcp_login.password},
    )
    assert first.rc == 0, first.output
    write_sql(site.migrations, "017_add_household_notes.sql", NOTES_017)  # pending: a backup is taken
    with db.open_transaction("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"):
        run = start_deploy(tcp_login.vars, workdir, secrets=tcp_login.secrets(), verbosity=verbosity)
        reap(run)

        def pg_dump_waits():
            assert run.proc.poll() is None, "the deploy ended early:\n" + run.finish().output[-3000:]
            return db.sql("SELECT 1 FROM pg_stat_activity WHERE datname = %s AND application_name = 'pg_dump' AND wait_event_type = 'Lock'", (db.name,))

        wait_for(pg_dump_waits, 180, what="pg_dump waiting for the lock on users")
        yield run
