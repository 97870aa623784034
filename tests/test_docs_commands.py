"""The commands the docs show run as written after `make setup`.

Every command in README.md and docs/*.md (fenced code blocks, and inline code that is a
whole command) that starts with .venv/bin/ansible-playbook, .venv/bin/ansible-vault or make
is checked the closest this machine can come to running it without a database host:
the executable exists; a playbook passes --syntax-check with the inventory it names
(vault-encrypted files opened with the example vault's documented password); ansible-vault's
subcommand exists and the vault it names opens; a make target exists (make -n). The files
are read when the tests run, so a doc rewritten elsewhere is checked as it is then.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Documented in README.md ("Production set-up"); tests/test_new_vault.py checks that it is.
EXAMPLE_VAULT_PASSWORD = "st44-example"
CHECKED = (".venv/bin/ansible-playbook", ".venv/bin/ansible-vault", "make")
SHELL_LANGUAGES = {"", "sh", "bash", "shell", "console", "shell-session"}
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w-]*)")
PLACEHOLDER = re.compile(r"^(<[^<>]+>|[A-Z][A-Z_]*)$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
VAULT_SUBCOMMANDS = {"create", "decrypt", "edit", "view", "encrypt", "encrypt_string", "rekey"}


def shell_lines(text: str) -> list[tuple[int, str]]:
    """(line number, command) of each shell line of the fenced blocks, continuations joined."""
    found, in_block, shell, pending, start = [], None, False, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        fence = FENCE.match(line)
        if fence and (in_block is None or fence.group(2).startswith(in_block)):
            if in_block is None:
                in_block, shell = fence.group(2), fence.group(3).lower() in SHELL_LANGUAGES
            else:
                in_block = None
            continue
        if in_block is None or not shell:
            continue
        stripped = line.strip()
        if stripped.startswith("$ "):
            stripped = stripped[2:]
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        found.append((start, pending + stripped))
        pending = ""
    return found


def inline_commands(text: str) -> list[tuple[int, str]]:
    """(line number, command) of inline code spans that are a whole checked command."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for span in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", line):
            argv = words(span)
            if len(argv) > 1 and argv[0] in CHECKED:
                found.append((number, span))
    return found


def words(command: str) -> list[str]:
    """The command's words: comments dropped, leading VAR=value assignments skipped,
    placeholders such as <host> kept as one word (not read as redirections)."""
    command = re.sub(r"<([^<>\s]+)>", r"'<\1>'", command)
    try:
        argv = shlex.split(command, comments=True)
    except ValueError:
        return []
    while argv and ASSIGNMENT.match(argv[0]):
        argv.pop(0)
    return argv


def documented_commands() -> list:
    params = []
    for doc in DOCS:
        text = doc.read_text()
        for number, command in shell_lines(text) + inline_commands(text):
            argv = words(command)
            if argv and argv[0] in CHECKED and (argv[0] != "make" or len(argv) > 1):
                params.append(pytest.param(argv, id=f"{doc.relative_to(REPO)}:{number}:{' '.join(argv)[:60]}"))
    return params


@pytest.fixture(scope="module")
def vault_password_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vault") / "example-password"
    path.write_text(EXAMPLE_VAULT_PASSWORD + "\n")
    path.chmod(0o600)
    return path


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def _option_values(argv: list[str], *names: str) -> list[str]:
    values = []
    for i, word in enumerate(argv):
        for name in names:
            if word == name and i + 1 < len(argv):
                values.append(argv[i + 1])
            elif word.startswith(name + "="):
                values.append(word.split("=", 1)[1])
    return values


def check_ansible_playbook(argv: list[str], vault_password_file: Path) -> None:
    inventories = _option_values(argv, "-i", "--inventory")
    for inventory in inventories:
        assert (REPO / inventory).exists(), f"inventory {inventory} does not exist"
    playbooks = [w for w in argv[1:] if w.endswith((".yml", ".yaml")) and w not in inventories]
    assert playbooks, "no playbook named"
    for playbook in playbooks:
        assert (REPO / playbook).is_file(), f"playbook {playbook} does not exist"
    # Prompts cannot be answered here and the operator's password file is not on this machine:
    # the example vault's password stands in. A limit written as a placeholder (HOST, <host>)
    # is the reader's to fill in; any other limit must match a host of the inventory.
    run, skip = [], 0
    for i, word in enumerate(argv):
        if skip:
            skip -= 1
            continue
        if word in ("--ask-vault-pass", "-J", "--ask-vault-password", "-K", "-k", "--ask-become-pass", "--ask-pass"):
            continue
        if word in ("--vault-password-file", "--vault-pass-file", "--vault-id"):
            skip = 1
            continue
        if word.startswith(("--vault-password-file=", "--vault-pass-file=", "--vault-id=")):
            continue
        if word in ("-l", "--limit") and i + 1 < len(argv) and PLACEHOLDER.match(argv[i + 1]):
            skip = 1
            continue
        run.append(word)
    proc = _run([str(REPO / run[0]), *run[1:], "--syntax-check", "--vault-password-file", str(vault_password_file)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def check_ansible_vault(argv: list[str], vault_password_file: Path) -> None:
    subcommand = next((w for w in argv[1:] if not w.startswith("-")), None)
    assert subcommand in VAULT_SUBCOMMANDS, f"ansible-vault has no subcommand {subcommand!r}"
    assert _run([str(REPO / argv[0]), subcommand, "--help"]).returncode == 0
    if subcommand in ("view", "edit", "rekey", "decrypt"):
        files = [w for w in argv[argv.index(subcommand) + 1 :] if not w.startswith("-")]
        assert files, "no vault file named"
        for name in files:
            if name.startswith("<") and name.endswith(">"):
                continue  # a placeholder for the reader's file
            proc = _run([str(REPO / argv[0]), "view", "--vault-password-file", str(vault_password_file), name])
            assert proc.returncode == 0, f"{name} does not open with the documented password: {proc.stderr}"


def check_make(argv: list[str]) -> None:
    if any(w.startswith("<") and w.endswith(">") for w in argv):
        pytest.skip("a placeholder (make <target>) names no target")
    proc = _run(["make", "-n", *argv[1:]])
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("argv", documented_commands())
def test_documented_command_runs_as_written(argv, vault_password_file):
    executable = argv[0]
    if executable != "make":
        assert os.access(REPO / executable, os.X_OK), f"{executable} is missing: does make setup install it?"
    if executable.endswith("ansible-playbook"):
        check_ansible_playbook(argv, vault_password_file)
    elif executable.endswith("ansible-vault"):
        check_ansible_vault(argv, vault_password_file)
    else:
        check_make(argv)


def test_the_docs_show_the_commands_this_test_checks():
    """The collection above is not silently empty: the README's own deploy and vault commands are in it."""
    ids = {" ".join(p.values[0]) for p in documented_commands()}
    assert ".venv/bin/ansible-playbook deploy-db.yml -i inventory/prod --check" in ids
    assert ".venv/bin/ansible-vault rekey inventory/prod/group_vars/st44_db/vault.yml" in ids
    assert "make vault ENV=prod" in ids


# README.md is checked here; docs/*.md are written by the same convention (their commands
# written with .venv/bin/ are checked above).
@pytest.mark.parametrize("doc", [REPO / "README.md"], ids=["README.md"])
def test_no_command_runs_ansible_from_the_path(doc):
    text = doc.read_text()
    lines = [(n, c) for n, c in shell_lines(text) if (words(c) or [""])[0].startswith("ansible")]
    spans = [(n, span) for n, line in enumerate(text.splitlines(), 1) for span in re.findall(r"(?<!`)`(ansible[\w-]* [^`\n]+)`(?!`)", line)]
    bare = [f"{doc.name}:{n}: {c}" for n, c in lines + spans]
    assert bare == [], "write .venv/bin/ansible-...: the tools live in the checkout's .venv"
