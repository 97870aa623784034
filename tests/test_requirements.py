"""requirements.yml and scripts/setup.sh name the same collections at the same major versions.

setup.sh checks and installs collections from its own COLLECTIONS list (the offline wheel
install cannot read requirements.yml), while Galaxy and people read requirements.yml; the two
drifted once (containers.podman was installed but not listed). The COLLECTIONS lines are run
by bash itself, as setup.sh runs them, for both Molecule drivers.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from tests.support import REPO_ROOT

SETUP = REPO_ROOT / "scripts" / "setup.sh"
REQUIREMENTS = REPO_ROOT / "requirements.yml"


def collections_block(script: str) -> str:
    """The top-level statements of setup.sh that assign COLLECTIONS (`COLLECTIONS=(...)`,
    `COLLECTIONS+=(...)`, and the whole `if ... fi` around one), in order: bash can run them
    without running set-up."""
    statements, current, depth, heredoc_end = [], [], 0, None
    for line in script.splitlines():
        current.append(line)
        if heredoc_end is not None:
            # A heredoc's body (the embedded python) is text, not shell.
            if line.strip() == heredoc_end:
                heredoc_end = None
        else:
            heredoc = re.search(r"<<-?\s*['\"]?(\w+)", line)
            heredoc_end = heredoc[1] if heredoc else None
            words = line.split()
            if words[:1] == ["if"] and words[-1:] != ["fi"]:
                depth += 1
            elif words[:1] == ["fi"]:
                depth -= 1
        if depth == 0 and heredoc_end is None:
            statements.append("\n".join(current))
            current = []
    block = "\n".join(st for st in statements if re.search(r"\bCOLLECTIONS\+?=\(", st))
    assert block, f"{SETUP} assigns no COLLECTIONS=(...)"
    return block


def setup_collections(driver: str) -> dict[str, int]:
    """{name: major} that setup.sh checks with ST44_MOLECULE_DRIVER=driver."""
    block = collections_block(SETUP.read_text())
    proc = subprocess.run(
        # say/die stubbed: a branch that talks must not stop the listing. The full set-up, not
        # --deploy-only (which installs a subset of it).
        ["bash", "-c", 'set -euo pipefail\nDEPLOY_ONLY=false\nsay() { :; }\ndie() { exit 1; }\n' + block + '\nprintf "%s\\n" "${COLLECTIONS[@]}"'],
        env={"PATH": "/usr/bin:/bin", "ST44_MOLECULE_DRIVER": driver},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert proc.returncode == 0, f"bash could not run setup.sh's COLLECTIONS lines:\n{block}\n{proc.stderr}"
    specs = proc.stdout.split()
    assert all(re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+:\d+", s) for s in specs), specs
    return {name: int(major) for name, major in (s.split(":") for s in specs)}


def requirements_majors() -> dict[str, int]:
    """{name: major} from requirements.yml; each version must be one major, ">=M.0.0,<M+1.0.0"."""
    data = yaml.safe_load(REQUIREMENTS.read_text())
    entries = data["collections"]
    names = [entry["name"] for entry in entries]
    assert len(names) == len(set(names)), f"requirements.yml lists a collection twice: {names}"
    majors = {}
    for entry in entries:
        assert set(entry) == {"name", "version"}, f"requirements.yml: {entry} needs exactly name and version"
        match = re.fullmatch(r">=(\d+)\.0\.0,<(\d+)\.0\.0", entry["version"])
        assert match and int(match[2]) == int(match[1]) + 1, (
            f"requirements.yml: {entry['name']} version {entry['version']!r} is not one major version (\">=M.0.0,<M+1.0.0\"), the way setup.sh checks it"
        )
        majors[entry["name"]] = int(match[1])
    return majors


@pytest.mark.parametrize("driver", ["podman", "docker"])
def test_requirements_yml_lists_what_setup_installs(driver):
    from_setup = setup_collections(driver)
    listed = requirements_majors()
    missing = {name: major for name, major in from_setup.items() if listed.get(name) != major}
    assert not missing, f"scripts/setup.sh installs {missing} (name: major) with ST44_MOLECULE_DRIVER={driver}, but requirements.yml lists {listed}"


def test_every_collection_in_requirements_yml_is_one_setup_installs():
    # With the docker driver setup.sh installs the most; a collection listed but never
    # installed would be a requirement nobody checks.
    from_setup = setup_collections("docker")
    listed = requirements_majors()
    assert listed == from_setup, f"requirements.yml lists {listed}; scripts/setup.sh installs at most {from_setup}"
