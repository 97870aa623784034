"""The database password appears nowhere: not in any output at -vvv, the JSON report,
the process list while pg_dump runs, file names, the backup, its manifest, or the server log.

The deploy runs over TCP with a random password containing ':' and '\\' (which
the pass file escapes, so the escaped form is searched too). pg_dump is held
mid-run by a lock on a table it must read, so that the process list is sampled
while it runs: every /proc/<pid>/cmdline and /proc/<pid>/environ of the
machine. The server logs every statement of the test database meanwhile.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.background_runs import deploy_waiting_in_pg_dump, forms_of
from tests.support.deploy_runner import mode_of

pytestmark = [pytest.mark.e2e]


def process_texts() -> dict[str, bytes]:
    texts = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            for name in ("cmdline", "environ"):
                try:
                    texts[f"/proc/{entry}/{name}"] = Path(f"/proc/{entry}/{name}").read_bytes()
                except OSError:
                    pass  # gone meanwhile
    return texts


def test_password_appears_nowhere_even_at_vvv_and_while_pg_dump_runs(pg, db, site, tcp_login, tmp_path, reap):
    secrets = forms_of(tcp_login.password)
    assert ":" in tcp_login.password and "\\" in tcp_login.password
    db.sql(f'ALTER DATABASE "{db.name}" SET log_statement = \'all\'')
    log_start = len(pg.log_text())
    with deploy_waiting_in_pg_dump(pg, db, site, tcp_login, tmp_path / "run", reap, verbosity=3) as run:
        during = process_texts()
        names_during = [str(p) for p in site.root.rglob("*")]
        pass_files = list(site.backups.glob(".pgpass*"))
    done = run.finish(timeout=300)

    assert done.rc == 0, done.output[-5000:]
    assert "<localhost> ESTABLISH LOCAL CONNECTION" in done.output  # it really ran at -vvv
    assert len(during) > 20 and any(b"pg_dump" in text for text in during.values())
    # While pg_dump ran, its password was in a 0600 pass file only.
    (pass_file,) = pass_files
    assert mode_of(site.backups) == 0o700 and pass_file.name.startswith(".pgpass-")
    (backup,) = site.backup_files()
    manifest = backup.with_name(backup.name + ".json")
    assert mode_of(backup) == 0o600 and mode_of(manifest) == 0o600
    # The pass file is gone; what stays is the backup and its manifest.
    assert sorted(p.name for p in site.backups.iterdir()) == [backup.name, manifest.name]
    assert json.loads(manifest.read_text())["file"] == backup.name
    places = {
        "ansible-playbook output": done.output,
        "JSON report": done.report_path.read_text(),
        "file names during and after": "\n".join(names_during + [str(p) for p in site.root.rglob("*")]),
        "server log": pg.log_text()[log_start:],
        "backup": backup.read_bytes().decode("latin-1"),
        "backup's manifest": manifest.read_text(),
    }
    assert "pg_dump" in places["server log"] or "COPY" in places["server log"]  # statements were logged
    for where, text in places.items():
        for secret in secrets:
            assert secret not in text, f"the password is in the {where}"
    for where, raw in during.items():
        for secret in secrets:
            assert secret.encode() not in raw, f"the password is in {where} while pg_dump runs"
