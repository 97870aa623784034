"""Release cleanup deletes only release directories this tool made for this exact database.

Each release directory carries a manifest (.db-deploy-release.json: tool, database,
system_identifier, release, created) and lives in <release root>/<name>-<hash of the name and
the cluster's system_identifier>/<release>. Anything else under the release root is never
touched, whatever its age.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.pgcluster import Database

pytestmark = pytest.mark.e2e

MARKER = ".db-deploy-release.json"
LONG_AGO = 946684800  # 2000-01-01: older than anything a deploy makes


def manifests(root: Path) -> dict[Path, dict]:
    """{release directory: its manifest} of every manifest under root."""
    return {p.parent: json.loads(p.read_text()) for p in root.rglob(MARKER)}


def tree(path: Path) -> dict[str, str]:
    """{relative path: content or '<dir>'} of everything under path."""
    return {str(p.relative_to(path)): ("<dir>" if p.is_dir() else p.read_text()) for p in sorted(path.rglob("*"))}


def system_identifier(pg) -> str:
    return str(pg.sql("SELECT system_identifier FROM pg_control_system()")[0][0])


def plant(path: Path, files: dict[str, str]) -> None:
    """Someone else's files, with old modification times."""
    for name, text in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for p in [path, *path.rglob("*")]:
        os.utime(p, (LONG_AGO, LONG_AGO))


def test_shared_release_root_keeps_everything_it_did_not_make(deploy, pg, db, site, socket_vars):
    root = site.releases
    # An application's directories and files, a directory that looks like an old release,
    # and one whose manifest names another database, all old.
    plant(root / "billing-app", {"current/app.jar": "jar", "config.yml": "port: 8080\n"})
    plant(root / "42", {"001_old.sql": "SELECT 1;\n"})
    plant(
        root / "forged",
        {MARKER: json.dumps({"tool": "db_deploy", "database": "other", "system_identifier": system_identifier(pg), "release": "forged", "created": "1999"})},
    )
    plant(root, {"README.txt": "shared directory\n"})
    others = tree(root)
    variables = dict(socket_vars, db_deploy_releases_keep=2)

    for n in range(1, 5):
        run = deploy(vars=variables, extra_vars={"db_deploy_release_id": f"r{n}"})
        assert run.rc == 0, run.output

    after = tree(root)
    assert {k: v for k, v in after.items() if k in others} == others
    owned = manifests(root)
    owned.pop(root / "forged")
    assert sorted(d.name for d in owned) == ["r3", "r4"]
    (owner_dir,) = {d.parent for d in owned}
    assert owner_dir.parent == root and owner_dir.name.startswith(db.name[:40] + "-")
    for directory, manifest in owned.items():
        assert manifest["tool"] == "db_deploy"
        assert manifest["database"] == db.name
        assert manifest["system_identifier"] == system_identifier(pg)
        assert manifest["release"] == directory.name
        assert sorted(p.name for p in directory.glob("*.sql")) == sorted(p.name for p in site.migrations.glob("*.sql"))


def test_a_directory_without_a_manifest_in_the_databases_own_folder_is_left_alone(deploy, db, site, socket_vars):
    variables = dict(socket_vars, db_deploy_releases_keep=1)
    assert deploy(vars=variables, extra_vars={"db_deploy_release_id": "r1"}).rc == 0
    (owner_dir,) = {d.parent for d in manifests(site.releases)}
    plant(owner_dir / "by-hand", {"notes.txt": "kept\n"})
    plant(owner_dir / "r0", {"000_x.sql": "SELECT 1;\n"})  # a release name, no manifest
    # A manifest cut short (a full disk, an editor): not this tool's as far as anyone can tell.
    plant(owner_dir / "torn", {MARKER: json.dumps({"tool": "db_deploy", "database": db.name})[:30]})

    for n in (2, 3):
        run = deploy(vars=variables, extra_vars={"db_deploy_release_id": f"r{n}"})
        assert run.rc == 0, run.output

    # .store: the contents the releases link to, shipped once each (ship.yml).
    assert sorted(p.name for p in owner_dir.iterdir()) == [".store", "by-hand", "r0", "r3", "torn"]
    assert f"Left alone in {owner_dir}: by-hand, r0, torn." in run.stdout
    assert (owner_dir / "by-hand" / "notes.txt").read_text() == "kept\n"


def test_two_databases_sharing_a_release_root_keep_their_own_releases(deploy, pg, db, site, socket_vars):
    # A database whose name starts with the other's, as st44 and st44-eu.
    other = Database(pg, db.name[:50] + "-eu")
    pg.create_database(other.name)
    try:
        mine = dict(socket_vars, db_deploy_releases_keep=2)
        theirs = dict(mine, db_deploy_db_name=other.name)
        for n in range(1, 4):
            # The same release id for both: neither overwrites nor deletes the other's.
            assert deploy(vars=mine, extra_vars={"db_deploy_release_id": f"r{n}"}).rc == 0
            assert deploy(vars=theirs, extra_vars={"db_deploy_release_id": f"r{n}"}).rc == 0

        owned = manifests(site.releases)
        by_db = {}
        for directory, manifest in owned.items():
            assert manifest["release"] == directory.name
            by_db.setdefault(manifest["database"], set()).add((directory.parent.name, directory.name))
        assert sorted(by_db) == sorted([db.name, other.name])
        for name, releases in by_db.items():
            assert sorted(r for _, r in releases) == ["r2", "r3"], (name, releases)
            assert len({owner for owner, _ in releases}) == 1
        assert {owner for owner, _ in by_db[db.name]}.isdisjoint({owner for owner, _ in by_db[other.name]})
        assert other.tables() == db.tables() and "users" in db.tables()
    finally:
        pg.drop_database(other.name)


def test_the_same_files_under_a_new_release_id_cost_nothing_and_change_nothing(deploy, db, site, socket_vars):
    assert deploy(vars=socket_vars, extra_vars={"db_deploy_release_id": "r1"}).rc == 0

    run = deploy(vars=socket_vars, extra_vars={"db_deploy_release_id": "r2"})

    assert run.rc == 0, run.output
    assert run.recap()["changed"] == 0, run.stdout
    owned = {d.name: d for d in manifests(site.releases)}
    assert sorted(owned) == ["r1", "r2"]
    # One copy of each content on the host: r2's files are r1's, not new copies.
    for sql in sorted(site.migrations.glob("*.sql")):
        first, second = owned["r1"] / sql.name, owned["r2"] / sql.name
        assert second.read_text() == sql.read_text()
        assert second.stat().st_ino == first.stat().st_ino


def test_a_new_migration_file_is_the_only_content_shipped(deploy, db, site, socket_vars):
    assert deploy(vars=socket_vars, extra_vars={"db_deploy_release_id": "r1"}).rc == 0
    (site.migrations / "900_add_note.sql").write_text("CREATE TABLE note (id int);\n")

    run = deploy(vars=socket_vars, extra_vars={"db_deploy_release_id": "r2"})

    assert run.rc == 0, run.output
    owned = {d.name: d for d in manifests(site.releases)}
    store = owned["r2"].parent / ".store"
    assert sorted(p.name for p in owned["r2"].glob("*.sql")) == sorted(p.name for p in site.migrations.glob("*.sql"))
    assert (owned["r2"] / "900_add_note.sql").stat().st_nlink == 2  # the store's copy and this release's
    assert len(list(store.iterdir())) == len(list(site.migrations.glob("*.sql"))) + 1  # + the lock
    assert "note" in db.tables()


def test_a_content_changed_on_the_host_is_shipped_again(deploy, db, site, socket_vars):
    assert deploy(vars=socket_vars, extra_vars={"db_deploy_release_id": "r1"}).rc == 0
    (release,) = manifests(site.releases)
    shipped = sorted(release.glob("*.sql"))[-1]
    original = shipped.read_text()
    shipped.write_text(original + "\n-- edited on the host\n")  # also edits the store's copy: a hard link

    run = deploy(vars=socket_vars, extra_vars={"db_deploy_release_id": "r1"})

    assert run.rc == 0, run.output
    assert shipped.read_text() == original
    assert (site.releases / release.parent.name / ".store").is_dir()


def test_a_directory_named_like_the_release_but_not_made_by_the_tool_is_refused(deploy, db, site, socket_vars):
    assert deploy(vars=socket_vars, extra_vars={"db_deploy_release_id": "r1"}).rc == 0
    (owner_dir,) = {d.parent for d in manifests(site.releases)}
    plant(owner_dir / "r2", {"notes.txt": "someone's\n"})

    run = deploy(vars=socket_vars, extra_vars={"db_deploy_release_id": "r2"})

    assert run.rc == 2, run.output
    assert f"{owner_dir / 'r2'} exists but was not made by this tool" in run.stdout
    assert sorted(p.name for p in (owner_dir / "r2").iterdir()) == ["notes.txt"]


def test_a_content_no_kept_release_links_to_leaves_the_store(deploy, db, site, socket_vars):
    variables = dict(socket_vars, db_deploy_releases_keep=1)
    extra = site.migrations / "900_short_lived.sql"
    extra.write_text("CREATE TABLE short_lived (id int);\n")
    assert deploy(vars=variables, extra_vars={"db_deploy_release_id": "r1"}).rc == 0
    extra.unlink()
    db.sql("DELETE FROM schema_migrations WHERE version = '900'")

    run = deploy(vars=variables, extra_vars={"db_deploy_release_id": "r2"})

    assert run.rc == 0, run.output
    (release,) = manifests(site.releases)
    assert release.name == "r2"
    store = release.parent / ".store"
    stored = sorted(p.read_text() for p in store.iterdir() if not p.name.startswith("."))
    assert stored == sorted(p.read_text() for p in site.migrations.glob("*.sql"))


def test_a_dry_run_after_a_deploy_reads_the_shipped_release_and_copies_nothing(deploy, db, site, check_mode_lock):
    assert deploy().rc == 0
    (release,) = manifests(site.releases)

    with check_mode_lock():
        dry = deploy(check=True, verbosity=1)

    assert dry.rc == 0, dry.output
    # -v prints each task's result: shipping answered with the deploy's release directory.
    shipped = dry.stdout.split("TASK [db_deploy : Ship the migration files]", 1)[1].split("TASK [", 1)[0]
    assert '"temporary": false' in shipped, shipped
    assert f'"path": "{release}"' in shipped, shipped
    removal = dry.stdout.split("TASK [db_deploy : Remove the dry run's files from the host]", 1)[1]
    assert removal.split("\n", 2)[1].startswith("skipping: [localhost]"), removal[:300]


def test_removing_a_dry_runs_copy_refuses_anything_else(deploy, site, tmp_path):
    victim = tmp_path / "not-a-dry-run"
    victim.mkdir()
    (victim / "keep.txt").write_text("kept\n")
    play = tmp_path / "remove.yml"
    play.write_text(
        "- hosts: st44_db\n  gather_facts: false\n  tasks:\n    - name: Remove\n      db_deploy_release:\n        path: %s\n        state: absent\n" % victim
    )

    run = deploy(str(play))

    assert run.rc != 0
    assert "is not a temporary directory of a read-only db_deploy_release call; nothing was removed" in run.output
    assert (victim / "keep.txt").read_text() == "kept\n"
