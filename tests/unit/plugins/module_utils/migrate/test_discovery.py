"""Unit tests of module_utils/migrate/discovery.py: which files are migrations, how they are read, checked and hashed,
and what a directory without any holds."""

import hashlib
import os
import pwd

import pytest
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.discovery import (
    checksum_of,
    describe_path,
    discover_migrations,
    normalize_sql,
    version_number,
)
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.errors import MigrationError

from tests.support.migrate_units import MIB, discover, discovery_problems, migration, parse_migration, problems_of_file, versions, write


def test_normalize_drops_bom_and_normalizes_line_endings():
    assert normalize_sql("\ufeffSELECT 1;\r\nSELECT 2;\rSELECT 3;\n") == "SELECT 1;\nSELECT 2;\nSELECT 3;\n"


def test_checksum_is_sha256_of_the_lf_text_and_ignores_bom_and_crlf():
    lf = "CREATE TABLE t (id int);\n-- note\n"
    expected = hashlib.sha256(lf.encode("utf-8")).hexdigest()
    for text in (lf, "\ufeff" + lf.replace("\n", "\r\n"), lf.replace("\n", "\r")):
        assert checksum_of(normalize_sql(text)) == expected


def test_checksum_changes_when_a_comment_changes():
    assert checksum_of("SELECT 1; -- a\n") != checksum_of("SELECT 1; -- b\n")


@pytest.mark.parametrize(
    "filename, version, name, number",
    [
        ("001_create_users.sql", "001", "create_users", 1),
        ("7_x.sql", "7", "x", 7),
        ("20260101120000_add-index.sql", "20260101120000", "add-index", 20260101120000),
        ("010_V2_Users.sql", "010", "V2_Users", 10),
    ],
)
def test_good_file_names(filename, version, name, number):
    mig = migration(filename)
    assert (mig.version, mig.name, mig.number, mig.filename) == (version, name, number, filename)


@pytest.mark.parametrize(
    "filename",
    [
        "create_users.sql",  # no number
        "001.sql",  # no description
        "001_.sql",  # empty description
        "001_users.SQL",  # extension must be lower-case .sql
        "001 users.sql",  # space instead of _
        "001_add users.sql",  # space in the description
        "001-users.sql",  # - instead of _
        "v001_users.sql",  # prefix
        "001_-users.sql",  # description must start with a letter or digit
        "001_users.sql.txt",
    ],
)
def test_bad_file_names_are_refused(filename):
    assert problems_of_file(filename, "SELECT 1;") == ["%s: the name does not match NNN_description.sql" % filename]


def test_file_larger_than_max_file_size_is_refused():
    assert problems_of_file("001_big.sql", b"SELECT 1;\n", max_size=9) == ["001_big.sql: 10 bytes is larger than max_file_size (9)"]
    assert parse_migration("001_big.sql", b"SELECT 1;\n", 10).version == "001"


def test_non_utf8_file_is_refused_naming_the_line():
    raw = b"SELECT 1;\n-- caf\xe9 (latin-1)\nSELECT 2;\n"
    assert problems_of_file("002_latin1.sql", raw) == ["002_latin1.sql: not valid UTF-8 (byte 0xe9 at line 2); save the file as UTF-8"]


def test_non_utf8_line_with_cr_line_endings():
    raw = b"SELECT 1;\rSELECT 2;\r-- caf\xe9\r"
    assert problems_of_file("002_latin1.sql", raw) == ["002_latin1.sql: not valid UTF-8 (byte 0xe9 at line 3); save the file as UTF-8"]


def test_nul_byte_is_refused():
    assert problems_of_file("003_nul.sql", b"SELECT 1;\x00\n") == ["003_nul.sql: contains a NUL byte; save the file as UTF-8 text"]


def test_bom_and_crlf_are_accepted_with_the_checksum_of_the_lf_file():
    lf = "-- users\nCREATE TABLE users (\n  id int\n);\nSELECT 1;\n"
    windows = parse_migration("001_users.sql", b"\xef\xbb\xbf" + lf.replace("\n", "\r\n").encode(), MIB)
    unix = parse_migration("001_users.sql", lf.encode(), MIB)
    assert windows.checksum == unix.checksum == checksum_of(lf)
    assert windows.sql == lf
    assert [(s.line, s.text) for s in windows.statements] == [(2, "CREATE TABLE users (\n  id int\n)"), (5, "SELECT 1")]


def test_files_are_ordered_by_version_number(tmp_path):
    for name in ("10_c.sql", "2_b.sql", "001_a.sql", "0100_d.sql"):
        write(tmp_path, name)
    assert versions(discover_migrations(str(tmp_path), MIB)) == ["001", "2", "10", "0100"]


def test_duplicate_versions_are_refused(tmp_path):
    write(tmp_path, "001_a.sql")
    write(tmp_path, "1_b.sql")
    write(tmp_path, "2_c.sql")
    assert discovery_problems(tmp_path) == ["001_a.sql and 1_b.sql: duplicate version 1"]


def test_every_bad_file_is_listed_at_once(tmp_path):
    write(tmp_path, "001_good.sql")
    write(tmp_path, "init.sql")
    write(tmp_path, "002_empty.sql", "-- todo\n")
    write(tmp_path, "003_tx.sql", "BEGIN;\nSELECT 1;\n")
    write(tmp_path, "004_latin1.sql", b"SELECT '\xe9';\n")
    write(tmp_path, "5_dup.sql")
    write(tmp_path, "005_dup.sql")
    # Listing: names, encoding and versions of every file, before the database is asked.
    problems = discovery_problems(tmp_path)
    assert problems == [
        "004_latin1.sql: not valid UTF-8 (byte 0xe9 at line 1); save the file as UTF-8",
        "005_dup.sql and 5_dup.sql: duplicate version 5",
        "init.sql: the name does not match NNN_description.sql",
    ]
    # Splitting: the statements of every file that would run.
    for name in ("init.sql", "004_latin1.sql", "5_dup.sql"):
        (tmp_path / name).unlink()
    with pytest.raises(MigrationError) as excinfo:
        discover(tmp_path)
    assert excinfo.value.problems == [
        "002_empty.sql: contains no SQL statement",
        "003_tx.sql line 1: top-level BEGIN. The module runs each migration in its own transaction; remove the transaction control statements",
    ]


def test_other_files_hidden_files_and_subdirectories_are_ignored(tmp_path):
    write(tmp_path, "001_a.sql")
    write(tmp_path, "README.md", "# not SQL\n")
    write(tmp_path, "notes.txt", "BEGIN;")
    write(tmp_path, ".hidden.sql", "garbage '")
    write(tmp_path, ".002_swap.sql", "garbage '")
    write(tmp_path, "003_a.sql.orig", "garbage '")
    write(tmp_path, "archive/004_old.sql", "garbage '")
    assert [m.filename for m in discover_migrations(str(tmp_path), MIB)] == ["001_a.sql"]


def test_every_bad_entry_is_named_at_once_and_none_raises(tmp_path):
    # A symlink loop used to end the run with "[Errno 40]", naming no other bad file.
    write(tmp_path, "001_good.sql")
    os.symlink("loop_b.sql", str(tmp_path / "002_loop.sql"))
    os.symlink("002_loop.sql", str(tmp_path / "loop_b.sql"))
    os.symlink("gone.sql", str(tmp_path / "003_dangling.sql"))
    (tmp_path / "004_dir.sql").mkdir()
    write(tmp_path, "005_latin1.sql", b"SELECT '\xe9';\n")
    write(tmp_path, "006_a.sql")
    write(tmp_path, "6_b.sql")
    write(tmp_path, "007_big.sql", "SELECT 1;\n" * 20)
    write(tmp_path, b"008_caf\xe9.sql".decode("utf-8", "surrogateescape"))
    assert discovery_problems(tmp_path, max_size=100) == [
        "002_loop.sql: a symbolic link to loop_b.sql that loops back on itself; point it at a file or remove it",
        "003_dangling.sql: a symbolic link to gone.sql, which does not exist; point it at a file or remove it",
        "004_dir.sql: a directory, not a file; migrations are NNN_description.sql files directly in path: rename it or move it out",
        "005_latin1.sql: not valid UTF-8 (byte 0xe9 at line 1); save the file as UTF-8",
        "007_big.sql: 200 bytes is larger than max_file_size (100)",
        "008_caf\\xe9.sql: the name is not valid UTF-8; rename the file",
        "006_a.sql and 6_b.sql: duplicate version 6",
        "loop_b.sql: a symbolic link to 002_loop.sql that loops back on itself; point it at a file or remove it",
    ]


def test_path_that_is_a_symlink_loop_is_a_message(tmp_path):
    os.symlink("b", str(tmp_path / "a"))
    os.symlink("a", str(tmp_path / "b"))
    assert discovery_problems(tmp_path / "a") == [
        "%s is a symbolic link that loops: point path at the directory that holds the NNN_description.sql files" % (tmp_path / "a")
    ]


def test_diesel_layout_is_described_with_what_to_do(tmp_path):
    write(tmp_path, "2024-01-01-000000_create_users/up.sql")
    write(tmp_path, "2024-01-01-000000_create_users/down.sql")
    write(tmp_path, "2024-02-01-000000_add_tasks/up.sql")
    write(tmp_path, "README.md")
    text = describe_path(str(tmp_path))
    assert text.startswith(
        "%s holds no migration file (NNN_description.sql, directly in it): 2 subfolders with an "
        "up.sql (2024-01-01-000000_create_users/up.sql, 2024-02-01-000000_add_tasks/up.sql), the "
        "layout of diesel and similar tools; other files: README.md. Nothing was applied; " % tmp_path
    )
    assert "(for example 2024-01-01-000000_create_users/up.sql -> 001_create_users.sql)" in text
    assert text.endswith("If a directory without migrations is expected here, set allow_empty: true")


def test_migrations_one_level_down_are_pointed_at(tmp_path):
    write(tmp_path, "db/migrations/001_a.sql")
    write(tmp_path, "migrations/001_a.sql")
    (tmp_path / "src").mkdir()
    text = describe_path(str(tmp_path))
    assert "subfolder holding NNN_description.sql files: migrations; other subfolders: db" in text
    assert "point path at the subfolder that holds them (for example %s/migrations)" % tmp_path in text


@pytest.mark.parametrize("hidden, says", [(False, "it is empty."), (True, "it is empty but for hidden entries.")])
def test_empty_directory_is_described(tmp_path, hidden, says):
    if hidden:
        write(tmp_path, ".gitkeep")
    text = describe_path(str(tmp_path))
    assert says in text
    assert "point path at the directory that holds the NNN_description.sql files" in text


def test_upper_case_extension_is_reported_not_ignored(tmp_path):
    write(tmp_path, "001_a.SQL")
    assert discovery_problems(tmp_path) == ["001_a.SQL: the name does not match NNN_description.sql"]


def test_unreadable_file_is_reported(tmp_path):
    # a dangling symbolic link cannot be read, even by root
    write(tmp_path, "001_a.sql")
    os.symlink("gone.sql", str(tmp_path / "002_gone.sql"))
    assert discovery_problems(tmp_path) == ["002_gone.sql: a symbolic link to gone.sql, which does not exist; point it at a file or remove it"]


def test_fifo_is_refused_instead_of_read(tmp_path):
    # opening a named pipe for reading blocks until a writer comes: the run would hang
    write(tmp_path, "001_a.sql")
    os.mkfifo(str(tmp_path / "002_pipe.sql"))
    assert discovery_problems(tmp_path) == ["002_pipe.sql: not a regular file"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads mode-000 files")
def test_file_without_read_permission_is_reported(tmp_path):
    path = write(tmp_path, "001_secret.sql")
    path.chmod(0)
    try:
        assert discovery_problems(tmp_path) == ["001_secret.sql: cannot be read (Permission denied)"]
    finally:
        path.chmod(0o644)


def test_symlink_leading_outside_the_directory_is_refused(tmp_path):
    migrations = tmp_path / "migrations"
    outside = write(tmp_path, "elsewhere/secret.sql", "SELECT 1;")
    write(migrations, "001_a.sql")
    os.symlink(str(outside), str(migrations / "002_link.sql"))
    os.symlink("../elsewhere/secret.sql", str(migrations / "003_relative.sql"))
    real = os.path.realpath(str(outside))
    assert discovery_problems(migrations) == [
        "002_link.sql: a symbolic link to %s, outside the migrations directory" % real,
        "003_relative.sql: a symbolic link to %s, outside the migrations directory" % real,
    ]


def test_symlink_inside_the_directory_is_accepted(tmp_path):
    write(tmp_path, "shared/base.sql", "CREATE TABLE base (id int);\n")
    os.symlink("shared/base.sql", str(tmp_path / "001_base.sql"))
    (mig,) = discover(tmp_path)
    assert (mig.filename, mig.name, mig.statements[0].text) == ("001_base.sql", "base", "CREATE TABLE base (id int)")


def test_directory_reached_through_a_symlink_is_accepted(tmp_path):
    write(tmp_path, "release-42/001_a.sql")
    os.symlink("release-42", str(tmp_path / "current"))
    assert versions(discover_migrations(str(tmp_path / "current"), MIB)) == ["001"]


@pytest.mark.parametrize(
    "make_path, says",
    [
        (lambda tmp: write(tmp, "001_a.sql"), "is not a directory"),
        (lambda tmp: tmp / "does-not-exist", "does not exist"),
    ],
    ids=["a-file", "missing"],
)
def test_path_must_be_a_directory(tmp_path, make_path, says):
    path = make_path(tmp_path)
    (problem,) = discovery_problems(path)
    assert problem.startswith("%s %s" % (path, says))
    assert problem.endswith("point path at the directory that holds the NNN_description.sql files")


def test_directory_the_user_cannot_list_is_named_with_the_user_and_what_to_do(tmp_path):
    path = tmp_path / "m"
    write(path, "001_a.sql")
    path.chmod(0o700)  # root's: nobody may not list it
    if os.geteuid() != 0:
        path.chmod(0o000)
        problems = discovery_problems(path)
        path.chmod(0o700)
    else:
        os.seteuid(65534)  # nobody, for the permission checks of this process
        try:
            problems = discovery_problems(path)
        finally:
            os.seteuid(0)
    user = pwd.getpwuid(65534 if os.geteuid() == 0 else os.geteuid()).pw_name
    assert problems == [
        "%s cannot be listed as %s (Permission denied); give that user read and search permission "
        "on it and search permission on its parent directories" % (path, user)
    ]


def test_empty_directory_has_no_migrations(tmp_path):
    assert discover_migrations(str(tmp_path), MIB) == []


def test_file_larger_than_max_file_size_is_refused_in_discovery(tmp_path):
    write(tmp_path, "001_big.sql", "SELECT 1;\n" * 10)
    problems = discovery_problems(tmp_path, max_size=50)
    assert len(problems) == 1 and problems[0].startswith("001_big.sql: ")
    assert problems[0].endswith("is larger than max_file_size (50)")


def test_too_large_message_states_the_file_size(tmp_path):
    write(tmp_path, "001_big.sql", "SELECT 1;\n" * 10)  # 100 bytes
    assert discovery_problems(tmp_path, max_size=50) == ["001_big.sql: 100 bytes is larger than max_file_size (50)"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("007", 7),
        ("14", 14),
        (" 14 ", 14),
        (3, 3),
        ("v1", None),
        ("", None),
        ("1.2", None),
        ("-1", None),
        ("1_a", None),
        # digits to Python (isdigit, int(), \\d), never a version: 1² would crash int(), ١ would be 1
        ("\u00b2", None),
        ("1\u00b2", None),
        ("\u0661", None),
        ("\u0660\u0660\u0661", None),
        ("\uff11", None),
    ],
)
def test_version_number(text, expected):
    assert version_number(text) == expected
