"""Bad input through the real deploy-db.yml, and the cases the e2e suite left to unit tests.

The module checks every file's name, size, encoding and version when it lists
them, and splits and checks (empty, BEGIN/COMMIT, meta-commands) only the files
it is about to run, after planning; so a run names every problem of the first
kind at once, and those of the second kind once the first are fixed.

Each is refused with a message naming the file and the problem, before anything
is written (no backup, no change in the database), or handled as documented
(BOM and CRLF accepted, with the checksum of the LF file). The single-file
refusals already proven through the module (duplicate version, off-pattern name,
empty, non-UTF-8, BEGIN/COMMIT, syntax error with its line, changed applied
file, out-of-order, unknown target version, injected history table name) are
in tests/e2e/test_migrate_rules.py and test_migrate_st44.py; docs/guarantees.md
lists them.
"""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.support.db_state import catalog, recorded_versions
from tests.support.deploy_runner import write_sql
from tests.support.st44 import ST44_VERSIONS
from tests.support import migrate_runner

pytestmark = [pytest.mark.e2e]

HUGE = 60 * 1024 * 1024  # above the default max_file_size of 50 MiB


def test_every_bad_file_is_named_at_once_and_nothing_is_written(deploy, db, site):
    outside = site.root / "outside.sql"
    outside.write_text("CREATE TABLE pwned (id int);\n")  # valid SQL: only the link is wrong
    write_sql(site.migrations, "017_dup.sql", "CREATE TABLE a (id int);\n")
    write_sql(site.migrations, "17_dup_again.sql", "CREATE TABLE b (id int);\n")
    write_sql(site.migrations, "18-no-underscore.sql", "CREATE TABLE c (id int);\n")
    (site.migrations / "020_latin1.sql").write_bytes(b"INSERT INTO users (email) VALUES ('caf\xe9');\n")
    os.symlink(outside, site.migrations / "022_link.sql")
    before = catalog(db)

    run = deploy()

    assert run.rc != 0
    for expected in (
        "017_dup.sql and 17_dup_again.sql: duplicate version 17",
        "18-no-underscore.sql: the name does not match NNN_description.sql",
        "020_latin1.sql: not valid UTF-8 (byte 0xe9 at line 1); save the file as UTF-8",
        f"022_link.sql: a symbolic link to {outside}, outside the migrations directory",
        "nothing was applied",
    ):
        assert expected in run.output, expected
    assert catalog(db) == before
    assert "pwned" not in db.tables()
    assert site.backup_files() == []  # refused at the plan, before the backup
    assert run.report["result"] == "failed" and "No migration was applied." in run.report["error"]

    # Fixed (the bad files removed), the same deploy converges.
    for name in ("17_dup_again.sql", "18-no-underscore.sql", "020_latin1.sql", "022_link.sql"):
        (site.migrations / name).unlink()
    rerun = deploy()
    assert rerun.rc == 0, rerun.output
    assert recorded_versions(db) == ST44_VERSIONS + ["017"]


def test_file_over_max_file_size_is_refused_on_the_controller_before_anything_is_shipped(deploy, db, site):
    # Copying and hashing a file that size would take minutes before the module could refuse it.
    with open(site.migrations / "023_huge.sql", "wb") as f:
        f.truncate(HUGE)  # sparse: costs no disk
    before = catalog(db)

    run = deploy()

    assert run.rc != 0
    assert (
        "migration files larger than db_deploy_max_file_size (52428800 bytes): 023_huge.sql. Nothing was shipped and no migration was applied"
    ) in run.output, run.output[-3000:]
    assert site.shipped() == []
    assert site.backup_files() == []
    assert catalog(db) == before
    assert run.report["result"] == "failed"

    (site.migrations / "023_huge.sql").unlink()
    rerun = deploy()
    assert rerun.rc == 0, rerun.output
    assert recorded_versions(db) == ST44_VERSIONS


def test_history_table_name_injection_through_the_playbook_is_refused(deploy, db, site, socket_vars):
    assert migrate_runner.run_migrate(dict(db.login_params(), path=str(site.migrations))).rc == 0
    before = catalog(db)

    run = deploy(vars=dict(socket_vars, db_deploy_table="schema_migrations; DROP TABLE users; --"))

    assert run.rc != 0
    assert "is not a plain identifier" in run.output
    assert catalog(db) == before and "users" in db.tables()


def test_bom_and_crlf_are_accepted_with_the_checksum_of_the_lf_file(db, tmp_path):
    mdir = tmp_path / "m"
    mdir.mkdir()
    lf = "CREATE TABLE one (id int);\nINSERT INTO one VALUES (1);\n"
    (mdir / "001_one.sql").write_bytes(b"\xef\xbb\xbf" + lf.replace("\n", "\r\n").encode())
    args = dict(db.login_params(), path=str(mdir))

    first = migrate_runner.run_migrate(args)

    assert first.rc == 0, first.output
    assert db.sql("SELECT count(*) FROM one") == [(1,)]
    recorded = db.sql("SELECT checksum FROM schema_migrations WHERE version = '001'")[0][0]
    assert recorded == hashlib.sha256(lf.encode()).hexdigest()
    (mdir / "001_one.sql").write_text(lf)  # converted to LF, no BOM: the same migration
    again = migrate_runner.run_migrate(args)
    assert again.rc == 0 and again.result["changed"] is False, again.output
    assert again.result["drifted"] == []


def test_large_valid_file_is_applied_in_one_piece(db, tmp_path):
    mdir = tmp_path / "m"
    mdir.mkdir()
    rows = ",\n".join(f"({n}, '{'x' * 80}')" for n in range(100000))  # about 10 MB
    (mdir / "001_big.sql").write_text(f"CREATE TABLE big (id int, v text);\nINSERT INTO big VALUES\n{rows};\n")
    (mdir / "002_after.sql").write_text("SELECT count(*) FROM big;\n")

    run = migrate_runner.run_migrate(dict(db.login_params(), path=str(mdir)))

    assert run.rc == 0, run.output[-3000:]
    assert db.sql("SELECT count(*) FROM big") == [(100000,)]
    assert run.status_of() == {"001": "applied", "002": "applied"}
