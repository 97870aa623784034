"""db_deploy_release: the release root and its store, made by whichever of several deploys of
one host gets there first (tests/hardening/test_ten_deploys.py once failed on "File exists")."""

import multiprocessing
import os

import pytest

from ansible_collections.st44.db_deploy.plugins.modules.db_deploy_release import Owner


def test_a_directory_another_run_made_is_used_as_it_is(tmp_path):
    root = tmp_path / "releases"
    root.mkdir(mode=0o700)
    Owner(None).make_dir(str(root), parents=True)
    assert root.is_dir() and (root.stat().st_mode & 0o777) == 0o700


def test_a_file_where_the_directory_goes_is_an_error(tmp_path):
    root = tmp_path / "releases"
    root.write_text("not a directory")
    with pytest.raises(FileExistsError):
        Owner(None).make_dir(str(root))


def _make_at_once(path, barrier, failures):
    barrier.wait()
    try:
        Owner(None).make_dir(path, parents=True)
        Owner(None).make_dir(os.path.join(path, ".store"))
    except OSError as e:
        failures.put(repr(e))


def test_runs_that_make_the_same_directories_at_once_all_go_on(tmp_path):
    context = multiprocessing.get_context("fork")
    for round_ in range(10):
        path = str(tmp_path / str(round_) / "releases")
        barrier, failures = context.Barrier(8), context.Queue()
        runs = [context.Process(target=_make_at_once, args=(path, barrier, failures)) for _ in range(8)]
        for run in runs:
            run.start()
        for run in runs:
            run.join(30)
        assert [run.exitcode for run in runs] == [0] * 8
        assert failures.empty(), failures.get()
        assert (os.stat(path).st_mode & 0o777) == 0o750 and os.path.isdir(os.path.join(path, ".store"))
