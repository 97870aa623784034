"""What a person at the terminal sees (plugins/callback/db_deploy.py and the closing summary)
and the report the pipeline keeps (plugins/action/db_deploy_report.py), through ansible-playbook."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support import REPO_ROOT, migrate_runner
from tests.support.db_state import recorded_versions
from tests.support.deploy_runner import SYSTEM_PYTHON, mode_of, write_sql
from tests.support.st44 import ST44

pytestmark = pytest.mark.e2e


def test_a_noop_deploy_fits_in_25_lines_and_ends_with_its_summary(deploy, db, site):
    assert deploy().rc == 0

    run = deploy()

    assert run.rc == 0, run.output
    lines = run.stdout.splitlines()
    assert len(lines) <= 25, run.stdout
    assert not [line for line in lines if line.startswith(("TASK [", "ok:", "skipping:", "included:"))], run.stdout
    summary = run.summary()
    assert summary[0].startswith(f"localhost {db.name}: deploy OK in ")
    assert summary[0].endswith(": 8 already applied; now at version 016"), summary[0]
    assert run.version_lines() == [(v, name, "already applied") for v, name in ST44.items()]
    assert "  backup: none (nothing was pending)" in summary
    assert f"  report: {run.report_path} (and {run.report_path.stem}.md)" in summary
    assert run.recap()["changed"] == 0 and run.changed_lines() == []


@pytest.mark.slow
def test_a_noop_over_many_versions_stays_short(deploy, db, site):
    # 120 files: today's ship step copies each file (slow here); the unit test takes 1000.
    for v in range(17, 137):
        write_sql(site.migrations, f"{v:04d}_step.sql", "SELECT 1;\n")
    first = deploy(timeout=900)
    assert first.rc == 0, first.output
    assert len(recorded_versions(db)) == 8 + 120

    run = deploy(timeout=900)

    assert run.rc == 0, run.output
    assert len(run.stdout.splitlines()) <= 25, run.stdout
    assert [line for line in run.summary() if re.fullmatch(r"  000-0136 +already applied \(128 versions\)", line)]
    # The first run's summary collapses too, and names its slowest version.
    assert [line for line in first.summary() if re.match(r"  000-0136 +applied \(128 versions, .* in all; slowest ", line)], first.summary()
    assert len(run.report["migrations"]) == 128


def test_a_failed_deploy_ends_with_each_version_the_backup_and_the_next_step(deploy, db, site):
    write_sql(site.migrations, "017_broken.sql", "CREATE TABLE notes (id int);\nSELEC 1;\n")
    write_sql(site.migrations, "018_after.sql", "CREATE TABLE later (id int);\n")

    run = deploy()

    assert run.rc == 2, run.output
    (backup,) = site.backup_files()
    summary = run.summary()
    assert summary[0].startswith(f"localhost {db.name}: deploy FAILED in "), summary
    assert ": 8 applied, 1 failed, 1 not run;" in summary[0]
    assert run.version_lines() == [(v, name, "applied") for v, name in ST44.items()] + [("017", "broken", "failed"), ("018", "after", "not run")]
    assert re.search(r"^  017 broken +failed  \d+ ms - line 2, SQLSTATE 42601: syntax error", run.stdout, re.M), summary
    assert any(line.startswith(f"  backup: {backup}") for line in summary), summary
    (next_step,) = [line for line in summary if line.startswith("  next step: ")]
    assert "playbooks/restore-db.yml" in next_step and backup.name in next_step
    # The errors stay loud and whole: the module's result, then the host's failure with the backup.
    module_failure, host_failure = run.fatal_lines()
    assert '"failed_migration": {' in module_failure and '"sqlstate": "42601"' in module_failure
    # The restore command as it runs after `make setup`.
    assert ".venv/bin/ansible-playbook playbooks/restore-db.yml -i <inventory> -l localhost" in host_failure
    assert f"-e db_deploy_restore_file={backup.name}" in host_failure
    assert run.report["result"] == "failed"
    md = run.report_path.with_suffix(".md").read_text()
    assert "## What failed and what to do" in md and backup.name in md
    assert "| 017 | broken | failed |" in md and "| 018 | after | not run |" in md


def test_the_report_has_timing_versions_tool_ci_and_a_markdown_summary(deploy, db, site, monkeypatch):
    monkeypatch.setenv("GITHUB_RUN_ID", "4242")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example")
    monkeypatch.setenv("GITHUB_REPOSITORY", "st44/db")
    for name in ("CI_JOB_ID", "CI_JOB_URL"):
        monkeypatch.delenv(name, raising=False)

    run = deploy()

    assert run.rc == 0, run.output
    report = run.report
    (backup,) = site.backup_files()
    assert report["schema_version"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", report["started"])
    assert report["started"] < report["ended"] and report["duration_ms"] > 0
    git = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert report["tool_version"] == git.stdout.strip()
    ansible = subprocess.run(
        [str(migrate_runner.VENV_BIN / "python"), "-c", "from ansible.release import __version__; print(__version__)"], capture_output=True, text=True
    )
    assert report["ansible_version"] == ansible.stdout.strip()
    assert report["ci"] == {"system": "github", "job_id": "4242", "job_url": "https://github.example/st44/db/actions/runs/4242"}
    assert report["backup"]["path"] == str(backup) == report["backup_file"]
    assert all(isinstance(m["duration_ms"], int) for m in report["migrations"])
    md_path = run.report_path.with_suffix(".md")
    assert mode_of(run.report_path) == mode_of(md_path) == 0o640
    md = md_path.read_text()
    assert md.startswith(f"# Deploy of {db.name} on localhost: ok\n")
    assert "| CI job | [4242](https://github.example/st44/db/actions/runs/4242) |" in md
    rows = [line for line in md.splitlines() if re.match(r"\| \d{3} \|", line)]
    assert [row.split(" | ")[:3] for row in rows] == [[f"| {v}", name, "applied"] for v, name in ST44.items()]
    assert all(re.match(r"\| \d+ \| .* \| applied \| \d+ \|", row) for row in rows), rows


def test_report_tasks_cost_no_module_call_and_never_report_changed(deploy, db, site):
    run = deploy(verbosity=3)

    assert run.rc == 0, run.output
    # With -v the output is the default callback's: every task has its banner, and at -vvv each
    # module call shows its connection and commands.
    banner = "TASK [db_deploy : Write the report and its summary on the controller]"
    assert banner in run.stdout
    after = run.stdout.split(banner, 1)[1].split("TASK [", 1)[0]
    assert "ok: [localhost]" in after and '"changed": false' in after, after
    assert "ESTABLISH" not in after and "EXEC" not in after and "-> localhost" not in after, after
    assert "ESTABLISH" in run.stdout  # the modules of the other steps do show theirs
    assert "TASK [db_deploy : Create the report directory on the controller]" not in run.stdout


@pytest.mark.parametrize("password", ["right", "wrong"])
def test_neither_report_nor_summary_holds_the_password(deploy, db, site, tcp_login, password):
    secret = tcp_login.password if password == "right" else "Wrong:" + tcp_login.password[::-1]

    run = deploy(vars=tcp_login.vars, secrets=tcp_login.secrets(secret))

    assert (run.rc == 0) == (password == "right"), run.output
    texts = [run.report_path.read_text(), run.report_path.with_suffix(".md").read_text(), run.output]
    assert run.summary()
    for text in texts:
        assert secret not in text and tcp_login.password not in text


# --- the callback alone, on a small play (no database) --------------------------------

PLAY = """\
- name: Show what the callback prints
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: {python}
  tasks:
    - name: Check something quietly
      ansible.builtin.command: "true"
      changed_when: false
    - name: Say one thing
      ansible.builtin.debug:
        msg: one message
    - name: Say several lines
      ansible.builtin.debug:
        msg: ["first line", "second line"]
    - name: Check quietly
      ansible.builtin.assert:
        that: true
    - name: Check and say so
      ansible.builtin.assert:
        that: true
        success_msg: the app answered 200
    - name: Change one thing
      ansible.builtin.command: "true"
      changed_when: true
    - name: Change some items
      ansible.builtin.command: "echo {{{{ item }}}}"
      changed_when: item != 'b'
      loop: [a, b, c]
    - name: Skip this
      ansible.builtin.command: "true"
      when: false
    - name: Take a while
      ansible.builtin.command: sleep 4.5
      changed_when: false
    - name: Wait for the dump
      ansible.builtin.debug:
        msg: "pg_dump: {{{{ 1000 | random }}}} bytes written"
      until: false
      retries: 2
      delay: 0
      ignore_errors: true
    - name: Fail loudly
      ansible.builtin.command: "sh -c 'echo broken >&2; exit 3'"
      changed_when: false
"""


def run_play(tmp_path, *args, env=None):
    play = tmp_path / "play.yml"
    play.write_text(PLAY.format(python=SYSTEM_PYTHON))
    cmd = [str(migrate_runner.VENV_BIN / "ansible-playbook"), str(play), "-i", "localhost,", *args]
    return subprocess.run(cmd, cwd=REPO_ROOT, env=migrate_runner.env(env), capture_output=True, text=True, timeout=120)


def test_quiet_output_shows_messages_changes_retries_signs_of_life_and_whole_failures(tmp_path):
    proc = run_play(tmp_path, env={"DB_DEPLOY_STILL_RUNNING_SECONDS": "2"})

    assert proc.returncode == 2, proc.stdout + proc.stderr
    before_failure = proc.stdout.split("TASK [Fail loudly]", 1)[0].splitlines()
    # Any task may outlive 2 s on a loaded machine: the signs of life are checked apart.
    alive = [line for line in before_failure if line.startswith("still running: ")]
    shown = [line for line in before_failure if not line.startswith("still running: ")]
    assert shown[0] == "PLAY [Show what the callback prints]"
    assert shown[1:8] == [
        "one message",
        "first line",
        "second line",
        "the app answered 200",
        "changed: [localhost] Change one thing",
        "changed: [localhost] Change some items (item=a)",
        "changed: [localhost] Change some items (item=c)",
    ]
    waited = [int(n) for n in re.findall(r"^still running: Take a while \((\d+) s\)$", "\n".join(alive), re.M)]
    assert waited and 2 <= waited[0] <= 3 and waited == sorted(waited), proc.stdout
    retries = [line for line in before_failure if line.startswith("[localhost] ")]
    assert len(retries) == 2 and all(re.fullmatch(r"\[localhost\] pg_dump: \d+ bytes written", line) for line in retries), proc.stdout
    assert "FAILED - RETRYING" not in proc.stdout and "...ignoring" in proc.stdout
    # The failure: its banner and the whole result, as the default callback prints it.
    failure = proc.stdout.split("TASK [Fail loudly]", 1)[1]
    assert re.search(r'^fatal: \[localhost\]: FAILED! => \{.*"rc": 3.*"stderr": "broken"', failure, re.M), failure
    assert re.search(r"^localhost +: ok=\d+ +changed=2 ", proc.stdout, re.M)
    assert "ok: [localhost]" not in proc.stdout and "Check something quietly" not in proc.stdout
    assert "Skip this" not in proc.stdout and "All assertions passed" not in proc.stdout


def test_with_v_the_output_is_the_default_callbacks(tmp_path):
    ours = run_play(tmp_path, "-v")
    default = run_play(tmp_path, "-v", env={"ANSIBLE_STDOUT_CALLBACK": "default"})

    def shape(text):  # what differs between two runs: timings, random numbers, the config line
        text = re.sub(r"\d+", "N", text)
        return [line for line in text.splitlines() if not line.startswith("Using ")]

    assert ours.returncode == default.returncode == 2
    assert "TASK [Check something quietly]" in ours.stdout and "ok: [localhost]" in ours.stdout
    assert shape(ours.stdout) == shape(default.stdout)
