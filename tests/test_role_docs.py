"""A role variable is written once, in the role's meta/argument_specs.yml: defaults/main.yml and
the README's variable section are generated from it (scripts/role-docs.py, make role-docs), and
these tests fail when either differs, naming the variable and what differs."""

from __future__ import annotations

import difflib
import importlib.util
import sys
import pytest
import yaml
from tests.support import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "role-docs.py"
_spec = importlib.util.spec_from_file_location("role_docs", SCRIPT)
role_docs = importlib.util.module_from_spec(_spec)
# dataclasses look their module up there.
sys.modules.setdefault("role_docs", role_docs)
_spec.loader.exec_module(role_docs)


@pytest.fixture(scope="module", params=role_docs.ROLES)
def role(request):
    return role_docs.load(REPO_ROOT / "roles" / request.param)


def test_defaults_equal_the_argument_specs(role):
    assert role_docs.problems(role) == []


def test_generated_defaults_and_readme_are_current(role):
    for path, expected in role_docs.expected_files(role).items():
        actual = path.read_text()
        diff = "".join(difflib.unified_diff(actual.splitlines(True), expected.splitlines(True), str(path), "generated", n=1))
        assert actual == expected, f"{path.relative_to(REPO_ROOT)} is out of date: run make role-docs\n{diff}"


def test_every_option_is_documented_and_typed(role):
    for var in role.variables:
        assert role_docs.paragraphs(var.spec), f"{var.name} has no description"
        assert var.spec.get("type") in role_docs.TYPES, f"{var.name} has type {var.spec.get('type')!r}"
        assert var.section, f"{var.name} is in no `# --- Section ---` of the spec"


def test_a_drifted_default_is_named(role):
    defaults = yaml.safe_load(role.defaults_file.read_text())
    drifted = dict(defaults, db_deploy_backup_keep=8, db_deploy_lock_wait="60", db_deploy_typo=1)
    del drifted["db_deploy_table"]
    assert role_docs.problems(role, drifted) == [
        "db_deploy_backup_keep: default 8 in defaults/main.yml, 7 in meta/argument_specs.yml",
        "db_deploy_table: in meta/argument_specs.yml, missing from defaults/main.yml",
        "db_deploy_lock_wait: defaults/main.yml has type str, the spec says float",
        "db_deploy_typo: in defaults/main.yml, not in meta/argument_specs.yml",
    ]


def test_the_check_fails_on_a_hand_edited_default(role, tmp_path, monkeypatch, capsys):
    """What a person sees who edits defaults/main.yml instead of the spec (scripts/role-docs.py --check)."""
    copy = tmp_path / "roles" / role.path.name
    for part in ("meta/argument_specs.yml", "defaults/main.yml", "README.md"):
        (copy / part).parent.mkdir(parents=True, exist_ok=True)
        (copy / part).write_text((role.path / part).read_text())
    defaults = copy / "defaults" / "main.yml"
    defaults.write_text(defaults.read_text().replace("\ndb_deploy_backup_keep: 7\n", "\ndb_deploy_backup_keep: 8\n"))
    monkeypatch.setattr(role_docs, "REPO_ROOT", tmp_path)
    assert role_docs.main(["--check"]) == 1
    shown = capsys.readouterr().err
    assert "db_deploy_backup_keep: default 8 in defaults/main.yml, 7 in meta/argument_specs.yml" in shown
    assert f"Out of date, run make role-docs: roles/{role.path.name}/defaults/main.yml" in shown
    assert role_docs.main([]) == 0
    assert "\ndb_deploy_backup_keep: 7\n" in defaults.read_text()


def test_the_other_roles_have_no_variables():
    """Only the roles in role_docs.ROLES have variables to generate; a role that gains one joins them."""
    others = [p for p in sorted((REPO_ROOT / "roles").iterdir()) if p.is_dir() and p.name not in role_docs.ROLES]
    assert others, "roles/db_deploy_args is expected here"
    for path in others:
        specs = yaml.safe_load((path / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        assert all(not entry.get("options") for entry in specs.values()), f"{path.name} has options: add it to ROLES in scripts/role-docs.py"
        assert not (path / "defaults").exists(), f"{path.name} has defaults: add it to ROLES in scripts/role-docs.py"
