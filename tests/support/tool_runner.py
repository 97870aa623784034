"""Running the venv's command-line tools (ansible-lint, molecule, set-up scripts) from tests."""

from __future__ import annotations

import os
import subprocess

from tests.support import REPO_ROOT, VENV_BIN


def tool_env(**extra: str) -> dict[str, str]:
    """The environment with the venv's bin directory first on PATH (the tools call each other
    and warn otherwise) and colours off, plus extra."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def run_tool(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Run argv from the repository root; stdout and stderr together, as text."""
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
