"""Unit tests of the report's pure functions (plugins/action/db_deploy_report.py): no Ansible run, no database."""

from __future__ import annotations

import pytest

from ansible_collections.st44.db_deploy.plugins.action import db_deploy_report as report_plugin


def a_report(migrations, *, result="ok", check_mode=False, backup=None, error=None, backup_file=None):
    base = dict(
        host="db1",
        database="st44",
        release="r42",
        check_mode=check_mode,
        result=result,
        error=error,
        server_version="15.4",
        backup_file=backup_file,
        current_version="016",
        migrations=migrations,
        missing=[],
        failed_migration=None,
    )
    return report_plugin.complete(base, 1000.0, 1002.5, backup, {}, "/nonexistent")


def version(v, status, ms=None, **extra):
    entry = dict(version="%03d" % v, name="v%d" % v, status=status, changed=status == "applied", **extra)
    if ms is not None:
        entry["duration_ms"] = ms
    return entry


def test_a_noop_over_a_thousand_versions_is_one_line_per_run():
    report = a_report([version(v, "already_applied") for v in range(1000)])

    lines = report_plugin.summary_lines(report, "/r/x.json", "/r/x.md")

    assert lines == [
        "db1 st44: deploy OK in 2.5 s, release r42: 1000 already applied; now at version 016",
        "  000-999   already applied (1000 versions)",  # the column of the outcomes
        "  backup: none (nothing was pending)",
        "  report: /r/x.json (and x.md)",
    ]


def test_a_failure_shows_each_version_short_runs_whole_and_the_next_step():
    migrations = (
        [version(v, "applied", 10 + v) for v in range(12)]
        + [version(12, "failed", 7, message="syntax error at line 3")]
        + [version(13, "skipped"), version(14, "would_apply")]
    )
    report = a_report(
        migrations,
        result="failed",
        backup={"file": "/b/st44.dump", "size": 3 * 1024 * 1024, "duration_ms": 4200},
        error="db1: the deploy failed at \"Apply\": boom.\nTo go back: restore-db.yml ...",
    )

    lines = report_plugin.summary_lines(report, "/r/x.json", "/r/x.md")

    assert lines[0] == ("db1 st44: deploy FAILED in 2.5 s, release r42: 12 applied, 1 failed, 2 not run; now at version 016")
    # 12 applied in a row: one line with the total and the slowest.
    assert lines[1] == "  000-011  applied (12 versions, 186 ms in all; slowest 011 v11 21 ms)"
    assert lines[2] == "  012 v12  failed  7 ms - syntax error at line 3"
    assert lines[3:5] == ["  013 v13  not run", "  014 v14  not run"]
    assert lines[5] == "  backup: /b/st44.dump (3.0 MiB, 4.2 s)"
    assert lines[-1] == "  next step: db1: the deploy failed at \"Apply\": boom. To go back: restore-db.yml ..."


def test_a_failed_version_says_where_and_why_from_the_failed_migration():
    report = a_report([version(1, "applied", 4), version(2, "failed", 3, message="SQLSTATE 42601: syntax error")], result="failed", error="it failed")
    report["failed_migration"] = {
        "version": "002",
        "file": "002_v2.sql",
        "line": 2,
        "sqlstate": "42601",
        "message": 'syntax error at or near "SELEC"',
        "statement": "SELEC 1",
    }

    lines = report_plugin.summary_lines(report, "/r/x.json", "/r/x.md")

    assert '  002 v2  failed  3 ms - line 2, SQLSTATE 42601: syntax error at or near "SELEC"' in lines
    assert '| 002 | v2 | failed | 3 | line 2, SQLSTATE 42601: syntax error at or near "SELEC" |' in (report_plugin.markdown(report))


def test_a_dry_run_says_would_apply_and_why_there_is_no_backup():
    report = a_report([version(1, "already_applied"), version(2, "would_apply")], check_mode=True)

    lines = report_plugin.summary_lines(report, "/r/x-check.json", "/r/x-check.md")

    assert lines[0].startswith("db1 st44: dry run OK in 2.5 s, release r42: 1 would apply, 1 already applied")
    assert lines[1:3] == ["  001 v1  already applied", "  002 v2  would apply"]
    assert "  backup: none (a dry run takes no backup)" in lines


def test_the_report_gains_timing_versions_and_the_backup():
    report = a_report([version(1, "applied", 12), version(2, "already_applied")], backup={"file": "/b/x.dump", "size": 2048, "duration_ms": 15})

    assert report["schema_version"] == 1
    assert (report["started"], report["ended"]) == ("1970-01-01T00:16:40.000Z", "1970-01-01T00:16:42.500Z")
    assert report["duration_ms"] == 2500
    assert report["tool_version"] == "unknown"  # no git repository there
    assert report["ansible_version"][0].isdigit()
    assert report["ci"] is None
    assert report["backup"] == {"path": "/b/x.dump", "size": 2048, "duration_ms": 15}
    assert [m["duration_ms"] for m in report["migrations"]] == [12, None]
    # The role's own fields stay.
    for key in (
        "host",
        "database",
        "release",
        "check_mode",
        "result",
        "error",
        "server_version",
        "backup_file",
        "current_version",
        "migrations",
        "missing",
        "failed_migration",
    ):
        assert key in report


def test_a_backup_known_only_by_its_file_still_shows():
    report = a_report([version(1, "applied", 12)], backup_file="/b/y.dump")

    assert report["backup"] == {"path": "/b/y.dump", "size": None, "duration_ms": None}
    assert "  backup: /b/y.dump" in report_plugin.summary_lines(report, "/r/x.json", "/r/x.md")


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, None),
        (
            {"CI_JOB_ID": "77", "CI_JOB_URL": "https://gitlab.example/p/-/jobs/77"},
            {"system": "gitlab", "job_id": "77", "job_url": "https://gitlab.example/p/-/jobs/77"},
        ),
        (
            {"GITHUB_RUN_ID": "9", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r"},
            {"system": "github", "job_id": "9", "job_url": "https://github.com/o/r/actions/runs/9"},
        ),
    ],
)
def test_the_ci_job_is_named_with_its_url(environ, expected):
    assert report_plugin.ci_job(environ) == expected


def test_the_markdown_summary_has_a_duration_table_and_escapes_cells():
    report = a_report([version(1, "applied", 12), version(2, "failed", 3, message="bad | worse")], result="failed", error="it failed")

    md = report_plugin.markdown(report)

    assert md.startswith("# Deploy of st44 on db1: failed\n")
    assert "| version | name | outcome | duration (ms) | note |" in md
    assert "| 001 | v1 | applied | 12 |  |" in md
    assert "| 002 | v2 | failed | 3 | bad \\| worse |" in md
    assert "| duration | 2.5 s |" in md
    assert "```text\nit failed\n```" in md


@pytest.mark.parametrize("ms, text", [(0, "0 ms"), (999, "999 ms"), (1500, "1.5 s"), (125000, "2 min 5 s")])
def test_durations_read_as_people_say_them(ms, text):
    assert report_plugin.human_ms(ms) == text
