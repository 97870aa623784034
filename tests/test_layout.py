"""The test suite stays a package with its helpers in one place (issue #15): no sys.path edits,
no helper imported by a bare name that another directory or a PyPI package could also have."""

from __future__ import annotations

import re

from tests.support import REPO_ROOT

TESTS = REPO_ROOT / "tests"
# Ansible loads this directory's plugins by path (the e2e playbooks' action_plugins/), not Python.
NOT_PACKAGES = {TESTS / "support" / "action_plugins"}
# ansible-test's own directory (ignore files, the pip bootstrap it runs as a script): test_sanity.py
# copies it next to the built collection; nothing imports it.
NOT_PACKAGES |= {TESTS / "sanity"}


def python_files():
    return [p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts]


def test_every_test_directory_is_a_package():
    dirs = {p.parent for p in python_files()} - NOT_PACKAGES
    assert [str(d.relative_to(REPO_ROOT)) for d in sorted(dirs) if not (d / "__init__.py").exists()] == []


def test_no_test_file_edits_sys_path():
    edits = [
        str(p.relative_to(REPO_ROOT))
        for p in python_files()
        if p.parent not in NOT_PACKAGES and re.search(r"sys\.path\.(insert|append|extend)|sys\.path\s*[+]?=", p.read_text())
    ]
    assert edits == []


def test_helpers_are_imported_from_tests_support_never_from_a_conftest():
    # Relative imports too: a helper has one name, tests.support.<module>, wherever it is used.
    bare = re.compile(r"^\s*(from\s+\.|(from|import)\s+(conftest|pgcluster|tools|migrate_runner|support|integration|hardening|e2e)\b)", re.M)
    found = [f"{p.relative_to(REPO_ROOT)}: {m.group(0).strip()}" for p in python_files() for m in bare.finditer(p.read_text())]
    assert found == []
