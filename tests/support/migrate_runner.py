"""Run postgresql_migrate the way users do: ansible-playbook on localhost.

The task runs inside a block whose ``always`` writes the registered result to
a JSON file (action_plugins/keep_result.py, in the ansible-playbook process), so
a test can read every returned key and still see the real exit code and output
of ansible-playbook. Secrets reach the play through a 0600
vars file (``-e @file``), never through the command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO_ROOT, VENV_BIN

# keep_result: the registered result written to a file without running a module.
ACTION_PLUGINS = Path(__file__).resolve().parent / "action_plugins"


@dataclass
class Run:
    rc: int
    result: dict
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def status_of(self) -> dict:
        """{version: status} of every migration in the result."""
        return {m["version"]: m["status"] for m in self.result.get("migrations", [])}


def env(extra: dict | None = None) -> dict:
    e = dict(os.environ)
    e.update(
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{VENV_BIN}:{e.get('PATH', '')}",
    )
    e.update(extra or {})
    return e


def write_playbook(workdir: Path, module_args: dict, secret_args: dict) -> tuple[Path, Path]:
    """A one-task playbook; secret_args are templated from the vars file."""
    args = dict(module_args)
    for key in secret_args:
        args[key] = "{{ secret_%s }}" % key
    play = [
        {
            "name": "Apply migrations",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": [
                {
                    "block": [
                        {
                            "name": "Apply the pending migrations",
                            "postgresql_migrate": args,
                            "register": "migrate_result",
                        }
                    ],
                    "always": [
                        {
                            "name": "Keep the result for the test",
                            "keep_result": {"content": "{{ migrate_result | to_json }}", "dest": str(workdir / "result.json")},
                            "check_mode": False,
                            "diff": False,
                            "changed_when": False,
                        }
                    ],
                }
            ],
        }
    ]
    playbook = workdir / "play.yml"
    playbook.write_text(json.dumps(play, indent=2))
    # Ansible loads action plugins from the playbook's action_plugins/ directory.
    if not (workdir / "action_plugins").exists():
        (workdir / "action_plugins").symlink_to(ACTION_PLUGINS, target_is_directory=True)
    secrets = workdir / "secrets.json"
    secrets.write_text(json.dumps({"secret_%s" % k: v for k, v in secret_args.items()}))
    secrets.chmod(0o600)
    return playbook, secrets


def mode_flags(check: bool, diff: bool, verbosity: int) -> list[str]:
    """ansible-playbook's --check, --diff and -v... as a test asks for them."""
    return (["--check"] if check else []) + (["--diff"] if diff else []) + (["-" + "v" * verbosity] if verbosity else [])


def command(playbook: Path, secrets: Path, check: bool, diff: bool, verbosity: int) -> list[str]:
    return [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(playbook), "-e", f"@{secrets}", *mode_flags(check, diff, verbosity)]


def run_migrate(
    module_args: dict,
    *,
    secret_args: dict | None = None,
    check: bool = False,
    diff: bool = False,
    verbosity: int = 0,
    timeout: float = 300,
    extra_env: dict | None = None,
) -> Run:
    """Run the module through ansible-playbook and return what the user would see."""
    with tempfile.TemporaryDirectory(prefix="migrate-run-") as tmp:
        workdir = Path(tmp)
        playbook, secrets = write_playbook(workdir, module_args, secret_args or {})
        proc = subprocess.run(
            command(playbook, secrets, check, diff, verbosity), cwd=REPO_ROOT, env=env(extra_env), capture_output=True, text=True, timeout=timeout
        )
        result_file = workdir / "result.json"
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
        return Run(proc.returncode, result, proc.stdout, proc.stderr)


def start_migrate(module_args: dict, workdir: Path, *, check: bool = False, extra_env: dict | None = None) -> subprocess.Popen:
    """Start a run in the background (for concurrency and fault tests)."""
    workdir.mkdir(parents=True, exist_ok=True)
    playbook, secrets = write_playbook(workdir, module_args, {})
    return subprocess.Popen(
        command(playbook, secrets, check, False, 0), cwd=REPO_ROOT, env=env(extra_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen, workdir: Path, timeout: float = 300) -> Run:
    out, err = proc.communicate(timeout=timeout)
    result_file = workdir / "result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    return Run(proc.returncode, result, out, err)
