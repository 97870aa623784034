"""progress_file: a caller polling an asynchronous run sees which version is running."""

from __future__ import annotations

import json
import threading
import time

import pytest

pytestmark = pytest.mark.e2e


def test_the_progress_file_names_the_running_version_and_is_gone_after(migrate, db, mdir, tmp_path):
    (mdir / "001_create_t.sql").write_text("CREATE TABLE t (id int);\n")
    (mdir / "002_slow.sql").write_text("SELECT pg_sleep(4);\n")
    (mdir / "003_create_u.sql").write_text("CREATE TABLE u (id int);\n")
    progress = tmp_path / "progress.json"
    seen, runs = [], []
    worker = threading.Thread(target=lambda: runs.append(migrate(mdir, progress_file=str(progress))))
    worker.start()
    while worker.is_alive():
        try:
            seen.append(json.loads(progress.read_text())["msg"])
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    worker.join()

    (run,) = runs
    assert run.rc == 0, run.output
    assert any(msg.startswith("applying 002 slow (2 of 3), started ") for msg in seen), seen
    assert not progress.exists()
    assert {"t", "u"} <= set(db.tables())
