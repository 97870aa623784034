"""Unit tests of the pure functions of library/db_deploy_backups.py: which files of a shared
backup directory are a database's own, which of them rotation deletes, which databases are a
restore's kept copies. No database and no Ansible run (tests/integration covers those)."""

import hashlib
import json
import os
import time

import pytest

from ansible_collections.st44.db_deploy.plugins.modules import db_deploy_backups as b

SYSID = "7301234567890123456"
OTHER_SYSID = "7309999999999999999"

LISTING = """;
; Archive created at 2026-01-01 00:00:00 UTC
;     dbname: st44
;     TOC Entries: 42
;     Compression: gzip
;     Dump Version: 1.14-0
;     Format: CUSTOM
;
; Selected TOC Entries:
;
215; 1259 16390 TABLE public users postgres
"""

HISTORY = """--
-- PostgreSQL database dump
--

SET statement_timeout = 0;

--
-- Data for Name: schema_migrations; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.schema_migrations (name, version, checksum, applied_at, applied_by, execution_ms) FROM stdin;
baseline\t000\tabc\t2026-01-01 00:00:00+00\tfiles-1\t3
ten\t10\tdef\t2026-01-01 00:00:00+00\tfiles-1\t3
nine\t9\tghi\t2026-01-01 00:00:00+00\tfiles-1\t3
broken\t\\N\tjkl\t2026-01-01 00:00:00+00\tfiles-1\t3
\\.

--
-- PostgreSQL database dump complete
--
"""


# ---------------------------------------------------------------------------
# owner_key, is_own
# ---------------------------------------------------------------------------


def test_owner_key_is_the_role_rule_and_tells_namesakes_and_clusters_apart():
    key = b.owner_key("st44", SYSID)
    # The role builds the same key in Jinja (roles/db_deploy/vars/main.yml) for the pass file
    # and partial dump names; both must agree or a killed run's leftovers are never found.
    assert key == hashlib.sha256(f"{SYSID}/st44".encode()).hexdigest()[:16]
    assert len(key) == 16 and int(key, 16) >= 0
    keys = {b.owner_key(name, SYSID) for name in ("st44", "st44-eu", "st44_eu", "st44.x", "st4", "ST44")}
    assert len(keys) == 6
    assert b.owner_key("st44", OTHER_SYSID) != key
    assert b.owner_key("st44", int(SYSID)) == key  # the identifier as a number or a string


def manifest_of(database="st44", sysid=SYSID, **more):
    return dict({"tool": "db_deploy", "database": database, "system_identifier": sysid}, **more)


@pytest.mark.parametrize(
    "manifest, own",
    [
        (manifest_of(), True),
        (manifest_of(file="st44-1.dump"), True),
        (manifest_of(sysid=int(SYSID)), False),  # written by the module always as a string
        (manifest_of(database="st44-eu"), False),
        (manifest_of(database="st4"), False),
        (manifest_of(database="ST44"), False),
        (manifest_of(sysid=OTHER_SYSID), False),
        (dict(manifest_of(), tool="another_tool"), False),
        ({k: v for k, v in manifest_of().items() if k != "tool"}, False),
        ([manifest_of()], False),
        (None, False),
        ("st44", False),
    ],
)
def test_is_own_needs_this_tool_this_database_and_this_cluster_exactly(manifest, own):
    assert b.is_own(manifest, "st44", SYSID) is own


# ---------------------------------------------------------------------------
# dump_dbname, history_versions
# ---------------------------------------------------------------------------


def test_dump_dbname_reads_the_pg_restore_list_header():
    assert b.dump_dbname(LISTING) == "st44"
    assert b.dump_dbname(LISTING.replace("dbname: st44", "dbname: st44-eu x")) == "st44-eu x"
    assert b.dump_dbname("; Archive created at 2026\n215; TABLE public dbname: st44 x\n") is None
    assert b.dump_dbname("") is None and b.dump_dbname(None) is None


def test_history_versions_come_from_the_version_column_in_numeric_order():
    assert b.history_versions(HISTORY) == ["000", "9", "10"]  # NULL skipped, 9 before 10


def test_history_versions_stop_at_the_end_of_the_copy_block_and_need_a_version_column():
    after = HISTORY.replace("\\.\n", "\\.\nbaseline\t999\tx\t2026\tf\t1\n")
    assert b.history_versions(after) == ["000", "9", "10"]
    no_version = HISTORY.replace("(name, version,", "(name, revision,")
    assert b.history_versions(no_version) == []
    assert b.history_versions("") == [] and b.history_versions(None) == []
    quoted = HISTORY.replace("(name, version,", '("name", "version",')
    assert b.history_versions(quoted) == ["000", "9", "10"]


def test_build_manifest_is_verified_only_when_the_dump_names_this_database():
    now = b.datetime.datetime(2026, 1, 2, 3, 4, 5)
    m = b.build_manifest("st44", int(SYSID), "f.dump", 10, "ab" * 32, LISTING, HISTORY, "r1", "run1", "db-1", now)
    assert m["verified"] is True and m["system_identifier"] == SYSID and m["time"] == "2026-01-02T03:04:05Z"
    assert m["versions"] == ["000", "9", "10"] and b.is_own(m, "st44", SYSID)
    other = b.build_manifest("st44-eu", SYSID, "f.dump", 10, "ab" * 32, LISTING, "", "", "", "", now)
    assert other["verified"] is False and other["versions"] == []


# ---------------------------------------------------------------------------
# scan
# ---------------------------------------------------------------------------


def put_backup(directory, name, manifest, mtime, manifest_name=None, content=b"PGDMP dump"):
    """A dump and its manifest (name.json unless manifest_name), both with mtime."""
    path = directory / name
    path.write_bytes(content)
    if manifest is not None:
        data = dict(manifest, file=manifest.get("file", name), size=len(content))
        mpath = directory / (manifest_name or name + ".json")
        mpath.write_text(json.dumps(data))
        os.utime(mpath, (mtime, mtime))
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def shared_dir(tmp_path):
    """A backup directory shared by st44, its namesakes, another cluster's st44 and a person."""
    d = tmp_path / "backups"
    d.mkdir()
    key = b.owner_key("st44", SYSID)
    other_key = b.owner_key("st44-eu", SYSID)
    t = 1767225600  # 2026-01-01
    own_old = put_backup(d, "st44-20260101T000000Z-r1-00000001.dump", manifest_of(time="2026-01-01T00:00:00Z"), t)
    own_new = put_backup(d, "st44-20260102T000000Z-r2-00000002.dump", manifest_of(time="2026-01-02T00:00:00Z"), t + 86400)
    # The manifest of own_gone outlives its dump: listed, not intact.
    (d / "st44-20251231T000000Z-r0-00000000.dump.json").write_text(
        json.dumps(manifest_of(file="st44-20251231T000000Z-r0-00000000.dump", time="2025-12-31T00:00:00Z", size=3))
    )
    put_backup(d, "st44-eu-20260103T000000Z-r3-00000003.dump", manifest_of(database="st44-eu"), t)
    put_backup(d, "st44-20260104T000000Z-r4-00000004.dump", manifest_of(sysid=OTHER_SYSID), t)
    put_backup(d, "st44-20200101T000000Z-old.dump", None, t - 10**8)  # before manifests existed
    put_backup(d, "st44-20260105T000000Z-broken.dump", None, t)
    (d / "st44-20260105T000000Z-broken.dump.json").write_text("{not json")
    # A manifest of st44 copied next to another file claims nothing.
    put_backup(d, "st44-eu-20260106T000000Z-r6-00000006.dump", manifest_of(file="st44-eu-x.dump"), t)
    (d / "st44-copy.dump.json").write_text((d / (own_new.name + ".json")).read_text())
    # A symlink to an own manifest is not a manifest.
    os.symlink(d / (own_new.name + ".json"), d / "st44-link.dump.json")
    (d / "st44-link.dump").write_bytes(b"PGDMP dump")
    leftovers = [f".pgpass-{key}-0badcafe", f"st44-20260107T000000Z-r7-0badcafe.{key}.dump.partial"]
    for name in leftovers + [
        f".pgpass-{other_key}-0badcafe",
        f"st44-eu-x.{other_key}.dump.partial",
        ".pgpass-0000beef",
        "st44-20260107T000000Z-r7-0000beef.dump.partial",
        "notes.txt",
    ]:
        (d / name).write_text("x")
    return d, own_old, own_new, leftovers


def test_scan_claims_only_files_whose_manifest_names_this_database_and_cluster(shared_dir):
    d, own_old, own_new, leftovers = shared_dir

    own, found_leftovers, foreign = b.scan(str(d), "st44", SYSID)

    assert [e["file"] for e in own] == [own_new.name, own_old.name, "st44-20251231T000000Z-r0-00000000.dump"]
    assert [e["intact"] for e in own] == [True, True, False]
    assert own[0]["path"] == str(own_new) and own[0]["manifest"] == own_new.name + ".json"
    assert own[0]["mtime"] == own_new.stat().st_mtime and own[2]["mtime"] is None
    assert sorted(found_leftovers) == sorted(leftovers)
    claimed = {e["file"] for e in own} | {e["manifest"] for e in own} | set(leftovers)
    assert sorted(foreign) == sorted(set(os.listdir(d)) - claimed)
    for name in (
        "st44-20200101T000000Z-old.dump",
        "st44-20260105T000000Z-broken.dump",
        "st44-20260105T000000Z-broken.dump.json",
        "st44-copy.dump.json",
        "st44-link.dump",
        "st44-link.dump.json",
        "st44-20260104T000000Z-r4-00000004.dump",
        "notes.txt",
        "st44-20260107T000000Z-r7-0000beef.dump.partial",
    ):
        assert name in foreign, name


def test_scan_for_a_namesake_claims_its_own_and_none_of_st44s(shared_dir):
    d, own_old, own_new, leftovers = shared_dir

    own, found_leftovers, foreign = b.scan(str(d), "st44-eu", SYSID)

    assert [e["file"] for e in own] == ["st44-eu-20260103T000000Z-r3-00000003.dump"]
    assert len(found_leftovers) == 2 and not set(found_leftovers) & set(leftovers)
    assert own_new.name in foreign and own_old.name in foreign and leftovers[0] in foreign


def test_scan_of_another_cluster_sees_only_that_clusters_st44(shared_dir):
    d = shared_dir[0]
    own, found_leftovers, _ = b.scan(str(d), "st44", OTHER_SYSID)
    assert [e["file"] for e in own] == ["st44-20260104T000000Z-r4-00000004.dump"] and found_leftovers == []


def test_scan_of_a_missing_directory_finds_nothing(tmp_path):
    assert b.scan(str(tmp_path / "none"), "st44", SYSID) == ([], [], [])


# ---------------------------------------------------------------------------
# to_rotate
# ---------------------------------------------------------------------------


def entries(*mtimes, current_at=None):
    """Own backups newest first, b0 the newest; current (if current_at is given) first."""
    own = [{"file": f"b{i}.dump", "mtime": m} for i, m in enumerate(mtimes)]
    if current_at is not None:
        own.insert(0, {"file": "current.dump", "mtime": current_at})
    return own


def rotated(own, keep, current="current.dump", older_than=1000):
    return [e["file"] for e in b.to_rotate(own, keep, current, older_than)]


def test_rotation_keeps_the_newest_keep_counting_the_current_backup():
    own = entries(500, 400, 300, 200, 100, current_at=999)
    assert rotated(own, 3) == ["b2.dump", "b3.dump", "b4.dump"]
    assert rotated(own, 1) == ["b0.dump", "b1.dump", "b2.dump", "b3.dump", "b4.dump"]
    assert rotated(own, 6) == [] and rotated(own, 100) == []


@pytest.mark.parametrize("keep", [0, -3])
def test_rotation_never_deletes_the_current_backup_even_with_keep_below_one(keep):
    own = entries(500, 400, current_at=999)
    assert rotated(own, keep) == ["b0.dump", "b1.dump"]
    assert "current.dump" not in rotated(own, keep, older_than=10**6)


def test_rotation_never_deletes_a_file_changed_at_or_after_the_run_started():
    # b0 and b1: backups of deploys running at the same time; b5 has no file any more.
    own = entries(2000, 1000, 900, 800, 700, None, current_at=3000)
    assert rotated(own, 1, older_than=1000) == ["b2.dump", "b3.dump", "b4.dump"]
    assert rotated(own, 2, older_than=1000) == ["b3.dump", "b4.dump"]
    assert rotated(own, 1, older_than=0) == []


def test_rotation_without_a_current_backup_keeps_keep_of_the_old_ones():
    own = entries(500, 400, 300)
    assert rotated(own, 2, current=None) == ["b2.dump"]
    assert rotated(own, 2, current="not-a-backup.dump") == ["b2.dump"]


def test_rotation_never_goes_beyond_what_the_scan_called_own(shared_dir):
    d, own_old, own_new, _ = shared_dir
    own, _, foreign = b.scan(str(d), "st44", SYSID)
    doomed = b.to_rotate(own, 1, own_new.name, time.time())
    assert [e["file"] for e in doomed] == [own_old.name]
    assert not {e["file"] for e in doomed} & set(foreign)


# ---------------------------------------------------------------------------
# copy_marker, own_copies
# ---------------------------------------------------------------------------


def copy_row(datname, database="st44", sysid=SYSID, name=None, **marker):
    comment = b.copy_marker(database, sysid, name or datname, "st44-1.dump", "2026-01-01T00:00:00Z")
    if marker:
        comment = json.dumps(dict(json.loads(comment), **marker))
    return {"datname": datname, "comment": comment, "size": 8000}


def test_own_copies_are_the_marked_copies_of_this_database_under_their_own_name():
    rows = [
        copy_row("st44_before_restore_20260101120000"),
        copy_row("st44_before_restore_20260101110000"),
        copy_row("st44-eu_before_restore_20260101120000", database="st44-eu"),
        copy_row("st44_before_restore_20260101130000", sysid=OTHER_SYSID),
        copy_row("st44_renamed", name="st44_before_restore_20260101090000"),  # marker of another name
        copy_row("st44_before_restore_20260101100000", kind="something_else"),
        copy_row("st44_before_restore_20260101080000", tool="another_tool"),
        copy_row("st44"),  # the database itself, whatever its comment says
        {"datname": "st44_before_restore_20260101070000", "comment": None, "size": 1},
        {"datname": "st44_before_restore_20260101060000", "comment": "kept by hand", "size": 1},
        {"datname": "st44_before_restore_20260101050000", "comment": "[1, 2]", "size": 1},
    ]

    copies = b.own_copies(rows, "st44", SYSID)

    assert copies == [
        {"name": "st44_before_restore_20260101110000", "time": "2026-01-01T00:00:00Z", "size": 8000, "restored_file": "st44-1.dump"},
        {"name": "st44_before_restore_20260101120000", "time": "2026-01-01T00:00:00Z", "size": 8000, "restored_file": "st44-1.dump"},
    ]
    assert [c["name"] for c in b.own_copies(rows, "st44-eu", SYSID)] == ["st44-eu_before_restore_20260101120000"]


def test_the_history_table_splits_into_schema_and_name():
    assert b.split_table("schema_migrations") == ("public", "schema_migrations")
    assert b.split_table("ops.schema_migrations") == ("ops", "schema_migrations")


# ---------------------------------------------------------------------------
# db_deploy_wait: when a job has finished, what a progress line says
# ---------------------------------------------------------------------------


def test_a_job_has_finished_when_the_wrapper_replaced_its_start_record():
    from ansible_collections.st44.db_deploy.plugins.modules import db_deploy_wait as w

    assert not w.job_finished(None)  # being written
    assert not w.job_finished({"started": 1, "finished": 0, "ansible_job_id": "1.2"})
    assert w.job_finished({"changed": True, "file": "/b/x.dump"})
    assert w.job_finished({"failed": True, "msg": "pg_dump exited with 1"})


def test_progress_says_the_size_written_and_the_time_or_what_the_job_said(tmp_path):
    from ansible_collections.st44.db_deploy.plugins.modules import db_deploy_wait as w

    partial = tmp_path / "x.dump.partial"
    assert w.progress("pg_dump of st44", 3, str(partial)) == "pg_dump of st44: 0 MB written, 3 s"
    partial.write_bytes(b"\0" * (5 * 1024 * 1024 + 10))
    assert w.progress("pg_dump of st44", 40, str(partial)) == "pg_dump of st44: 5 MB written, 40 s"
    said = tmp_path / "progress.json"
    said.write_text(json.dumps({"msg": "applying 014 create_tasks_table"}))
    assert w.progress("migrations", 7, None, str(said)) == "applying 014 create_tasks_table, 7 s"
    said.write_text("{torn")
    assert w.progress("migrations", 7, None, str(said)) == "migrations: running, 7 s"
