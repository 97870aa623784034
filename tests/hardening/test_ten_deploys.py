"""Ten deploys of deploy-db.yml started at once against one database.

As ten pipelines would run them: the same host (one backup directory, one
release root), each its own workspace (inventory, report directory), over TCP
with a password, so each pg_dump reads a pass file. Every migration must be
applied exactly once, every run must end ok or with the clean lock-wait
message, and the backup taken by the run that applied the migrations must be
there, whole, afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.support.background_runs import start_deploy
from tests.support.namesakes import system_identifier
from tests.support.db_state import recorded_versions
from tests.support.deploy_runner import mode_of
from tests.support.st44 import ST44, ST44_VERSIONS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUNS = 10
LOCK_MESSAGE = "another migration run holds the migration lock"


def old_backup(site, db, day: int, manifest: bool) -> Path:
    """A backup dated 2020-01-<day>, with the manifest an earlier deploy of db writes, or none
    (a dump from before manifests, or made by hand)."""
    path = site.backups / f"{db.name}-202001{day:02d}T000000Z-files-{'old' if manifest else 'by-hand'}.dump"
    path.write_bytes(b"PGDMP old")
    stamp = 1577836800 + day * 86400
    if manifest:
        meta = path.with_name(path.name + ".json")
        meta.write_text(
            json.dumps(
                {
                    "tool": "db_deploy",
                    "format": 1,
                    "file": path.name,
                    "database": db.name,
                    "system_identifier": system_identifier(db.cluster),
                    "host": "localhost",
                    "time": f"2020-01-{day:02d}T00:00:00Z",
                    "release": "files-old",
                    "run_id": "00000000",
                    "versions": [],
                    "size": 9,
                    "sha256": hashlib.sha256(b"PGDMP old").hexdigest(),
                    "verified": True,
                }
            )
        )
        meta.chmod(0o600)
        os.utime(meta, (stamp, stamp))
    os.utime(path, (stamp, stamp))
    return path


def test_ten_deploys_at_once_apply_each_migration_exactly_once(db, site, tcp_login, tmp_path, reap):
    # Backups of earlier deploys of this database: rotation (keep 3) may delete those, never a
    # concurrent run's. Dumps without a manifest, even older, are not its own: left alone.
    site.backups.mkdir(mode=0o700)
    old = [old_backup(site, db, day, manifest=True) for day in (1, 2, 3)]
    unowned = [old_backup(site, db, day, manifest=False) for day in (1, 4)]
    runs = []
    for n in range(RUNS):
        host_vars = dict(tcp_login.vars, db_deploy_backup_keep=3, db_deploy_report_dir=str(tmp_path / f"workspace{n}" / "reports"))
        run = start_deploy(host_vars, tmp_path / f"workspace{n}", secrets=tcp_login.secrets())
        reap(run)
        runs.append(run)
    done = [run.finish(timeout=600) for run in runs]

    ok = [d for d in done if d.rc == 0]
    refused = [d for d in done if d.rc != 0]
    for d in refused:
        assert LOCK_MESSAGE in d.output and "wait for it to finish and rerun" in d.output, d.output[-3000:]
        assert d.report["result"] == "failed"
    assert ok, "no deploy succeeded"
    assert recorded_versions(db) == ST44_VERSIONS
    assert db.sql("SELECT version, count(*) FROM schema_migrations GROUP BY 1 HAVING count(*) > 1") == []
    # Exactly one run applied each version; every other ok run found it applied.
    applied_by_run = [[m["version"] for m in d.report["migrations"] if m["status"] == "applied"] for d in done]
    assert sorted(v for versions in applied_by_run for v in versions) == ST44_VERSIONS
    (applier,) = [d for d, versions in zip(done, applied_by_run) if versions]
    assert applied_by_run[done.index(applier)] == ST44_VERSIONS
    for d in ok:
        if d is not applier:
            assert {m["status"] for m in d.report["migrations"]} == {"already_applied"}, d.report
    # The backup taken before the migrations ran is there, whole and recorded; no run left debris.
    backup = Path(applier.report["backup_file"])
    assert backup.exists(), f"{backup} (the backup before the migrations) is gone"
    assert mode_of(backup) == 0o600
    manifest = backup.with_name(backup.name + ".json")
    assert mode_of(manifest) == 0o600
    facts = json.loads(manifest.read_text())
    assert facts["database"] == db.name and facts["file"] == backup.name and facts["verified"] is True
    names = {p.name for p in site.backups.iterdir()}
    leftovers = sorted(n for n in names if not n.endswith((".dump", ".dump.json")))
    assert leftovers == [], leftovers
    # Every manifest sits next to its dump, and every backup of a run has one.
    assert {n[: -len(".json")] for n in names if n.endswith(".json")} <= names
    taken = [d.report["backup_file"] for d in done if d.report["backup_file"]]
    assert len(set(taken)) == len(taken), "two runs named the same backup file"
    assert all(Path(b).exists() for b in taken), "a run deleted the backup of a concurrent run"
    assert all(Path(b + ".json").exists() for b in taken), "a run's backup has no manifest"
    assert [p.exists() for p in old] == [False, True, True]  # the oldest rotated away
    assert not old[0].with_name(old[0].name + ".json").exists()  # with its manifest
    assert [p.exists() for p in unowned] == [True, True]  # not this tool's: never deleted
    # The ten left no connection and no lock behind.
    assert db.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
    print(f"{len(ok)} ok, {len(refused)} refused with the lock message; versions {', '.join(ST44)} applied once, by one run")
