# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a deploy's JSON report and its Markdown summary on the controller, and return the
summary a person reads at the end of the run (the db_deploy callback prints it). A failed deploy
(the report's error) fails the task with that error, after the report is written: one task ends
every deploy.

An action plugin, not a module: the files are written by the controller process itself, so the
report costs no module call, no connection and no temporary file on any host. The report is an
artifact on the controller: the task never reports changed. docs/report.md describes the fields.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from datetime import datetime, timezone

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.release import __version__ as ANSIBLE_VERSION

SCHEMA_VERSION = 1

# A run of more versions than this with the same outcome is one line of the summary, so that a
# no-op over a thousand versions stays short; the report keeps every version.
COLLAPSE_AFTER = 10

# What happened to a version, in words, by the module's status.
WORDS = {
    "applied": "applied",
    "already_applied": "already applied",
    "would_apply": "would apply",
    "failed": "failed",
    "skipped": "not run",
    "pending": "not run",
}


def human_ms(ms) -> str:
    if ms is None:
        return ""
    ms = int(ms)
    if ms < 1000:
        return "%d ms" % ms
    if ms < 60000:
        return "%.1f s" % (ms / 1000.0)
    return "%d min %d s" % (ms // 60000, (ms % 60000) // 1000)


def human_bytes(size) -> str:
    if size is None:
        return ""
    size = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return ("%d %s" % (size, unit)) if unit == "bytes" else ("%.1f %s" % (size, unit))
        size /= 1024.0
    return ""  # not reached


def iso(epoch) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def outcome_word(status: str, check_mode: bool, failed: bool) -> str:
    """A plan's would_apply means "would apply" in a dry run, "not run" when a real run stopped."""
    if status == "would_apply" and not check_mode and failed:
        return "not run"
    return WORDS.get(status, status.replace("_", " "))


def ci_job(environ) -> dict | None:
    """The CI job that ran the deploy (GitLab CI, GitHub Actions), or None."""
    if environ.get("CI_JOB_ID"):
        return {"system": "gitlab", "job_id": environ["CI_JOB_ID"], "job_url": environ.get("CI_JOB_URL")}
    if environ.get("GITHUB_RUN_ID"):
        server, repo = environ.get("GITHUB_SERVER_URL"), environ.get("GITHUB_REPOSITORY")
        url = "%s/%s/actions/runs/%s" % (server, repo, environ["GITHUB_RUN_ID"]) if server and repo else None
        return {"system": "github", "job_id": environ["GITHUB_RUN_ID"], "job_url": url}
    return None


def tool_version(directory: str) -> str:
    """`git describe --always --dirty` of the playbook directory, "unknown" without git."""
    try:
        proc = subprocess.run(["git", "-C", directory, "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else "unknown"


def no_backup_reason(report: dict) -> str:
    if report["check_mode"]:
        return "a dry run takes no backup"
    if any(m.get("status") in ("applied", "failed") for m in report["migrations"]):
        return "none was taken"
    if report["result"] == "failed":
        return "the run stopped before the backup step"
    return "nothing was pending"


def failure_note(report: dict, migration: dict) -> str:
    """Where and why the failed version failed, from the module's failed_migration."""
    failed = report.get("failed_migration") or {}
    if migration.get("status") != "failed" or str(failed.get("version")) != str(migration.get("version")):
        return ""
    where = ", ".join(
        x for x in (("line %s" % failed["line"]) if failed.get("line") else "", ("SQLSTATE %s" % failed["sqlstate"]) if failed.get("sqlstate") else "") if x
    )
    return ("%s: %s" % (where, failed.get("message") or "")) if where else str(failed.get("message") or "")


def version_lines(report: dict) -> list[str]:
    """One line per version, runs of more than COLLAPSE_AFTER with the same outcome in one."""
    failed = report["result"] == "failed"
    rows = []
    for m in report["migrations"]:
        word = outcome_word(m.get("status", "?"), report["check_mode"], failed)
        rows.append((m, word))
    if not rows:
        return []
    width = max(len("%s %s" % (m["version"], m["name"])) for m, _word in rows)
    lines = []
    i = 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and rows[j + 1][1] == rows[i][1] and "message" not in rows[j + 1][0]:
            j += 1
        run = rows[i : j + 1]
        if len(run) > COLLAPSE_AFTER and "message" not in rows[i][0]:
            first, last = run[0][0], run[-1][0]
            timed = [m for m, _word in run if m.get("duration_ms") is not None]
            detail = "%d versions" % len(run)
            if timed:
                slowest = max(timed, key=lambda m: m["duration_ms"])
                detail += ", %s in all; slowest %s %s %s" % (
                    human_ms(sum(m["duration_ms"] for m in timed)),
                    slowest["version"],
                    slowest["name"],
                    human_ms(slowest["duration_ms"]),
                )
            label = "%s-%s" % (first["version"], last["version"])
            lines.append("  %s  %s (%s)" % (label.ljust(width), run[0][1], detail))
            i = j + 1
            continue
        m, word = rows[i]
        line = "  %s  %s" % (("%s %s" % (m["version"], m["name"])).ljust(width), word)
        if m.get("duration_ms") is not None:
            line += "  %s" % human_ms(m["duration_ms"])
        note = failure_note(report, m) or m.get("message")
        if note:
            line += " - %s" % " ".join(str(note).split())
        lines.append(line)
        i += 1
    return lines


def summary_lines(report: dict, json_path: str, md_path: str) -> list[str]:
    """What a person reads at the end of the run, one block per host."""
    migrations = report["migrations"]
    counts: dict[str, int] = {}
    for m in migrations:
        word = outcome_word(m.get("status", "?"), report["check_mode"], report["result"] == "failed")
        counts[word] = counts.get(word, 0) + 1
    if report["result"] == "failed":
        verdict = "dry run FAILED" if report["check_mode"] else "deploy FAILED"
    else:
        verdict = "dry run OK" if report["check_mode"] else "deploy OK"
    took = " in %s" % human_ms(report["duration_ms"]) if report["duration_ms"] is not None else ""
    order = ["applied", "would apply", "failed", "not run", "already applied"]
    counted = ", ".join("%d %s" % (counts[w], w) for w in order + sorted(set(counts) - set(order)) if counts.get(w))
    head = "%s %s: %s%s, release %s: %s" % (report["host"], report["database"], verdict, took, report["release"], counted or "no migration files")
    if report.get("current_version"):
        head += "; now at version %s" % report["current_version"]
    lines = [head]
    lines += version_lines(report)
    if report["missing"]:
        lines.append("  missing (recorded, no file): %s" % ", ".join(str(v) for v in report["missing"]))
    backup = report["backup"]
    if backup:
        facts = ", ".join(x for x in (human_bytes(backup.get("size")), human_ms(backup.get("duration_ms"))) if x)
        lines.append("  backup: %s%s" % (backup["path"], " (%s)" % facts if facts else ""))
    else:
        lines.append("  backup: none (%s)" % report["no_backup_reason"])
    lines.append("  report: %s (and %s)" % (json_path, os.path.basename(md_path)))
    if report["result"] == "failed":
        lines.append("  next step: %s" % " ".join(str(report["error"] or "see the error above").split()))
    return lines


def md_cell(value) -> str:
    return " ".join(str(value).split()).replace("|", "\\|") if value not in (None, "") else ""


def markdown(report: dict) -> str:
    """The summary a pipeline shows: the facts of the run and a per-version duration table."""
    verdict = "failed" if report["result"] == "failed" else "ok"
    kind = "Dry run" if report["check_mode"] else "Deploy"
    out = ["# %s of %s on %s: %s" % (kind, report["database"], report["host"], verdict), ""]
    backup = report["backup"]
    if backup:
        backup_text = "`%s`" % backup["path"] + "".join(", %s" % x for x in (human_bytes(backup.get("size")), human_ms(backup.get("duration_ms"))) if x)
    else:
        backup_text = "none (%s)" % report["no_backup_reason"]
    ci = report["ci"]
    facts = [
        ("release", report["release"]),
        ("started", report["started"]),
        ("ended", report["ended"]),
        ("duration", human_ms(report["duration_ms"])),
        ("version now", report["current_version"]),
        ("backup", backup_text),
        ("server", report["server_version"]),
        ("tool", report["tool_version"]),
        ("Ansible", report["ansible_version"]),
        ("CI job", ("[%s](%s)" % (ci["job_id"], ci["job_url"]) if ci.get("job_url") else ci["job_id"]) if ci else None),
    ]
    out += ["| | |", "|---|---|"]
    out += ["| %s | %s |" % (k, v if k in ("backup", "CI job") else md_cell(v)) for k, v in facts if v]
    out += ["", "## Versions", ""]
    if report["migrations"]:
        out += ["| version | name | outcome | duration (ms) | note |", "|---|---|---|--:|---|"]
        failed = report["result"] == "failed"
        for m in report["migrations"]:
            out.append(
                "| %s | %s | %s | %s | %s |"
                % (
                    md_cell(m.get("version")),
                    md_cell(m.get("name")),
                    outcome_word(m.get("status", "?"), report["check_mode"], failed),
                    "" if m.get("duration_ms") is None else int(m["duration_ms"]),
                    md_cell(failure_note(report, m) or m.get("message")),
                )
            )
    else:
        out.append("No migration files.")
    if report["missing"]:
        out += ["", "Recorded in the history table without a file: %s." % ", ".join(map(str, report["missing"]))]
    if report["result"] == "failed":
        out += ["", "## What failed and what to do", "", "```text", str(report["error"] or ""), "```"]
    return "\n".join(out) + "\n"


def complete(report: dict, started, ended: float, backup, environ, playbook_dir: str) -> dict:
    """The report as written: the role's facts plus timing, versions, CI job and backup."""
    full = {"schema_version": SCHEMA_VERSION}
    full.update(report)
    started = float(started) if started not in (None, "") else None
    full["started"] = iso(started)
    full["ended"] = iso(ended)
    full["duration_ms"] = int(round((ended - started) * 1000)) if started is not None else None
    full["tool_version"] = tool_version(playbook_dir)
    full["ansible_version"] = ANSIBLE_VERSION
    full["ci"] = ci_job(environ)
    full["migrations"] = [dict(m, duration_ms=m.get("duration_ms")) for m in full.get("migrations") or []]
    full.setdefault("missing", [])
    if backup and backup.get("file"):
        full["backup"] = {"path": backup["file"], "size": backup.get("size"), "duration_ms": backup.get("duration_ms")}
    elif full.get("backup_file"):
        full["backup"] = {"path": full["backup_file"], "size": None, "duration_ms": None}
    else:
        full["backup"] = None
    full["no_backup_reason"] = None if full["backup"] else no_backup_reason(full)
    return full


def file_stem(report: dict, ended: float) -> str:
    stamp = datetime.fromtimestamp(ended, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    parts = [report["host"], report["database"], report["release"] or "unnamed", stamp]
    stem = "-".join(re.sub(r"[^A-Za-z0-9._-]", "_", str(p)) for p in parts)
    return stem + ("-check" if report["check_mode"] else "")


def write(path: str, text: str) -> None:
    # Written whole under a temporary name, then renamed: a pipeline never reads half a report.
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o640)
    os.replace(tmp, path)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        # roles/db_deploy/../../reports is shown as the directory it is.
        directory = os.path.normpath(to_text(args["dir"]))
        ended = time.time()
        report = complete(
            dict(args["report"]), args.get("started"), ended, args.get("backup"), os.environ, to_text((task_vars or {}).get("playbook_dir") or os.getcwd())
        )
        os.makedirs(directory, mode=0o750, exist_ok=True)
        stem = os.path.join(directory, file_stem(report, ended))
        json_path, md_path = stem + ".json", stem + ".md"
        write(json_path, json.dumps(report, indent=4, sort_keys=True, default=str) + "\n")
        write(md_path, markdown(report))
        result.update(changed=False, report=json_path, summary_file=md_path, summary=summary_lines(report, json_path, md_path))
        if report.get("error"):
            result.update(failed=True, msg=report["error"])
        return result
