"""ansible-lint over the role and the playbooks, with the settings in .ansible-lint.

Run from the repository root so that ansible.cfg's `library = ./library` lets the
args rule check postgresql_migrate's options. Takes about 10 seconds.
"""

from __future__ import annotations

import pytest
from tools import VENV_BIN, run_tool, tool_env


@pytest.mark.slow
def test_ansible_lint_passes():
    lint = VENV_BIN / "ansible-lint"
    assert lint.exists(), f"{lint} is missing: run `make setup` (requirements-dev.txt pins ansible-lint)"
    proc = run_tool([str(lint)], tool_env(), timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"ansible-lint exited {proc.returncode}:\n{proc.stdout}", pytrace=False)
