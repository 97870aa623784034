"""ansible-test sanity over the collection as it ships, with zero findings beyond the entries of
tests/sanity/ignore-2.19.txt (each with its reason).

What runs: every sanity test ansible-test 2.19 has for a collection (about 1 minute once its
virtual environments exist, so none is left out). The tests that check code style, documentation
and metadata (validate-modules, ansible-doc, pylint, pep8, yamllint, action-plugin-docs, shebang,
runtime-metadata, ...) run once, on the controller's Python: this venv's 3.11. compile and import
run on each Python the modules claim (tests/config.yml: 3.11 and newer): 3.11, the targets'
python3 on Debian 12, and 3.12 and 3.13, the newer ones ansible-core 2.19 runs modules on; the
controller-side plugins (action, callback, filter) only on 3.11, the controller's.

Where: ansible-test wants the collection at a path ending ansible_collections/st44/db_deploy. The
test builds the tarball from the git-tracked files (their working-tree contents: uncommitted edits
are checked, untracked files are not), so sanity sees exactly what ships, unpacks it there, adds
tests/config.yml and tests/sanity/, and puts community.postgresql (`make setup` installs it)
beside it for the doc fragment postgresql_migrate extends.

Offline: ansible-test runs each test in a virtual environment of its own, with the exact versions
its requirement files pin (pylint 3.3.7, pycodestyle 2.13.0, voluptuous 0.15.2, ...), installed
from PyPI into ~/.ansible/test/venv the first time (about 2 more minutes) and reused after. It
bootstraps pip in them with a script it downloads from ci-files.testing.ansible.com, which this
machine cannot reach; tests/sanity/get_pip.py stands in for it in ansible-test's cache unless a
real copy is already there.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from tests.support import REPO_ROOT, VENV_BIN
from tests.support.tool_runner import tool_env

# ansible-test 2.19's pip for its environments (get_venv_packages in its python_requirements.py):
# the bootstrap script it looks for in its cache is named after it.
PIP_BOOTSTRAP = Path.home() / ".ansible" / "test" / "cache" / "get_pip_24_2.py"
# The Pythons besides the controller's 3.11 that compile and import run on.
TARGET_PYTHONS = ("3.12", "3.13")
# ansible-test and pip progress lines, of no use in a failure message.
NOISE = re.compile(r"^\s*(Collecting|Downloading|Installing|Successfully|Using cached|━)")


def real_python(version: str) -> str | None:
    """An interpreter of this version that runs: pyenv's own binary (its shims on PATH fail unless
    a version is selected), else one on PATH outside a shims directory."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", version + ".*", "bin", "python" + version)))
    if found:
        return found[-1]
    on_path = shutil.which("python" + version)
    if on_path and "shims" not in Path(on_path).parts:
        return on_path
    return None


def tracked_tree(dest: Path) -> None:
    """The git-tracked files of the checkout, as they are in the working tree, under dest."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, stdout=subprocess.PIPE, check=True).stdout.decode().split("\0")
    for name in filter(None, names):
        src, dst = REPO_ROOT / name, dest / name
        if not os.path.lexists(src):
            continue  # deleted in the working tree, not yet in git
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def collection_tree(tmp_path: Path) -> Path:
    """The collection as ansible-galaxy builds it, unpacked where ansible-test wants it."""
    src = tmp_path / "src"
    tracked_tree(src)
    build = subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path)],
        cwd=src,
        env=tool_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stdout
    (tarball,) = tmp_path.glob("st44-db_deploy-*.tar.gz")
    root = tmp_path / "ansible_collections"
    collection = root / "st44" / "db_deploy"
    collection.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        archive.extractall(collection, filter="data")
    # What ansible-test reads and the tarball leaves out (galaxy.yml's build_ignore: tests).
    (collection / "tests" / "sanity").mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO_ROOT / "tests" / "config.yml", collection / "tests" / "config.yml")
    for ignore in (REPO_ROOT / "tests" / "sanity").glob("ignore-*.txt"):
        shutil.copy2(ignore, collection / "tests" / "sanity" / ignore.name)
    postgresql = REPO_ROOT / ".collections" / "ansible_collections" / "community" / "postgresql"
    assert postgresql.is_dir(), f"{postgresql} is missing: run `make setup` (requirements.yml)"
    (root / "community").mkdir()
    os.symlink(postgresql, root / "community" / "postgresql")
    return collection


@pytest.mark.slow
def test_ansible_test_sanity_passes(tmp_path):
    ansible_test = VENV_BIN / "ansible-test"
    assert ansible_test.exists(), f"{ansible_test} is missing: run `make setup` (requirements.txt pins ansible-core)"
    collection = collection_tree(tmp_path)

    # ansible-test finds the target Pythons as pythonX.Y on PATH.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for version in TARGET_PYTHONS:
        python = real_python(version)
        assert python, f"no Python {version} found (pyenv install {version}, or python{version} on PATH): compile and import run on it"
        os.symlink(python, bin_dir / ("python" + version))

    if not PIP_BOOTSTRAP.exists():
        PIP_BOOTSTRAP.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / "tests" / "sanity" / "get_pip.py", PIP_BOOTSTRAP)

    env = tool_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(
        [str(ansible_test), "sanity", "--color", "no"],
        cwd=collection,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )
    output = "\n".join(line for line in proc.stdout.splitlines() if not NOISE.match(line))
    if proc.returncode != 0:
        pytest.fail(f"ansible-test sanity exited {proc.returncode}:\n{output}", pytrace=False)
    for version in ("3.11", *TARGET_PYTHONS):
        for test in ("compile", "import"):
            assert f'Running sanity test "{test}" on Python {version}' in output, output
    assert "could not be found" not in output, output
