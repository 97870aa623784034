"""Unit tests of module_utils/migrate/planning.py: what a plan applies, adopts, skips or refuses, and the result built from it."""

import pytest
from ansible_collections.st44.db_deploy.plugins.module_utils.migrate.planning import STATUSES, build_diff, new_entry, summarize

from tests.support.migrate_units import history_of, migration, plan, recorded, statuses, versions


@pytest.fixture
def four():
    """001..004, each creating a table; 003 is a no-transaction migration."""
    return [
        migration("001_users.sql", "CREATE TABLE users (id int);"),
        migration("002_orders.sql", "CREATE TABLE orders (id int);"),
        migration("003_index.sql", "-- postgresql_migrate: no-transaction\nCREATE INDEX CONCURRENTLY i ON orders (id);"),
        migration("004_items.sql", "CREATE TABLE items (id int);"),
    ]


def test_empty_history_applies_everything(four):
    result = plan(four)
    assert versions(result["to_apply"]) == ["001", "002", "003", "004"]
    assert set(statuses(result).values()) == {"pending"}
    assert (result["problems"], result["warnings"], result["missing"], result["adopt"], result["accept"]) == ([], [], [], [], [])
    assert [e["file"] for e in result["entries"]] == [m.filename for m in four]
    assert result["entries"][2]["transactional"] is False


def test_recorded_versions_with_same_checksum_are_already_applied(four):
    result = plan(four, history_of(recorded(four[0]), recorded(four[1])))
    assert statuses(result) == {"001": "already_applied", "002": "already_applied", "003": "pending", "004": "pending"}
    assert result["entries"][0]["applied_at"] == "2026-01-01 10:00:00+00"
    assert versions(result["to_apply"]) == ["003", "004"]
    assert result["problems"] == [] and result["adopt"] == []


@pytest.mark.parametrize("checksum", [None, ""])
def test_recorded_version_without_checksum_is_adopted(four, checksum):
    result = plan(four, history_of(recorded(four[0], checksum=checksum), recorded(four[1])))
    entry = result["entries"][0]
    assert (entry["status"], entry["adopted"], entry["changed"]) == ("already_applied", True, False)
    assert versions(result["adopt"]) == ["001"]
    assert versions(result["to_apply"]) == ["003", "004"]
    assert result["problems"] == []


def test_history_version_written_differently_matches_by_number(four):
    row = dict(recorded(four[1]), version="2")
    result = plan(four, history_of(recorded(four[0]), row))
    assert statuses(result)["002"] == "already_applied"
    assert result["missing"] == []


def test_changed_applied_file_is_drift(four):
    result = plan(four, history_of(recorded(four[0]), recorded(four[1], checksum="0123456789abcdef" * 4)))
    entry = result["entries"][1]
    assert entry["drift"] is True
    assert entry["message"] == "file changed since it was applied (recorded checksum 0123456789ab)"
    assert result["problems"] == [
        'applied migrations changed on disk: 002_orders.sql. An applied migration is never run again: restore '
        'the file as it was applied and put the change in a new migration, or, if the edit is deliberate and '
        'harmless, rerun with accept_checksums: ["002"]'
    ]


def test_several_drifted_files_are_named_in_one_problem(four):
    result = plan(four, history_of(recorded(four[0], checksum="a" * 64), recorded(four[1], checksum="b" * 64)))
    assert len(result["problems"]) == 1
    assert "changed on disk: 001_users.sql, 002_orders.sql." in result["problems"][0]
    assert result["problems"][0].endswith('accept_checksums: ["001", "002"]')


@pytest.mark.parametrize("accepted", ["002", "2"])
def test_accept_checksums_accepts_drift(four, accepted):
    result = plan(four, history_of(recorded(four[0]), recorded(four[1], checksum="b" * 64)), accept_checksums=[accepted])
    entry = result["entries"][1]
    assert (entry["status"], entry["drift"], entry["checksum_accepted"]) == ("already_applied", False, True)
    assert versions(result["accept"]) == ["002"]
    assert result["problems"] == [] and result["warnings"] == []
    assert versions(result["to_apply"]) == ["003", "004"]


def test_unused_accept_checksums_is_a_warning(four):
    result = plan(four, history_of(recorded(four[0])), accept_checksums=["001", "004"])
    assert result["problems"] == []
    assert result["warnings"] == ["accept_checksums lists 1, 4, which did not change"]


@pytest.mark.parametrize("option", ["accept_checksums", "retry_incomplete"])
@pytest.mark.parametrize("value", ["latest", "\u0661", "1\u00b2"])
def test_non_numeric_version_lists_are_refused(four, option, value):
    result = plan(four, **{option: ["002", value]})
    assert result["problems"] == [
        '%s holds %r, not a version number: a version is the digits 0-9 of a migration file name, for example "014"' % (option, value)
    ]


def test_pending_version_below_an_applied_one_is_refused(four):
    result = plan(four, history_of(recorded(four[0]), recorded(four[2])))
    assert result["problems"] == [
        "002_orders.sql is pending but version 003 is already applied: applying it out of order could run it "
        "against a newer schema than it was written for. Renumber it above 003, or set allow_out_of_order: "
        "true if it is safe"
    ]
    assert result["entries"][1]["message"] == "out of order: lower than the highest applied version"
    assert "002" not in versions(result["to_apply"])


def test_allow_out_of_order_applies_the_lower_version(four):
    result = plan(four, history_of(recorded(four[0]), recorded(four[2])), allow_out_of_order=True)
    assert result["problems"] == []
    assert versions(result["to_apply"]) == ["002", "004"]


def test_target_version_skips_later_migrations(four):
    result = plan(four, history_of(recorded(four[0])), target_version="002")
    assert statuses(result) == {"001": "already_applied", "002": "pending", "003": "skipped", "004": "skipped"}
    assert result["entries"][3]["message"] == "beyond target_version 002"
    assert versions(result["to_apply"]) == ["002"]
    assert result["problems"] == [] and result["warnings"] == []


def test_target_version_matches_by_number():
    migs = [migration("013_a.sql"), migration("014_b.sql"), migration("015_c.sql")]
    result = plan(migs, target_version="14")
    assert versions(result["to_apply"]) == ["013", "014"]
    assert result["problems"] == []


@pytest.mark.parametrize("target", ["5", "abc"])
def test_unknown_target_version_is_refused_listing_versions(four, target):
    assert plan(four, target_version=target)["problems"] == ["target_version %s does not match any migration file (versions: 001, 002, 003, 004)" % target]


def test_unknown_target_version_without_files():
    assert plan([], target_version="1")["problems"] == ["target_version 1 does not match any migration file (versions: none)"]


def test_target_below_applied_versions_warns_and_applies_nothing(four):
    result = plan(four, history_of(*[recorded(m) for m in four[:3]]), target_version="1")
    assert result["to_apply"] == []
    assert result["problems"] == []
    assert result["warnings"] == ["target_version 1 is below the highest applied version 003; migrations are never rolled back"]


def test_recorded_versions_without_file_are_missing_not_a_problem(four):
    gone = dict(version="000", name="bootstrap", checksum="c" * 64, applied_at=None)
    result = plan(four[1:], history_of(gone, recorded(four[0]), recorded(four[1])))
    assert result["missing"] == ["000", "001"]
    assert result["problems"] == []
    assert result["warnings"] == ["versions recorded in the history table have no file in the migrations directory: 000, 001"]
    assert versions(result["to_apply"]) == ["003", "004"]


INCOMPLETE_003 = {
    3: dict(version="003", started_at="2026-01-02 03:04:05+00", started_by="ci@runner", error='line 2: SQLSTATE 42P01: relation "orders" does not exist')
}


def test_incomplete_no_transaction_version_stops_the_run(four):
    result = plan(four, history_of(recorded(four[0]), recorded(four[1])), INCOMPLETE_003)
    assert result["problems"] == [
        '003_index.sql is a no-transaction migration that an earlier run left incomplete (started '
        '2026-01-02 03:04:05+00 by ci@runner, error: line 2: SQLSTATE 42P01: relation "orders" does not exist). '
        'Some of its statements may have run. Inspect the database (for an interrupted CREATE INDEX '
        'CONCURRENTLY: SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid; drop the invalid index), '
        'then rerun with retry_incomplete: ["003"]'
    ]
    entry = result["entries"][2]
    assert entry["status"] == "pending"
    assert entry["message"] == (
        'left incomplete by an earlier run (started 2026-01-02 03:04:05+00, error: line 2: SQLSTATE 42P01: relation "orders" does not exist)'
    )
    assert "003" not in versions(result["to_apply"])


def test_interrupted_no_transaction_version_says_so(four):
    incomplete = {3: dict(version="003", started_at="2026-01-02 03:04:05+00", started_by=None, error=None)}
    (problem,) = plan(four, history_of(recorded(four[0]), recorded(four[1])), incomplete)["problems"]
    assert "(started 2026-01-02 03:04:05+00 by unknown, the run was interrupted)" in problem


@pytest.mark.parametrize("retry", ["003", "3"])
def test_retry_incomplete_applies_it_again(four, retry):
    result = plan(four, history_of(recorded(four[0]), recorded(four[1])), INCOMPLETE_003, retry_incomplete=[retry])
    assert result["problems"] == [] and result["warnings"] == []
    assert versions(result["to_apply"]) == ["003", "004"]


def test_incomplete_version_with_its_own_history_row_is_still_incomplete(four):
    """A no-transaction file that registers itself (INSERT INTO schema_migrations ...) and then
    stops: its row must not make it count as applied."""
    own_row = dict(recorded(four[2]), checksum=None)  # written by the file: no checksum
    history = history_of(recorded(four[0]), recorded(four[1]), own_row)
    stopped = plan(four, history, INCOMPLETE_003)
    assert [p.split(" is a ")[0] for p in stopped["problems"]] == ["003_index.sql"]
    assert "003" not in versions(stopped["adopt"]) + versions(stopped["to_apply"])
    retried = plan(four, history, INCOMPLETE_003, retry_incomplete=["003"])
    assert retried["problems"] == []
    assert versions(retried["to_apply"]) == ["003", "004"] and versions(retried["adopt"]) == []


def test_unused_retry_incomplete_is_a_warning(four):
    result = plan(four, retry_incomplete=["2"])
    assert result["problems"] == []
    assert result["warnings"] == ["retry_incomplete lists 2, which is not incomplete"]


def test_several_problems_are_reported_together(four):
    result = plan(four, history_of(recorded(four[0], checksum="a" * 64), recorded(four[2])), target_version="9")
    assert len(result["problems"]) == 3
    assert result["problems"][0].startswith("target_version 9 does not match")
    assert result["problems"][1].startswith("002_orders.sql is pending but version 003 is already applied")
    assert result["problems"][2].startswith("applied migrations changed on disk: 001_users.sql.")


def test_summarize_counts_every_status():
    entries = [dict(status=s) for s in ("applied", "applied", "already_applied", "skipped")]
    assert summarize(entries) == dict(applied=2, already_applied=1, would_apply=0, failed=0, skipped=1, pending=0)
    assert summarize([]) == dict((s, 0) for s in STATUSES)


@pytest.mark.parametrize("check_mode, status, label", [(False, "applied", "applied"), (True, "would_apply", "would apply")])
def test_diff_shows_the_sql_of_applied_migrations_only(check_mode, status, label):
    migs = [migration("001_a.sql", "SELECT 1;\n"), migration("002_b.sql", "SELECT 2;\n"), migration("003_c.sql", "SELECT 3;\n")]
    entries = [new_entry(m) for m in migs]
    entries[0]["status"] = "already_applied"
    entries[1]["status"] = status
    entries[2]["status"] = "skipped"
    assert build_diff(entries, dict((m.filename, m) for m in migs), check_mode) == [
        dict(before_header="002_b.sql (not applied)", after_header="002_b.sql (%s)" % label, before="", after="SELECT 2;\n")
    ]
