"""A throwaway, real PostgreSQL server for tests.

``PgCluster(base_dir)`` runs ``initdb`` into ``base_dir/data`` and ``start()``
serves it on a unix socket and on 127.0.0.1 at a free port. No mocks: tests
talk to the same server binaries the deployment targets.

PostgreSQL refuses to run as root. When the tests run as root (as on CI), every
server binary runs as the ``postgres`` OS user through ``runuser``; ``base_dir``
is handed to that user, and every directory above it must be traversable by it
(``make_base_root()`` creates a suitable one).

Every started cluster is stopped when the Python process exits, even if the
test session crashed (``atexit``).
"""

from __future__ import annotations

import atexit
from contextlib import contextmanager
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
from dataclasses import dataclass
import tempfile
import time
from pathlib import Path

import psycopg2
import psycopg2.sql

SUPERUSER = "postgres"
# Unix socket paths are limited to 107 bytes (sun_path); the server appends
# "/.s.PGSQL.<port>" (at most 16) to the socket directory.
_MAX_SOCKET_DIR = 90

_live_clusters: list["PgCluster"] = []


def find_pg_bin() -> Path:
    """The PostgreSQL bin directory: $PG_BIN, else the newest /usr/lib/postgresql/*/bin."""
    if os.environ.get("PG_BIN"):
        path = Path(os.environ["PG_BIN"])
        if not (path / "initdb").exists():
            raise RuntimeError(f"PG_BIN={path} has no initdb")
        return path
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not candidates:
        raise RuntimeError("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: run scripts/setup.sh (apt-get install postgresql) or set PG_BIN")

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", Path(path).parent.parent.name))

    return Path(max(candidates, key=version)).parent


def _default_os_user() -> str | None:
    """The OS user to run the server as: 'postgres' as root, else ourselves (None)."""
    return SUPERUSER if os.geteuid() == 0 else None


def _check_traversable(path: Path, os_user: str) -> None:
    """Fail early, with a clear message, if os_user cannot reach path."""
    pw = pwd.getpwnam(os_user)
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid == pw.pw_uid:
            continue
        bit = 0o010 if st.st_gid == pw.pw_gid else 0o001
        if not st.st_mode & bit:
            raise PermissionError(
                f"{parent} is not traversable by OS user {os_user!r} (mode "
                f"{oct(st.st_mode & 0o777)}), so PostgreSQL cannot reach {path}; "
                "put clusters under a directory from make_base_root()"
            )


def make_base_root(prefix: str = "pgcluster-") -> Path:
    """A fresh directory to hold clusters, reachable by the server's OS user.

    pytest's own tmp_path lives under a 0700 directory owned by root, which the
    'postgres' user cannot enter; this one is under the system temp dir, 0755.
    """
    os_user = _default_os_user()
    tmp = tempfile.gettempdir()
    if os_user:
        try:
            _check_traversable(Path(tmp), os_user)
        except PermissionError:
            tmp = "/tmp"
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=tmp))
    root.chmod(0o755)
    if os_user:
        pw = pwd.getpwnam(os_user)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    return root


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class PgCluster:
    """One PostgreSQL data directory and the server that runs it.

    ``settings`` are server settings (``-c name=value``) used on every start;
    ``start(settings=...)`` adds to them. fsync stays on unless a test asks.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        base_dir: str | os.PathLike,
        *,
        bin_dir: str | os.PathLike | None = None,
        settings: dict | None = None,
        os_user: str | None = "default",
        initdb: bool = True,
    ):
        self.base_dir = Path(base_dir).resolve()
        self.bin_dir = Path(bin_dir) if bin_dir else find_pg_bin()
        self.os_user = _default_os_user() if os_user == "default" else os_user
        self.settings = dict(settings or {})
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "server.log"
        self.port: int | None = None
        self._own_socket_dir = False

        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._give_to_os_user(self.base_dir)
        self.socket_dir = self._make_socket_dir()

        if initdb and not (self.data_dir / "PG_VERSION").exists():
            self.initdb()

    # --- plumbing ---------------------------------------------------------
    def _give_to_os_user(self, path: Path) -> None:
        if not self.os_user:
            return
        pw = pwd.getpwnam(self.os_user)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        path.chmod(0o755)
        _check_traversable(path, self.os_user)

    def _make_socket_dir(self) -> Path:
        candidate = self.base_dir / "sock"
        if len(str(candidate)) <= _MAX_SOCKET_DIR:
            candidate.mkdir(exist_ok=True)
        else:
            candidate = Path(tempfile.mkdtemp(prefix="pgs-", dir="/tmp"))
            self._own_socket_dir = True
        self._give_to_os_user(candidate)
        return candidate

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a PostgreSQL binary as the server's OS user; raise with its output."""
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.os_user and pwd.getpwuid(os.geteuid()).pw_name != self.os_user:
            cmd = ["runuser", "-u", self.os_user, "--", *cmd]
        # cwd: the server's user may not be able to enter ours (e.g. /root).
        proc = subprocess.run(cmd, cwd=self.base_dir, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(cmd)} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\nserver log tail:\n{self.log_text()[-3000:]}"
            )
        return proc

    # --- lifecycle --------------------------------------------------------
    def initdb(self) -> None:
        base = [
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            # Throwaway data: skip initdb's own fsync of the new files. The
            # server's fsync setting is left alone.
            "--no-sync",
        ]
        proc = self._run(*base, "--locale=C.UTF-8", check=False)
        if proc.returncode != 0:
            # A libc without the C.UTF-8 locale: C sorts the same way.
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._run(*base, "--locale=C")
        # Replication without passwords, for make_standby(); first match wins,
        # so these go above initdb's scram-sha-256 lines.
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "# added by tests/support/pgcluster.py for pg_basebackup and standbys\n"
            "local   replication   all                    trust\n"
            "host    replication   all   127.0.0.1/32     trust\n" + hba.read_text()
        )

    def start(self, settings: dict | None = None) -> "PgCluster":
        """Start the server (waits until it accepts connections); returns self."""
        if settings:
            self.settings.update(settings)
        if self.is_running:
            return self
        for attempt in range(5):
            log_start = len(self.log_text())
            if self.port is None or attempt:
                self.port = free_port(self.host)
            options = [
                "-k",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-c",
                f"listen_addresses={self.host}",
            ]
            for name, value in self.settings.items():
                options += ["-c", f"{name}={value}"]
            proc = self._run(
                "pg_ctl",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "start",
                "-o",
                shlex.join(options),
                check=False,
            )
            if proc.returncode == 0:
                if self not in _live_clusters:
                    _live_clusters.append(self)
                return self
            # Another process took the port between free_port() and bind().
            if "Address already in use" not in self.log_text()[log_start:]:
                break
        raise RuntimeError(f"pg_ctl start failed for {self.data_dir}:\n{proc.stdout}{proc.stderr}\nserver log tail:\n{self.log_text()[-3000:]}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (smart, fast or immediate); no-op when not running."""
        if self.is_running:
            self._run("pg_ctl", "-w", "-t", "60", "-D", str(self.data_dir), "-m", mode, "stop")
        if self in _live_clusters:
            _live_clusters.remove(self)

    def restart(self, settings: dict | None = None) -> "PgCluster":
        """Stop and start again on the same port, with settings added."""
        self.stop()
        return self.start(settings)

    @property
    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False).returncode == 0

    def destroy(self) -> None:
        """Stop the server and delete its files."""
        self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)
        if self._own_socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    def log_text(self) -> str:
        """The server log so far ('' before the first start)."""
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # --- connecting -------------------------------------------------------
    def dsn(
        self,
        dbname: str = "postgres",
        user: str = SUPERUSER,
        password: str | None = None,
        tcp: bool = False,
    ) -> str:
        """A libpq connection string: unix socket by default, TCP with tcp=True."""
        parts = {
            "host": self.host if tcp else str(self.socket_dir),
            "port": self.port,
            "dbname": dbname,
            "user": user,
        }
        if password is not None:
            parts["password"] = password
        return " ".join(f"{k}={_quote_dsn(v)}" for k, v in parts.items())

    def login_params(self, dbname: str = "postgres", user: str = SUPERUSER) -> dict:
        """Connection options as community.postgresql modules take them (unix socket)."""
        return {
            "login_unix_socket": str(self.socket_dir),
            "login_port": self.port,
            "login_user": user,
            "db": dbname,
        }

    def connect(self, dbname: str = "postgres", **kwargs):
        """A psycopg2 connection as the superuser over the unix socket (autocommit)."""
        conn = psycopg2.connect(self.dsn(dbname, **kwargs))
        conn.autocommit = True
        return conn

    def sql(self, query, dbname: str = "postgres", params=None):
        """Run one statement as the superuser; rows as a list of tuples, or None."""
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall() if cur.description is not None else None
        finally:
            conn.close()

    def create_database(self, name: str, owner: str | None = None) -> None:
        query = psycopg2.sql.SQL("CREATE DATABASE {}").format(psycopg2.sql.Identifier(name))
        if owner:
            query += psycopg2.sql.SQL(" OWNER {}").format(psycopg2.sql.Identifier(owner))
        self.sql(query)

    def drop_database(self, name: str) -> None:
        # FORCE: a test that leaked a connection must not break the next one.
        self.sql(psycopg2.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg2.sql.Identifier(name)))

    def create_role(
        self,
        name: str,
        password: str | None = None,
        superuser: bool = False,
        login: bool = True,
    ) -> None:
        query = psycopg2.sql.SQL("CREATE ROLE {} {} {}").format(
            psycopg2.sql.Identifier(name),
            psycopg2.sql.SQL("LOGIN" if login else "NOLOGIN"),
            psycopg2.sql.SQL("SUPERUSER" if superuser else "NOSUPERUSER"),
        )
        params = None
        if password is not None:
            query += psycopg2.sql.SQL(" PASSWORD %s")
            params = (password,)
        self.sql(query, params=params)

    # --- replication ------------------------------------------------------
    def make_standby(self, base_dir: str | os.PathLike, settings: dict | None = None) -> "PgCluster":
        """A hot standby of this (running) cluster, streaming from it, started.

        Built with ``pg_basebackup -R``, which writes primary_conninfo and
        standby.signal; the standby follows us over our unix socket.
        """
        (wal_level,) = self.sql("SHOW wal_level")[0]
        if wal_level == "minimal":
            raise RuntimeError("make_standby needs wal_level=replica or logical on the primary")
        standby = PgCluster(
            base_dir,
            bin_dir=self.bin_dir,
            os_user=self.os_user,
            settings={**self.settings, **(settings or {})},
            initdb=False,
        )
        self._run(
            "pg_basebackup",
            "-D",
            str(standby.data_dir),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
        )
        standby.start()
        deadline = time.monotonic() + 30
        while standby.sql("SELECT pg_is_in_recovery()")[0][0] is not True:
            if time.monotonic() > deadline:
                raise RuntimeError("standby did not enter recovery:\n" + standby.log_text()[-3000:])
            time.sleep(0.1)
        return standby

    def wait_for_replay(self, standby: "PgCluster", timeout: float = 30) -> None:
        """Block until standby has replayed everything written here so far."""
        (lsn,) = self.sql("SELECT pg_current_wal_lsn()")[0]
        deadline = time.monotonic() + timeout
        while True:
            (caught_up,) = standby.sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", params=(lsn,))[0]
            if caught_up:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"standby did not replay up to {lsn} in {timeout}s")
            time.sleep(0.05)

    def __repr__(self) -> str:
        return f"PgCluster({str(self.base_dir)!r}, port={self.port})"


def _quote_dsn(value) -> str:
    value = str(value)
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@atexit.register
def _stop_all() -> None:
    """Never leave a server behind, whatever happened to the test session."""
    for cluster in list(_live_clusters):
        try:
            cluster.stop("immediate")
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


@dataclass
class Database:
    """A database on a test cluster, with helpers that run SQL inside it."""

    cluster: PgCluster
    name: str

    def sql(self, query, params=None):
        """Run one statement as the superuser in this database; rows or None."""
        return self.cluster.sql(query, dbname=self.name, params=params)

    def dsn(self, **kwargs) -> str:
        return self.cluster.dsn(self.name, **kwargs)

    def connect(self, **kwargs):
        return self.cluster.connect(self.name, **kwargs)

    def login_params(self, **kwargs) -> dict:
        """Connection options for community.postgresql-style modules."""
        return self.cluster.login_params(self.name, **kwargs)

    @contextmanager
    def open_transaction(self, *statements, isolation_level=None):
        """Another session (an app, a report) with a transaction open on the statements, kept
        until the block ends, then rolled back. Yields its connection."""
        conn = self.connect()
        conn.set_session(isolation_level=isolation_level, autocommit=False)
        try:
            cur = conn.cursor()
            for statement in statements:
                cur.execute(statement)
            yield conn
        finally:
            conn.rollback()
            conn.close()

    def tables(self, schema: str = "public") -> list[str]:
        """Names of the ordinary tables in schema, sorted."""
        rows = self.sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1",
            (schema,),
        )
        return [name for (name,) in rows]
