#!/usr/bin/env python3
"""Benchmark postgresql_migrate against a psql floor and Ansible's own start-up.

Not a test: it prints figures and whether each target is met, and exits 0
unless something crashes. See bench/README.md.

One run starts a throwaway PostgreSQL (tests/pgcluster.py, default settings,
fsync on), generates N tiny migrations for each size and measures, each
`--repeat` times on a fresh database, reporting the median:

  floor      one psql session applying the files, one transaction per file
  module     ansible-playbook running postgresql_migrate on the directory
  noop       the same playbook again with nothing pending   (largest N only)
  check      ansible-playbook --check with N pending         (largest N only)
  baseline   ansible-playbook of one ansible.builtin.debug task    (measured
             in each repetition of the largest N, next to noop and check)

Targets: module <= 1.2x floor at N=1000; noop and check <= 2x baseline.
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
VENV_PY = REPO / ".venv" / "bin" / "python"
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
RESULTS = REPO / "bench" / "results" / "latest.json"

sys.path.insert(0, str(REPO / "tests"))
import pgcluster  # noqa: E402
from pgcluster import PgCluster, make_base_root  # noqa: E402

MODULE_TARGET = 1.2    # module(N=1000) / floor(N=1000)
ANSIBLE_TARGET = 2.0   # noop / baseline and check / baseline
TARGET_N = 1000
BUSY_LOAD = 1.5        # warn above this 1-minute load average (the benchmark alone makes about 1)

PLAY_HEADER = """\
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: {python}
  tasks:
"""

MIGRATE_TASK = """\
    - name: apply migrations
      postgresql_migrate:
        path: "{{{{ mig_path }}}}"
        db: "{{{{ db_name }}}}"
        login_unix_socket: {socket}
        login_port: {port}
        login_user: postgres
"""

DEBUG_TASK = """\
    - name: trivial
      ansible.builtin.debug:
        msg: hi
"""

# Not a target: what running any module through Ansible adds to the baseline (debug runs in
# the controller; ping is shipped to the host and run by a Python process, as our module is).
PING_TASK = """\
    - name: trivial module
      ansible.builtin.ping:
"""


def log(msg: str) -> None:
    print(msg, flush=True)


# --- inputs -------------------------------------------------------------------

def write_migrations(directory: Path, n: int) -> list[Path]:
    directory.mkdir(parents=True)
    files = []
    for i in range(1, n + 1):
        t = "bench_%04d" % i
        path = directory / ("%04d_bench_step.sql" % i)
        path.write_text(
            f"CREATE TABLE {t} (id int PRIMARY KEY, v text);\n"
            f"CREATE INDEX {t}_v ON {t} (v);\n"
            f"INSERT INTO {t} VALUES (1, 'x');\n"
        )
        files.append(path)
    return files


def write_psql_script(path: Path, files: list[Path]) -> None:
    lines = []
    for f in files:
        lines += ["BEGIN;", "\\i " + str(f), "COMMIT;"]
    path.write_text("\n".join(lines) + "\n")


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
        self.env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                        ANSIBLE_FORCE_COLOR="0")
        self.inventory = work / "inventory.ini"
        self.inventory.write_text("localhost ansible_connection=local\n")
        header = PLAY_HEADER.format(python=VENV_PY)
        self.migrate_playbook = work / "migrate.yml"
        self.migrate_playbook.write_text(
            header + MIGRATE_TASK.format(socket=cluster.socket_dir, port=cluster.port))
        self.trivial_playbook = work / "trivial.yml"
        self.trivial_playbook.write_text(header + DEBUG_TASK)
        self.ping_playbook = work / "ping.yml"
        self.ping_playbook.write_text(header + PING_TASK)

    def error(self, msg: str) -> None:
        self.errors.append(msg)
        log("  ERROR: " + msg)

    def record(self, case: str, n: int, seconds: float) -> None:
        self.samples.setdefault((case, n), []).append(seconds)

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

    def bench_table_count(self, db: str) -> int:
        return self.cluster.sql(
            r"SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'bench\_%'",
            dbname=db)[0][0]

    def history_count(self, db: str) -> int | None:
        if self.cluster.sql("SELECT to_regclass('public.schema_migrations')", dbname=db)[0][0] is None:
            return None
        return self.cluster.sql("SELECT count(*) FROM schema_migrations", dbname=db)[0][0]

    def timed(self, cmd: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
        self.loads.append(os.getloadavg()[0])
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
        return time.perf_counter() - start, proc

    def psql(self, db: str, script: Path) -> float:
        cmd = [str(self.cluster.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
               "-h", str(self.cluster.socket_dir), "-p", str(self.cluster.port),
               "-U", pgcluster.SUPERUSER, "-d", db, "-f", str(script)]
        seconds, proc = self.timed(cmd)
        if proc.returncode != 0:
            self.error("psql on %s exited %d: %s" % (db, proc.returncode, (proc.stderr or proc.stdout)[-2000:]))
        return seconds

    def playbook(self, playbook: Path, extra: dict | None = None, check: bool = False,
                 expect_changed: int | None = None, what: str = "") -> float:
        cmd = [str(ANSIBLE_PLAYBOOK), "-i", str(self.inventory), str(playbook)]
        if extra:
            cmd += ["-e", json.dumps(extra)]
        if check:
            cmd.append("--check")
        seconds, proc = self.timed(cmd, cwd=REPO, env=self.env)
        if proc.returncode != 0:
            self.error("ansible-playbook %s exited %d:\n%s%s" % (
                what, proc.returncode, proc.stdout[-3000:], proc.stderr[-2000:]))
        elif expect_changed is not None:
            m = re.search(r"localhost\s*:.*?changed=(\d+)", proc.stdout)
            if not m or int(m.group(1)) != expect_changed:
                self.error("ansible-playbook %s: expected changed=%d in the recap:\n%s"
                           % (what, expect_changed, proc.stdout[-1500:]))
        return seconds

    # --- cases ---------------------------------------------------------------

    def warm_up(self, mig_dir: Path, files: list[Path]) -> None:
        """One uncounted run of each command, so page cache and .pyc files are warm."""
        self.playbook(self.trivial_playbook, what="warm-up trivial")
        db = self.fresh_db("warmup")
        script = self.work / "warmup.psql"
        write_psql_script(script, files)
        self.psql(db, script)
        self.drop_db(db)
        db = self.fresh_db("warmup")
        self.playbook(self.migrate_playbook, {"mig_path": str(mig_dir), "db_name": db}, what="warm-up migrate")
        self.drop_db(db)

    def baseline(self, r: int) -> None:
        s = self.playbook(self.trivial_playbook, what="trivial")
        self.record("baseline", 0, s)
        log("  baseline          rep %d: %.3fs" % (r + 1, s))
        s = self.playbook(self.ping_playbook, what="trivial module")
        self.record("ping", 0, s)
        log("  ping              rep %d: %.3fs" % (r + 1, s))

    def size(self, n: int, mig_dir: Path, files: list[Path], extras: bool) -> None:
        script = self.work / ("apply_%d.psql" % n)
        write_psql_script(script, files)
        extra = {"mig_path": str(mig_dir)}
        for r in range(self.repeat):
            # floor: one psql session, one transaction per file
            db = self.fresh_db("floor%d" % n)
            s = self.psql(db, script)
            self.record("floor", n, s)
            got = self.bench_table_count(db)
            if got != n:
                self.error("floor N=%d: %d bench tables, expected %d" % (n, got, n))
            self.drop_db(db)
            log("  floor      N=%-5d rep %d: %.3fs" % (n, r + 1, s))

            # module: ansible-playbook running postgresql_migrate
            db = self.fresh_db("module%d" % n)
            s = self.playbook(self.migrate_playbook, dict(extra, db_name=db), expect_changed=1,
                              what="migrate N=%d" % n)
            self.record("module", n, s)
            tables, history = self.bench_table_count(db), self.history_count(db)
            if tables != n or history != n:
                self.error("module N=%d: %s bench tables and %s schema_migrations rows, expected %d each"
                           % (n, tables, history, n))
            log("  module     N=%-5d rep %d: %.3fs" % (n, r + 1, s))

            if extras:
                # Ansible's start-up, measured next to the runs it is compared with
                self.baseline(r)
                # no-op rerun on the database just migrated
                self.settle()
                s = self.playbook(self.migrate_playbook, dict(extra, db_name=db), expect_changed=0,
                                  what="no-op rerun N=%d" % n)
                self.record("noop", n, s)
                if self.history_count(db) != n:
                    self.error("no-op rerun N=%d changed schema_migrations" % n)
                log("  noop       N=%-5d rep %d: %.3fs" % (n, r + 1, s))
            self.drop_db(db)

            if extras:
                # check mode with everything pending, on another fresh database
                db = self.fresh_db("check%d" % n)
                s = self.playbook(self.migrate_playbook, dict(extra, db_name=db), check=True,
                                  expect_changed=1, what="--check N=%d" % n)
                self.record("check", n, s)
                tables, history = self.bench_table_count(db), self.history_count(db)
                if tables != 0 or history is not None:
                    self.error("check N=%d created something: %s bench tables, schema_migrations %s"
                               % (n, tables, "absent" if history is None else "with %d rows" % history))
                self.drop_db(db)
                log("  check      N=%-5d rep %d: %.3fs" % (n, r + 1, s))


# --- reporting ---------------------------------------------------------------------

def build_rows(samples: dict, sizes: list[int], extras_n: int) -> list[dict]:
    med = {k: statistics.median(v) for k, v in samples.items()}
    base = med.get(("baseline", 0))
    rows = []

    def row(case, n, ratio=None, ratio_of=None, target=None):
        if (case, n) not in med:
            return
        entry = dict(case=case, n=n if case not in ("baseline", "ping") else None, median_s=round(med[(case, n)], 4),
                     samples_s=[round(s, 4) for s in samples[(case, n)]],
                     per_migration_ms=round(med[(case, n)] / n * 1000, 3) if n and case in ("floor", "module") else None,
                     ratio=round(ratio, 3) if ratio is not None else None, ratio_of=ratio_of,
                     target=target, met=None)
        if target is not None and ratio is not None:
            entry["met"] = ratio <= target
        # per repetition, run i / reference run i (measured next to each other)
        ref = {"module": ("floor", n), "noop": ("baseline", 0), "check": ("baseline", 0),
               "ping": ("baseline", 0)}.get(case)
        if ref in samples:
            entry["paired_ratios"] = [round(m / f, 3) for m, f in zip(samples[(case, n)], samples[ref])]
        rows.append(entry)

    row("baseline", 0)
    ping = med.get(("ping", 0))
    row("ping", 0, ping / base if ping and base else None, "baseline")
    for n in sizes:
        row("floor", n)
        floor = med.get(("floor", n))
        mod = med.get(("module", n))
        row("module", n, mod / floor if mod and floor else None, "floor",
            MODULE_TARGET if n == TARGET_N else None)
    for case in ("noop", "check"):
        m = med.get((case, extras_n))
        row(case, extras_n, m / base if m and base else None, "baseline", ANSIBLE_TARGET)
    return rows


def marginal_cost(samples: dict, sizes: list[int]) -> dict | None:
    """(median at the largest N - median at the smallest N) / (difference in N), module and floor."""
    if len(sizes) < 2:
        return None
    a, b = sizes[0], sizes[-1]
    med = {k: statistics.median(v) for k, v in samples.items()}
    try:
        module = (med[("module", b)] - med[("module", a)]) / (b - a) * 1000
        floor = (med[("floor", b)] - med[("floor", a)]) / (b - a) * 1000
    except KeyError:
        return None
    return dict(from_n=a, to_n=b, module_ms=round(module, 3), floor_ms=round(floor, 3),
                ratio=round(module / floor, 3) if floor > 0 else None)


def any_module_bound(samples: dict, n: int) -> dict | None:
    """The lowest module/floor ratio any module run through ansible-playbook can reach at N=n.

    Such a run costs at least what ping costs (start-up, packing, shipping and starting a module
    that does nothing) plus the database work, which is the floor less psql's own start-up of a
    few milliseconds: (floor + ping) / floor, a slight overestimate of the floor's share.
    """
    med = {k: statistics.median(v) for k, v in samples.items()}
    try:
        floor, ping, module = med[("floor", n)], med[("ping", 0)], med[("module", n)]
    except KeyError:
        return None
    bound = (floor + ping) / floor
    return dict(n=n, bound_ratio=round(bound, 3), module_over_bound=round(module / (floor + ping), 3),
                bound_meets_target=bound <= MODULE_TARGET)


def fmt(entry: dict) -> list[str]:
    ratio = "-" if entry["ratio"] is None else "%.2fx %s" % (entry["ratio"], entry["ratio_of"])
    target = "-" if entry["target"] is None else "<= %.1fx %s" % (entry["target"], entry["ratio_of"])
    met = "-" if entry["met"] is None else ("yes" if entry["met"] else "NO")
    spread = "%.3f-%.3f" % (min(entry["samples_s"]), max(entry["samples_s"]))
    return [entry["case"], "-" if entry["n"] is None else str(entry["n"]), "%.3f" % entry["median_s"],
            spread, ratio, target, met]


HEAD = ["case", "N", "median s", "min-max s", "ratio", "target", "met"]


def print_table(rows: list[dict]) -> None:
    cells = [HEAD] + [fmt(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEAD))]
    for i, c in enumerate(cells):
        print("  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def print_markdown(rows: list[dict]) -> None:
    print("| " + " | ".join(HEAD) + " |")
    print("|" + "|".join(["---", "--:", "--:", "--:", "--:", "---", "---"]) + "|")
    for r in rows:
        print("| " + " | ".join(fmt(r)) + " |")


def machine_info(cluster: PgCluster) -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ansible = subprocess.run([str(REPO / ".venv" / "bin" / "ansible"), "--version"],
                             capture_output=True, text=True).stdout.splitlines()[:1]
    return dict(
        nproc=os.cpu_count(), cpu=cpu, kernel=platform.release(),
        python=platform.python_version(), ansible=(ansible[0] if ansible else ""),
        postgresql=cluster.sql("SHOW server_version")[0][0],
        fsync=cluster.sql("SHOW fsync")[0][0],
        synchronous_commit=cluster.sql("SHOW synchronous_commit")[0][0],
        data_dir_fs=subprocess.run(["df", "--output=fstype", str(cluster.data_dir)],
                                   capture_output=True, text=True).stdout.split()[-1:],
    )


# --- main ----------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000", help="comma-separated migration counts (default 10,100,1000)")
    ap.add_argument("--repeat", type=int, default=3, help="measurements per case; the median is reported (default 3)")
    ap.add_argument("--keep", action="store_true", help="leave the cluster (and generated files) in place")
    args = ap.parse_args()
    sizes = sorted(set(int(x) for x in args.sizes.split(",") if x.strip()))
    if not sizes or min(sizes) < 1 or args.repeat < 1:
        ap.error("sizes must be positive integers and repeat >= 1")
    for exe in (VENV_PY, ANSIBLE_PLAYBOOK):
        if not exe.exists():
            ap.error("%s is missing: run make setup" % exe)
    extras_n = TARGET_N if TARGET_N in sizes else max(sizes)

    base_root = make_base_root("pgbench-")
    cluster = PgCluster(base_root / "pg")
    work = Path(tempfile.mkdtemp(prefix="migrate-bench-"))
    started = time.time()
    try:
        cluster.start()
        info = machine_info(cluster)
        log("machine: nproc=%s, %s, kernel %s; PostgreSQL %s (fsync=%s, synchronous_commit=%s, data on %s); %s"
            % (info["nproc"], info["cpu"], info["kernel"], info["postgresql"], info["fsync"],
               info["synchronous_commit"], ",".join(info["data_dir_fs"]), info["ansible"]))
        load_start = os.getloadavg()
        log("load average at start: %s" % " ".join("%.2f" % x for x in load_start))
        log("cluster: %s (socket %s); work dir %s; sizes %s; repeat %d"
            % (cluster.data_dir, cluster.socket_dir, work, sizes, args.repeat))
        bench = Bench(cluster, work, args.repeat)
        dirs = {n: work / ("migrations_%d" % n) for n in sizes}
        files = {n: write_migrations(dirs[n], n) for n in sizes}

        log("warm-up (not counted)")
        bench.warm_up(dirs[min(sizes)], files[min(sizes)])
        for n in sizes:
            log("N=%d" % n)
            bench.size(n, dirs[n], files[n], extras=(n == extras_n))

        rows = build_rows(bench.samples, sizes, extras_n)
        marginal = marginal_cost(bench.samples, sizes)
        bound = any_module_bound(bench.samples, extras_n)
        load_max = max(bench.loads)
        info["loadavg_start"] = [round(x, 2) for x in load_start]
        info["loadavg_1min_max"] = round(load_max, 2)
        print()
        print("Results (median of %d; wall seconds, whole command)" % args.repeat)
        # The benchmark itself keeps about one CPU busy; much more than that means company.
        if load_max > BUSY_LOAD:
            print("WARNING: the 1-minute load average reached %.2f on %d CPUs during the run (the benchmark "
                  "alone makes about 1): other processes competed for CPU and disk, so the figures are noisy"
                  % (load_max, os.cpu_count()))
        print_table(rows)
        print()
        print("Markdown:")
        print()
        print_markdown(rows)
        print()
        if marginal and marginal["ratio"] is not None:
            print("Marginal cost per migration between N=%d and N=%d (fixed start-up costs cancel out): "
                  "module %.2f ms, floor %.2f ms, %.2fx (informative, no target)"
                  % (marginal["from_n"], marginal["to_n"], marginal["module_ms"], marginal["floor_ms"],
                     marginal["ratio"]))
        if bound:
            print("Any module run through ansible-playbook needs at least floor + ping at N=%d: %.2fx floor "
                  "(target %.1fx: %s on this machine); the module takes %.2fx that"
                  % (bound["n"], bound["bound_ratio"], MODULE_TARGET,
                     "reachable" if bound["bound_meets_target"] else "out of reach for any module",
                     bound["module_over_bound"]))
        if bench.errors:
            print("%d ERROR(S) during the run (figures above may be meaningless):" % len(bench.errors))
            for e in bench.errors:
                print("  - " + e.splitlines()[0])
        else:
            print("no errors: every run succeeded and the databases held what they should")

        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(dict(
            date=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            duration_s=round(time.time() - started, 1),
            machine=info, sizes=sizes, repeat=args.repeat,
            targets=dict(module_vs_floor_at_n=TARGET_N, module_vs_floor=MODULE_TARGET,
                         noop_and_check_vs_baseline=ANSIBLE_TARGET),
            results=rows, marginal_per_migration=marginal, any_module_bound=bound, errors=bench.errors,
        ), indent=2) + "\n")
        print("wrote %s" % RESULTS.relative_to(REPO))
    finally:
        if args.keep:
            if cluster in pgcluster._live_clusters:  # keep atexit from stopping it
                pgcluster._live_clusters.remove(cluster)
            runuser = "runuser -u %s -- " % cluster.os_user if cluster.os_user else ""
            print("kept: cluster %s (socket %s, port %s), files in %s; stop with: %s%s/pg_ctl -D %s stop"
                  % (cluster.data_dir, cluster.socket_dir, cluster.port, work, runuser, cluster.bin_dir,
                     cluster.data_dir))
        else:
            cluster.destroy()
            shutil.rmtree(base_root, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
