"""What a run of the deploy playbooks returns and where it puts things: the
integration and hardening tests read runs through these."""

from __future__ import annotations

import os
import pwd
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

# The modules run as `postgres`, which cannot execute the venv's python under /root.
SYSTEM_PYTHON = "/usr/bin/python3"

# A version in the summary a deploy ends with (plugins/action/db_deploy_report.py):
# "  000 create_migrations_table   applied  12 ms", "  014 create_tasks_table  not run".
# A collapsed run of versions ("  000-999  already applied (1000 versions)") is not one.
VERSION_LINE = re.compile(r"^  (\d+) (\S+) +(applied|already applied|would apply|failed|not run)(?:  |$| - )", re.M)
RECAP_LINE = re.compile(r"^localhost\s+:\s+(.*)$", re.M)
# Lines of the output that are not results: the play line, the recap and what follows it.
PLAY_LINE = re.compile(r"^PLAY \[.*\]( \[CHECK MODE\])?$")


@dataclass
class Site:
    """Where one test's deploy puts things, reachable by the `postgres` OS user."""

    root: Path
    migrations: Path
    backups: Path = field(init=False)
    releases: Path = field(init=False)
    reports: Path = field(init=False)

    def __post_init__(self):
        self.backups = self.root / "backups"
        self.releases = self.root / "releases"
        self.reports = self.root / "reports"

    def backup_files(self) -> list[Path]:
        return sorted(self.backups.glob("*.dump")) if self.backups.exists() else []

    def shipped(self) -> list[Path]:
        """Every file or directory under the release root."""
        return sorted(self.releases.rglob("*")) if self.releases.exists() else []


@dataclass
class DeployRun:
    rc: int
    stdout: str
    stderr: str
    report: dict | None
    report_path: Path | None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def version_lines(self) -> list[tuple[str, str, str]]:
        """(version, name, outcome) of each version line of the closing summary."""
        return VERSION_LINE.findall(self.stdout)

    def fatal_lines(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("fatal:")]

    def changed_lines(self) -> list[str]:
        """Each changed result: "changed: [localhost] db_deploy : <task name>[ (item=...)]"."""
        return [line for line in self.stdout.splitlines() if line.startswith("changed:")]

    def shown_lines(self) -> list[str]:
        """Every line before the PLAY RECAP but the play lines and blank lines: what the run said."""
        before_recap = self.stdout.split("PLAY RECAP", 1)[0]
        return [line for line in before_recap.splitlines() if line.strip() and not PLAY_LINE.match(line)]

    def summary(self) -> list[str]:
        """The closing summary of localhost: its first line and the indented lines under it."""
        lines = self.stdout.splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("localhost ") and (": deploy " in line or ": dry run " in line)]
        assert starts, "no summary:\n" + self.output
        block = [lines[starts[-1]]]
        for line in lines[starts[-1] + 1 :]:
            if not line.startswith("  "):
                break
            block.append(line)
        return block

    def recap(self) -> dict[str, int]:
        """The PLAY RECAP counters of localhost: {'ok': 25, 'changed': 0, ...}."""
        found = RECAP_LINE.findall(self.stdout)
        assert found, "no PLAY RECAP line:\n" + self.output
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", found[-1])}


def write_sql(directory: Path, name: str, sql: str) -> Path:
    path = directory / name
    path.write_text(sql)
    return path


@dataclass
class TcpLogin:
    """Shape (b): TCP to 127.0.0.1 with a password; vars plus the secret, apart."""

    role: str
    password: str
    vars: dict

    def secrets(self, password: str | None = None) -> dict:
        return {"db_deploy_login_password": self.password if password is None else password}


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def owner_of(path: Path) -> str:
    return pwd.getpwuid(path.stat().st_uid).pw_name


def dry_run_tmp_entries() -> set[str]:
    return {name for name in os.listdir("/tmp") if "db-deploy-check" in name}
