"""ansible-lint over the role and the playbooks, with the settings in .ansible-lint.

Run from the repository root so that ansible.cfg's `library = ./library` lets the
args rule check postgresql_migrate's options. Takes about 10 seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# The venv's bin directory, not the resolved interpreter's: ansible-lint is
# installed next to the python running the tests (requirements-dev.txt).
VENV_BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_ansible_lint_passes():
    lint = VENV_BIN / "ansible-lint"
    assert lint.exists(), f"{lint} is missing: run `make setup` (requirements-dev.txt pins ansible-lint)"
    env = dict(os.environ)
    # ansible-lint warns when its own bin directory is not on PATH.
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    proc = subprocess.run(
        [str(lint)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(f"ansible-lint exited {proc.returncode}:\n{proc.stdout}", pytrace=False)
