"""Unit tests of plugins/module_utils/db_deploy_backup_check.py: which pg_dump, its version,
whether the backup directory can be written. No database and no Ansible run."""

import pytest

from ansible_collections.st44.db_deploy.plugins.module_utils import db_deploy_backup_check as c


def test_pg_bin_is_the_configured_directory_else_the_smallest_installed_major_not_older_than_the_server():
    assert c.choose_pg_bin("/opt/pg/bin/", ["13", "17"], 15) == "/opt/pg/bin/"
    assert c.choose_pg_bin("/opt/pg/bin", [], 15) == "/opt/pg/bin/"
    assert c.choose_pg_bin("", ["13", "17", "16", "lost+found", "9.6"], 15) == "/usr/lib/postgresql/16/bin/"
    assert c.choose_pg_bin("", ["15"], 15) == "/usr/lib/postgresql/15/bin/"
    # Only older ones: the PATH's, which the version check then judges.
    assert c.choose_pg_bin("", ["13", "14"], 15) == ""


@pytest.mark.parametrize(
    "text, major",
    [
        ("pg_dump (PostgreSQL) 16.4", 16),
        ("pg_dump (PostgreSQL) 12.9 (Debian 12.9-1.pgdg110+1)", 12),
        ("pg_restore (PostgreSQL) 9.6.24", 9),
        ("", 0),
        ("no version here", 0),
    ],
)
def test_client_major_reads_the_version_pg_dump_prints(text, major):
    assert c.client_major(text) == major


def test_nearest_existing_is_where_a_missing_directory_would_be_created(tmp_path):
    assert c.nearest_existing(str(tmp_path / "a" / "b" / "c")) == str(tmp_path)
    assert c.nearest_existing(str(tmp_path)) == str(tmp_path)


class _St:
    def __init__(self, uid, gid, mode):
        self.st_uid, self.st_gid, self.st_mode = uid, gid, mode | 0o040000


@pytest.mark.parametrize(
    "st, uid, gids, allowed",
    [
        (_St(0, 0, 0o755), 120, {120}, False),  # root's directory: postgres may not write
        (_St(120, 120, 0o700), 120, {120}, True),  # postgres's own
        (_St(120, 120, 0o500), 120, {120}, False),  # its own, but read-only
        (_St(0, 120, 0o770), 120, {120}, True),  # through its group
        (_St(0, 0, 0o1777), 120, {120}, True),  # like /tmp
        (_St(0, 0, 0o755), 0, {0}, True),  # root writes anywhere
    ],
)
def test_mode_allows_write_reads_the_bits_that_apply_to_the_user(st, uid, gids, allowed):
    assert c.mode_allows_write(st, uid, gids) is allowed
