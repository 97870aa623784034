"""scripts/new-vault.sh and the repository's example vault, driven as a person would.

The script runs in a copy of the checkout (its own scripts/, inventory/prod without a vault,
the real .venv) through a pseudo-terminal, as typed at a shell, and through stdin, as a
password manager would pipe the answers. What is checked is what a user and an onlooker see:
the output on the terminal, every process's arguments and environment while it runs, the
files left behind, and what ansible-vault and Ansible read from the vault it made.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VAULT = Path("inventory/prod/group_vars/st44_db/vault.yml")
# The example vault's password, as README.md documents it.
EXAMPLE_VAULT_PASSWORD = "st44-example"

PASSWORD = "Vp-" + os.urandom(6).hex() + "-pw"
# A database password with what YAML and Jinja would otherwise read: quotes, a backslash, {{ }}.
VALUE = 'Db"pw\\' + os.urandom(6).hex() + "{{ x }}'"


@pytest.fixture
def checkout(tmp_path) -> Path:
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "new-vault.sh", root / "scripts")
    (root / ".venv").symlink_to((REPO / ".venv").resolve())
    shutil.copytree(REPO / "inventory" / "prod", root / "inventory" / "prod")
    (root / VAULT).unlink()
    return root


def _env(tmp_path: Path) -> dict:
    tmp = tmp_path / "tmpdir"
    tmp.mkdir(exist_ok=True)
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TMPDIR": str(tmp), "LANG": "C.UTF-8", "TERM": "dumb"}


class ProcessWatch:
    """Samples every process's command line and environment until stopped; found holds
    each pid whose arguments or environment contained one of the needles."""

    def __init__(self, *needles: str):
        self.needles = [n.encode() for n in needles]
        self.found: list[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for pid in filter(str.isdigit, os.listdir("/proc")):
                for part in ("cmdline", "environ"):
                    try:
                        data = Path(f"/proc/{pid}/{part}").read_bytes()
                    except OSError:
                        continue
                    if any(n in data for n in self.needles):
                        self.found.append(f"{pid} {part}")
            self.samples += 1
            time.sleep(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_in_pty(cmd: list[str], cwd: Path, env: dict, answers: list[tuple[str, str]], timeout: float = 120):
    """Run cmd on a terminal; type each answer once its prompt shows. (exit code, everything shown)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its stdin, stdout and stderr
        os.chdir(cwd)
        os.execvpe(cmd[0], cmd, env)
    shown, pending, deadline = b"", list(answers), time.monotonic() + timeout
    position = 0
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        if pending:
            at = shown.find(pending[0][0].encode(), position)
            if at >= 0:
                position = at + len(pending[0][0])
                os.write(fd, pending.pop(0)[1].encode() + b"\r")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def vault_vars(path: Path, password: str) -> dict:
    """The variables Ansible reads from an encrypted vars file."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import VaultSecret

    loader = DataLoader()
    loader.set_vault_secrets([("default", VaultSecret(password.encode()))])
    return loader.load_from_file(str(path))


def files_holding(root: Path, *needles: str) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(n.encode() in data for n in needles):
                found.append(path)
    return found


def test_new_vault_on_a_terminal_asks_without_echo_and_ansible_reads_it(checkout, tmp_path):
    answers = [("New vault password for prod: ", PASSWORD), ("Repeat the vault password: ", PASSWORD), ("vault_st44_db_password: ", VALUE)]
    with ProcessWatch(PASSWORD, VALUE) as watch:
        code, shown = run_in_pty(["bash", "scripts/new-vault.sh", "prod"], checkout, _env(tmp_path), answers)

    assert code == 0, shown
    assert "Wrote inventory/prod/group_vars/st44_db/vault.yml (encrypted)" in shown
    assert PASSWORD not in shown and VALUE not in shown, shown
    assert watch.samples > 10 and watch.found == []
    vault = checkout / VAULT
    assert vault.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    assert vault_vars(vault, PASSWORD) == {"vault_st44_db_password": VALUE}
    view = subprocess.run(
        [".venv/bin/ansible-vault", "view", "--vault-password-file", "/dev/stdin", str(VAULT)], cwd=checkout, input=PASSWORD, capture_output=True, text=True
    )
    assert view.returncode == 0 and "vault_st44_db_password: !unsafe" in view.stdout, view.stderr
    # Nothing else holds either secret: no temporary file, no partial vault.
    assert files_holding(checkout, PASSWORD, VALUE) == [] and files_holding(tmp_path, PASSWORD, VALUE) == []
    assert sorted(p.name for p in vault.parent.iterdir()) == ["database.yml", "deploy.yml", "schema.yml", "vault.yml"]


def test_new_vault_through_stdin_refuses_differing_passwords_and_never_overwrites(checkout, tmp_path):
    def new_vault(answers: str):
        return subprocess.run(
            ["bash", "scripts/new-vault.sh", "prod"], cwd=checkout, env=_env(tmp_path), input=answers, capture_output=True, text=True, timeout=120
        )

    differ = new_vault(f"{PASSWORD}\n{PASSWORD}x\n{VALUE}\n")
    assert differ.returncode == 1 and "the two vault passwords differ; nothing was written" in differ.stderr
    assert not (checkout / VAULT).exists()

    made = new_vault(f"{PASSWORD}\n{PASSWORD}\n{VALUE}\n")
    assert made.returncode == 0, made.stderr
    assert PASSWORD not in made.stdout + made.stderr and VALUE not in made.stdout + made.stderr
    assert vault_vars(checkout / VAULT, PASSWORD) == {"vault_st44_db_password": VALUE}

    before = (checkout / VAULT).read_bytes()
    again = new_vault("other\nother\nother\n")
    assert again.returncode == 1
    assert "vault.yml exists; it is never overwritten" in again.stderr
    assert (checkout / VAULT).read_bytes() == before


def test_example_vault_opens_with_the_documented_password_and_the_readme_rekey_works(tmp_path):
    readme = (REPO / "README.md").read_text()
    assert f"`{EXAMPLE_VAULT_PASSWORD}`" in readme
    rekey = re.search(r"^\.venv/bin/ansible-vault rekey \S+$", readme, re.M)
    assert rekey, "README.md shows no .venv/bin/ansible-vault rekey command"
    assert vault_vars(REPO / VAULT, EXAMPLE_VAULT_PASSWORD).keys() == {"vault_st44_db_password"}

    # The README's command as written, in a copy of the checkout, answered on a terminal.
    copy = tmp_path / "checkout"
    (copy / VAULT).parent.mkdir(parents=True)
    shutil.copy(REPO / VAULT, copy / VAULT)
    (copy / ".venv").symlink_to((REPO / ".venv").resolve())
    answers = [("Vault password", EXAMPLE_VAULT_PASSWORD), ("New Vault password", PASSWORD), ("Confirm New Vault password", PASSWORD)]
    code, shown = run_in_pty(shlex.split(rekey.group(0)), copy, _env(tmp_path), answers)

    assert code == 0, shown
    assert "Rekey successful" in shown and PASSWORD not in shown
    assert vault_vars(copy / VAULT, PASSWORD) == vault_vars(REPO / VAULT, EXAMPLE_VAULT_PASSWORD)
