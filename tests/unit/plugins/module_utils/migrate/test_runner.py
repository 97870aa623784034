"""The runner's bookkeeping around each migration: the progress file an asynchronous caller polls,
and the result entries when a migration fails part-way through a plan. Applying SQL itself needs a
server: tests/e2e runs it through ansible-playbook against a real PostgreSQL."""

import json
import os

import pytest
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.errors import ApplyFailure, ModuleCheck, TaskFailure
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.runner import execute_plan, write_progress

from tests.support.migrate_units import migration


def test_progress_names_the_migration_its_place_and_when_it_started(tmp_path):
    path = str(tmp_path / ".progress")
    write_progress(path, migration("017_add_notes.sql"), 1, 3)
    progress = json.loads(open(path).read())
    assert progress["version"] == "017" and progress["msg"].startswith("applying 017 add_notes (2 of 3), started ")
    assert os.listdir(tmp_path) == [".progress"]  # written whole, through a renamed temporary file


class _Session:
    """Stands in for Runner with a fixed outcome per version (the SQL runs in tests/e2e)."""

    def __init__(self, failing):
        self.failing, self.applied = failing, []

    def record_checksums(self, migrations):
        assert migrations == []

    def apply(self, mig):
        if mig.version == self.failing:
            raise ApplyFailure(mig, None, ModuleCheck("the file's own check failed"))
        self.applied.append(mig.version)
        return 12


def test_a_failure_marks_that_migration_failed_and_the_later_ones_not_attempted(tmp_path):
    plan_ = dict(adopt=[], accept=[], to_apply=[migration(name) for name in ("017_a.sql", "018_b.sql", "019_c.sql")])
    entries = {m.version: dict(version=m.version) for m in plan_["to_apply"]}
    result, progress = dict(changed=False), str(tmp_path / ".progress")
    with pytest.raises(TaskFailure) as failed:
        execute_plan(_Session(failing="018"), plan_, entries, result, progress)
    assert entries["017"] == dict(version="017", duration_ms=12, status="applied", changed=True)
    assert entries["018"]["status"] == "failed" and entries["018"]["message"] == "the file's own check failed"
    assert entries["019"] == dict(version="019", status="skipped", message="not attempted: 018 failed")
    assert result["changed"] is True and failed.value.extra["failed_migration"]["version"] == "018"
    assert "017" in failed.value.msg and "Fix the file and rerun." in failed.value.msg
    assert not os.path.exists(progress)  # the poller's file goes with the run
