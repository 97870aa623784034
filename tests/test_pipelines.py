"""The example pipelines (docs/examples/) run as written, as far as this machine allows.

No GitLab or GitHub here, so: each file is validated against the official schema
(check-jsonschema's bundled copies, offline), and each job's shell lines run for real in a
copy of the repository, with dummy secrets in the variables the pipeline names, except that
package installs are only inspected, `make X` runs as `make -n X` and every ansible-playbook
line gets --syntax-check. On top: the production job is gated (manual / environment with
reviewers), secrets come only from variables and reach no command line, and
`make setup-deploy` on a fresh checkout installs what the deploy needs and nothing more.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.support import REPO_ROOT, VENV_BIN

GITLAB = REPO_ROOT / "docs/examples/release-pipeline.gitlab-ci.yml"
GITHUB = REPO_ROOT / "docs/examples/release-pipeline.github-actions.yml"
# GitLab keywords at the top level that are not jobs.
GITLAB_GLOBALS = {"default", "include", "stages", "variables", "workflow", "image", "services", "cache", "before_script", "after_script"}
PLAYBOOK = ".venv/bin/ansible-playbook"
# What may be installed on a runner besides `make setup-deploy`.
RUNNER_PACKAGES = {"make", "git", "openssh-client"}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def gitlab_jobs() -> dict[str, dict]:
    """The real jobs, with `extends` and `default` applied as GitLab does for our keys."""
    doc = load(GITLAB)

    def resolved(name: str) -> dict:
        job = doc[name]
        parents = job.get("extends", [])
        merged: dict = {}
        for parent in [parents] if isinstance(parents, str) else parents:
            merged = merge(merged, resolved(parent))
        return merge(merged, {k: v for k, v in job.items() if k != "extends"})

    default = doc.get("default", {})
    return {name: merge(default, resolved(name)) for name in doc if name not in GITLAB_GLOBALS and not name.startswith(".")}


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def github_doc() -> dict:
    doc = load(GITHUB)
    # A bare `on` is True to YAML 1.1 readers (PyYAML); the file quotes it, GitHub takes both.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def gitlab_lines(job: dict) -> list[str]:
    return [*job.get("before_script", []), *job["script"], *job.get("after_script", [])]


def github_lines(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def playbook_lines(lines: list[str]) -> list[str]:
    return [cmd for line in lines for cmd in line.splitlines() if PLAYBOOK in cmd]


# --- Schema ------------------------------------------------------------------------------


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("path, schema", [(GITLAB, "vendor.gitlab-ci"), (GITHUB, "vendor.github-workflows")], ids=["gitlab", "github"])
def test_pipeline_file_is_valid_against_the_official_schema(path, schema):
    proc = check_jsonschema(schema, path)
    assert "No module named check_jsonschema" not in proc.stderr, "check-jsonschema is missing: run `make setup` (requirements-dev.txt pins it)"
    assert proc.returncode == 0, f"{path.name} is not valid {schema}:\n{proc.stdout}{proc.stderr}"


def test_schema_check_catches_variables_under_default(tmp_path):
    """The reviewer's finding in the old GitLab example: the check would have caught it."""
    bad = tmp_path / "bad.gitlab-ci.yml"
    bad.write_text("default:\n  variables:\n    A: b\njob:\n  script: [true]\n")
    proc = check_jsonschema("vendor.gitlab-ci", bad)
    assert proc.returncode == 1
    assert "'variables' was unexpected" in proc.stdout


# --- The jobs' commands, run in a copy of the repository ------------------------------------


@pytest.fixture
def sandbox(tmp_path):
    """A copy of the checkout as a runner has it after `make setup-deploy`: the venv and the
    collections are this checkout's (linked)."""
    root = tmp_path / "checkout"
    skip = shutil.ignore_patterns(".git", ".venv", ".collections", ".cache", ".local", "reports", "tests", "molecule", "bench", "__pycache__", ".pytest_cache")
    shutil.copytree(REPO_ROOT, root, ignore=skip, symlinks=True)
    (root / ".venv").symlink_to(VENV_BIN.parent)
    (root / ".collections").symlink_to((REPO_ROOT / ".collections").resolve())
    return root


class Secrets:
    """Dummy secrets, each a value that must never show up in a command line."""

    def __init__(self, directory: Path):
        self.dir = directory
        directory.mkdir()
        self.values = {
            "ssh_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n" + secrets.token_hex(24) + "\n-----END",
            "plan_ssh_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n" + secrets.token_hex(24) + "\n-----END",
            "vault_password": "vault-" + secrets.token_hex(12),
            "plan_password": "plan-" + secrets.token_hex(12),
        }
        self.plan_vars = f"ansible_user: st44-plan\ndb_deploy_login_user: st44_plan\ndb_deploy_login_password: {self.values['plan_password']}\n"
        self.known_hosts = "st44-db-1.internal.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDummy\n"

    def file(self, name: str, content: str) -> str:
        path = self.dir / name
        path.write_text(content)
        return str(path)

    def sensitive(self) -> list[str]:
        return [line for value in self.values.values() for line in value.splitlines() if len(line) > 12]


def run_job(lines: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, dict]:
    """Run a job's shell lines as the runner would, in one bash with -e and xtrace on.
    Returns the process and what was only inspected: the apt packages and the make targets."""
    seen: dict = {"apt": set(), "make": [], "playbooks": 0}
    script = ["set -euo pipefail", "set -x"]
    for block in lines:
        for line in block.splitlines() if "\n" in block else [block]:
            words = line.split()
            if line.startswith("apt-get"):
                install = line.split("apt-get install", 1)[1]
                seen["apt"] |= {w for w in install.split() if not w.startswith("-") and not w.startswith(">")}
                continue
            if words[:1] == ["make"]:
                seen["make"].append(words[1])
                line = "make -n " + " ".join(words[1:])
            elif PLAYBOOK in line:
                seen["playbooks"] += 1
                line += " --syntax-check"
            script.append(line)
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return proc, seen


def job_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env.update(NO_COLOR="1", **extra)
    return env


def assert_ran_as_written(proc, seen, dummy: Secrets):
    assert proc.returncode == 0, f"the job's commands failed:\n{proc.stdout}\n{proc.stderr}"
    assert seen["make"] == ["setup-deploy"], "jobs install with `make setup-deploy` only"
    assert seen["apt"] <= RUNNER_PACKAGES, f"runner packages beyond what the deploy needs: {seen['apt']}"
    assert seen["playbooks"] >= 1 and proc.stdout.count("playbook: deploy-db.yml") == seen["playbooks"]
    # xtrace shows every command with its arguments expanded: no external command got a secret.
    # Only the shell's builtin printf may carry one (into a 0600 file), and it starts no process.
    commands: list[str] = []
    for line in proc.stderr.splitlines():
        if re.match(r"\++ ", line) or not commands:
            commands.append(line)
        else:  # a multi-line argument goes on
            commands[-1] += "\n" + line
    for command in commands:
        for value in dummy.sensitive():
            assert value not in command or command.lstrip("+ ").startswith("printf "), f"a secret reached a command line: {command}"


def assert_plan_inventory_needs_no_vault(cwd: Path, plan_vars: str):
    plan_inventory = cwd / ".plan-inventory"
    files = [p for p in plan_inventory.rglob("*") if p.is_file()]
    assert files and not [p for p in files if p.read_text().startswith("$ANSIBLE_VAULT")]
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", str(plan_inventory), "-e", f"@{plan_vars}", "--list"],
        cwd=cwd,
        env=job_env({}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    hostvars = json.loads(proc.stdout)["_meta"]["hostvars"]
    assert hostvars and all(v["db_deploy_login_user"] == "st44_plan" and v["ansible_user"] == "st44-plan" for v in hostvars.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["db-plan", "db-release"])
def test_gitlab_job_commands_exist_and_parse(name, sandbox, tmp_path):
    job = gitlab_jobs()[name]
    dummy = Secrets(tmp_path / "secrets")
    # GitLab's file variables: the variable holds the path of a file with the value.
    env = job_env(
        {
            "ST44_SSH_KEY": dummy.file("ST44_SSH_KEY", dummy.values["ssh_key"]),
            "ST44_VAULT_PASSWORD": dummy.file("ST44_VAULT_PASSWORD", dummy.values["vault_password"]),
            "ST44_PLAN_SSH_KEY": dummy.file("ST44_PLAN_SSH_KEY", dummy.values["plan_ssh_key"]),
            "ST44_PLAN_VARS": dummy.file("ST44_PLAN_VARS", dummy.plan_vars),
            "ST44_SSH_KNOWN_HOSTS": dummy.file("ST44_SSH_KNOWN_HOSTS", dummy.known_hosts),
            "CI_MERGE_REQUEST_IID": "7",
            "CI_COMMIT_TAG": "v42",
        }
    )
    env.update({k: os.path.expandvars(v) for k, v in job.get("variables", {}).items()})
    proc, seen = run_job(gitlab_lines(job), sandbox, env)
    assert_ran_as_written(proc, seen, dummy)
    if name == "db-plan":
        assert_plan_inventory_needs_no_vault(sandbox, env["ST44_PLAN_VARS"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["plan", "release"])
def test_github_job_commands_exist_and_parse(name, sandbox, tmp_path):
    job = github_doc()["jobs"][name]
    dummy = Secrets(tmp_path / "secrets")
    given = {
        "secrets.ST44_SSH_KEY": dummy.values["ssh_key"],
        "secrets.ST44_PLAN_SSH_KEY": dummy.values["plan_ssh_key"],
        "secrets.ST44_VAULT_PASSWORD": dummy.values["vault_password"],
        "secrets.ST44_PLAN_VARS": dummy.plan_vars,
        "vars.ST44_SSH_KNOWN_HOSTS": dummy.known_hosts,
        "github.event.pull_request.number": "7",
        "github.ref_name": "v42",
    }

    def expand(value: str) -> str:
        return re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", lambda m: given[m.group(1)], value)

    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    summary = tmp_path / "step-summary.md"
    env = job_env({"RUNNER_TEMP": str(runner_temp), "GITHUB_STEP_SUMMARY": str(summary)})
    env.update({k: expand(v) for k, v in job.get("env", {}).items()})
    for step in job["steps"]:
        env.update({k: expand(v) for k, v in step.get("env", {}).items()})
    # Each step is its own `bash -e` on GitHub; one after the other in one shell here.
    proc, seen = run_job(github_lines(job), sandbox, env)
    assert_ran_as_written(proc, seen, dummy)
    assert not (runner_temp / "st44").exists(), "the secret files are removed at the end"
    if name == "plan":
        plan_vars = tmp_path / "plan_vars.yml"
        plan_vars.write_text(dummy.plan_vars)
        assert_plan_inventory_needs_no_vault(sandbox, str(plan_vars))


# --- Gates and secrets ---------------------------------------------------------------------


def test_gitlab_release_is_manual_in_the_production_environment_and_the_plan_is_read_only():
    jobs = gitlab_jobs()
    release, plan = jobs["db-release"], jobs["db-plan"]
    assert release["rules"] and all(r.get("when") == "manual" and "CI_COMMIT_TAG" in r["if"] for r in release["rules"])
    assert release["environment"]["name"] == "production" and release.get("resource_group")
    assert plan["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert all("--check" in cmd and "--diff" in cmd for cmd in playbook_lines(gitlab_lines(plan)))
    # Only the gated job applies.
    applying = [n for n, j in jobs.items() if any("--check" not in c for c in playbook_lines(gitlab_lines(j)))]
    assert applying == ["db-release"]
    for job in jobs.values():
        assert "reports/" in job["artifacts"]["paths"] and job["artifacts"]["when"] == "always"


def test_gitlab_secrets_come_only_from_file_variables_and_the_plan_never_gets_the_release_ones():
    text = GITLAB.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"BEGIN [A-Z ]*PRIVATE KEY|\$ANSIBLE_VAULT;|password:", code, re.I)
    jobs = gitlab_jobs()
    plan = "\n".join(gitlab_lines(jobs["db-plan"]))
    assert not re.search(r"\$ST44_SSH_KEY\b|ST44_VAULT_PASSWORD", plan)
    for job in jobs.values():
        for line in gitlab_lines(job):
            assert not re.search(r"\b(echo|cat|printf)\b[^|]*\$\{?ST44_(?!SSH_KNOWN_HOSTS)", line), line
    release = "\n".join(gitlab_lines(jobs["db-release"]))
    assert 'export ANSIBLE_VAULT_PASSWORD_FILE="$ST44_VAULT_PASSWORD"' in release


def test_github_release_waits_for_the_production_environment_and_the_plan_is_read_only():
    doc = github_doc()
    assert "pull_request_target" not in doc["on"], "it would hand secrets to a fork's code"
    assert doc["permissions"] == {"contents": "read"}
    release, plan = doc["jobs"]["release"], doc["jobs"]["plan"]
    assert release["environment"] == "production"
    assert "startsWith(github.ref, 'refs/tags/v')" in release["if"] and "pull_request" in release["if"]
    assert release["concurrency"]["cancel-in-progress"] is False
    assert plan["if"].startswith("github.event_name == 'pull_request' && ") and "head.repo.full_name" in plan["if"]
    assert plan["environment"] == "production-plan"
    assert all("--check" in cmd and "--diff" in cmd for cmd in playbook_lines(github_lines(plan)))
    applying = [n for n, j in doc["jobs"].items() if any("--check" not in c for c in playbook_lines(github_lines(j)))]
    assert applying == ["release"]
    for job in doc["jobs"].values():
        assert any("GITHUB_STEP_SUMMARY" in line for line in github_lines(job))
        uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
        assert uploads and uploads[0]["if"] == "always()" and uploads[0]["with"]["path"] == "reports/"


def test_github_secrets_only_in_step_env_actions_pinned_by_commit():
    doc = github_doc()
    for name, job in doc["jobs"].items():
        used = set()
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), f"not pinned: {step['uses']}"
            # Expressions inside `run` are pasted into the script: injection, and secrets in the log.
            assert "${{" not in step.get("run", ""), step["run"]
            assert "secrets." not in json.dumps(step.get("with", {}))
            used |= set(re.findall(r"secrets\.(\w+)", json.dumps(step.get("env", {}))))
        assert "secrets." not in json.dumps(job.get("env", {}))
        wanted = {"plan": {"ST44_PLAN_SSH_KEY", "ST44_PLAN_VARS"}, "release": {"ST44_SSH_KEY", "ST44_VAULT_PASSWORD"}}
        assert used == wanted[name]


# --- make setup-deploy on a fresh checkout --------------------------------------------------


@pytest.mark.slow
def test_setup_deploy_installs_what_the_deploy_needs_and_no_postgresql_server(tmp_path):
    """A fresh checkout's `make setup-deploy`, for real (pip from the package index): the
    runtime packages and community.postgresql; no apt-get (no PostgreSQL server, no system
    psycopg2), no OS user, no test tools, no podman collection; and the deploy parses."""
    root = tmp_path / "checkout"
    skip = shutil.ignore_patterns(".git", ".venv", ".collections", ".cache", ".local", "reports", "tests", "molecule", "bench", "__pycache__", ".pytest_cache")
    shutil.copytree(REPO_ROOT, root, ignore=skip, symlinks=True)
    # The offline collection bundle set-up already fetched (Galaxy is unreachable here).
    wheels = REPO_ROOT / ".cache" / "wheels"
    if wheels.is_dir():
        (root / ".cache").mkdir()
        shutil.copytree(wheels, root / ".cache" / "wheels")
    calls = tmp_path / "calls"
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for tool in ("apt-get", "dpkg", "useradd", "podman", "initdb", "pg_ctl"):
        stub = stubs / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\nexit 1\n')
        stub.chmod(0o755)
    env = job_env({"PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}"})
    proc = subprocess.run(["make", "setup-deploy"], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not calls.exists(), f"set-up ran: {calls.read_text()}"
    assert "setup: deploy-only: no PostgreSQL server" in proc.stdout
    assert "setup: PostgreSQL binaries:" not in proc.stdout and "setup: target python:" not in proc.stdout
    frozen = subprocess.run([str(root / ".venv/bin/python"), "-m", "pip", "freeze"], capture_output=True, text=True, env=env, timeout=120).stdout.lower()
    assert "ansible-core==" in frozen and "psycopg2-binary==" in frozen
    for tool in ("pytest", "ansible-lint", "molecule", "check-jsonschema"):
        assert f"{tool}==" not in frozen, f"{tool} is a test tool"
    collections = root / ".collections" / "ansible_collections"
    assert sorted(p.name for p in collections.iterdir()) == ["community"]
    assert sorted(p.name for p in (collections / "community").iterdir()) == ["postgresql"]
    syntax = subprocess.run(
        [str(root / PLAYBOOK), "deploy-db.yml", "-i", "inventory/prod", "--syntax-check"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
