"""Migrations with a deterministic "middle" for fault tests, and the invariant every fault must keep.

002 waits inside its transaction (at most two minutes) while the row of the
``fault_gate`` table says ``hold``; the test creates that table (it is no
migration's) and opens the gate to let a run go on, so a rerun runs the very
same files. Each statement of the loop takes a new snapshot, so it sees the
gate open as soon as the test commits.
"""

from __future__ import annotations

from pathlib import Path

FILES = {
    "001_first.sql": "CREATE TABLE first_t (id int);\nINSERT INTO first_t VALUES (1);\n",
    "002_slow.sql": (
        "CREATE TABLE slow_t (id int);\n"
        "INSERT INTO slow_t VALUES (2);\n"
        "DO $$ BEGIN\n"
        "  FOR i IN 1..2400 LOOP\n"
        "    EXIT WHEN NOT EXISTS (SELECT 1 FROM fault_gate WHERE hold);\n"
        "    PERFORM pg_sleep(0.05);\n"
        "  END LOOP;\n"
        "END $$;\n"
        "CREATE TABLE slow_after (id int);\n"
    ),
    "003_last.sql": "CREATE TABLE last_t (id int);\nINSERT INTO last_t VALUES (3);\n",
}
# The tables each version creates: present if and only if the version is recorded.
TABLES_OF = {"001": ["first_t"], "002": ["slow_t", "slow_after"], "003": ["last_t"]}
SLEEP_LIKE = "DO $$ BEGIN%fault_gate%"


def write_files(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in FILES.items():
        (directory / name).write_text(sql)
    return directory


def close_gate(db) -> None:
    db.sql("CREATE TABLE IF NOT EXISTS fault_gate (hold boolean)")
    db.sql("DELETE FROM fault_gate")
    db.sql("INSERT INTO fault_gate VALUES (true)")


def open_gate(db) -> None:
    db.sql("UPDATE fault_gate SET hold = false")


def recorded(db, table: str = "schema_migrations") -> list[str]:
    exists = db.sql("SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0]
    if not exists:
        return []
    return [v for (v,) in db.sql(f"SELECT version FROM {table} ORDER BY version")]


def assert_all_or_nothing(db, expected_recorded: list[str], locks_free: bool = True) -> None:
    """No history row without its changes, no changes without their row, nothing run twice."""
    versions = recorded(db)
    assert versions == expected_recorded, versions
    tables = set(db.tables())
    for version, names in TABLES_OF.items():
        for name in names:
            assert (name in tables) == (version in versions), (
                f"{name} of {version}: {'present' if name in tables else 'absent'} but {version} is {'recorded' if version in versions else 'not recorded'}"
            )
    for version, table in (("001", "first_t"), ("002", "slow_t"), ("003", "last_t")):
        if version in versions:
            assert db.sql(f"SELECT count(*) FROM {table}") == [(1,)], f"{version} ran more than once"
    # No lock left behind.
    if locks_free:
        assert db.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
