"""Every Molecule scenario under molecule/, run with `molecule test -s <scenario>`.

Each scenario runs the real deploy-db.yml against a throwaway PostgreSQL
container (molecule/README.md): the outage, a partly migrated database, a broken
migration and the dry run. scripts/setup-molecule.sh installs what they need
first (Molecule, podman, the image); it takes about two minutes on a fresh
machine, a few seconds after that. A scenario takes one to two minutes; its full
output goes to .cache/molecule-logs/<scenario>.log, its working files (inventory,
the deploy's reports) to .cache/molecule/<scenario>/.

The two pytest workers run scenarios side by side: each scenario has its own
container and working directory, and both are named after this checkout
(ST44_MOLECULE_PREFIX, MOLECULE_EPHEMERAL_DIRECTORY), so another checkout on the
same machine running the suite at the same time does not remove our containers.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from tests.support import REPO_ROOT, VENV_BIN
from tests.support.tool_runner import run_tool, tool_env

LOG_DIR = REPO_ROOT / ".cache" / "molecule-logs"
WORK_DIR = REPO_ROOT / ".cache" / "molecule"
# Containers are named <prefix>-<scenario> (molecule/*/molecule.yml); the
# Makefile's `molecule` target computes the same prefix.
PREFIX = "st44-molecule-" + hashlib.sha1(str(REPO_ROOT).encode()).hexdigest()[:8]
SCENARIOS = sorted(p.parent.name for p in (REPO_ROOT / "molecule").glob("*/molecule.yml"))
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\]8;[^\x1b]*\x1b\\")


def _env() -> dict[str, str]:
    env = tool_env()
    env.setdefault("ST44_MOLECULE_PREFIX", PREFIX)
    # Molecule writes its own ansible.cfg; one named from outside would win.
    env.pop("ANSIBLE_CONFIG", None)
    return env


@pytest.fixture(scope="session")
def molecule_ready() -> None:
    """Install Molecule, the container engine and the image (once per machine;
    concurrent workers wait for each other inside the script)."""
    proc = run_tool(["bash", str(REPO_ROOT / "scripts" / "setup-molecule.sh")], _env(), timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"scripts/setup-molecule.sh exited {proc.returncode}:\n{proc.stdout}", pytrace=False)


def test_scenarios_are_found():
    assert {"default", "partial", "failure", "dryrun"} <= set(SCENARIOS), SCENARIOS


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario, molecule_ready):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{scenario}.log"
    env = _env()
    # Molecule's default is ~/.ansible/tmp/molecule.<hash of the checkout's
    # directory name>.<scenario>: shared by checkouts that have the same name.
    env["MOLECULE_EPHEMERAL_DIRECTORY"] = str(WORK_DIR / scenario)
    proc = run_tool([str(VENV_BIN / "molecule"), "test", "--scenario-name", scenario], env, timeout=900)
    output = ANSI.sub("", proc.stdout)
    log.write_text(output)
    if proc.returncode != 0:
        tail = "\n".join(output.splitlines()[-150:])
        pytest.fail(
            f"molecule test -s {scenario} exited {proc.returncode} (full output: {log}); last lines:\n{tail}",
            pytrace=False,
        )
