"""files: atomic writes under the umask, and the owned-folder rules every writer obeys."""

import errno
import json
import multiprocessing
import os
import socket
import stat
import time

import pytest

from srhm_datasets.files import (
    MARKER,
    FolderInUse,
    atomic_write,
    check_output_folder,
    claim_output,
    folder_lock,
    lock_path,
    mark_owned,
    read_marker,
    remove_locks,
    replace_dir,
)

from .processes import ended_pid, lock_held_elsewhere, write_lock


def test_atomic_write_follows_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = atomic_write(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # mkstemp alone gives 0o600


def test_missing_and_empty_folders_are_accepted(tmp_path):
    assert check_output_folder(tmp_path / "new", "run", replace=True) == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    assert check_output_folder(tmp_path / "empty", "run", replace=True) == tmp_path / "empty"


def test_current_folder_and_its_parents_are_refused(tmp_path, monkeypatch):
    here = tmp_path / "a" / "b"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    for path in (".", here, tmp_path / "a", tmp_path):
        with pytest.raises(ValueError, match=r"invalid parameter out=.*current folder or one of its parents"):
            check_output_folder(path, "release", replace=True)


def test_unmarked_folder_with_files_is_refused(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match=r"out=.*non-empty folder that srhm did not write"):
        check_output_folder(tmp_path / "c", "release", replace=True)
    with pytest.raises(ValueError, match="exists and is not a folder"):
        check_output_folder(tmp_path / "c" / "keep.txt", "release", replace=False, parameter="--out")


def test_marked_folder_of_another_kind_is_refused(tmp_path):
    mark_owned(tmp_path / "r", "run", ["results.json"])
    with pytest.raises(ValueError, match="holds a run written by srhm, not a leaderboard"):
        check_output_folder(tmp_path / "r", "leaderboard", replace=False)


def test_foreign_entries_block_replacing_only(tmp_path):
    folder = tmp_path / "board"
    mark_owned(folder, "leaderboard", ["index.md"])
    (folder / "index.md").write_text("x")
    assert check_output_folder(folder, "leaderboard", replace=True) == folder
    (folder / "notes.txt").write_text("mine")
    assert check_output_folder(folder, "leaderboard", replace=False) == folder
    with pytest.raises(ValueError, match=r"entries srhm did not write \(notes.txt\)"):
        check_output_folder(folder, "leaderboard", replace=True)


def test_mark_owned_merges_and_snapshots(tmp_path):
    mark_owned(tmp_path, "learning-curve", ["P10"])
    mark_owned(tmp_path, "learning-curve", ["P20"])
    (tmp_path / "summary.json").write_text("{}")
    mark_owned(tmp_path, "learning-curve")
    assert read_marker(tmp_path)["entries"] == ["P10", "P20", "summary.json"]
    assert MARKER not in read_marker(tmp_path)["entries"]
    with pytest.raises(ValueError, match="kind='mine'"):
        mark_owned(tmp_path, "mine")


def test_replace_dir_swaps_by_renames(tmp_path):
    out, tmp = tmp_path / "out", tmp_path / ".tmp"
    out.mkdir()
    (out / "old").write_text("old")
    mark_owned(out, "release")
    tmp.mkdir()
    (tmp / "new").write_text("new")
    mark_owned(tmp, "release")
    replace_dir(tmp, out)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_files_added_below_a_snapshot_marked_folder_block_replacing(tmp_path):
    """A user's file inside a subfolder srhm wrote (a release's config folder) is foreign too."""
    release = tmp_path / "rel"
    (release / "demo").mkdir(parents=True)
    (release / "demo" / "train.parquet").write_text("x")
    mark_owned(release, "release")
    assert read_marker(release)["entries"] == ["demo", "demo/train.parquet"]
    assert check_output_folder(release, "release", replace=True) == release
    (release / "demo" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"entries srhm did not write \(demo/notes.txt\)"):
        check_output_folder(release, "release", replace=True)


def test_nested_folders_are_checked_against_their_own_markers(tmp_path):
    """A demo folder holds a release and runs, each marked: a foreign file in any of them blocks replacing."""
    demo = tmp_path / "demo"
    mark_owned(demo, "demo", ["release", "runs"])
    mark_owned(demo / "release", "release")
    mark_owned(demo / "runs" / "r1", "run", ["results.json"])
    (demo / "runs" / "r1" / "results.json").write_text("{}")
    assert check_output_folder(demo, "demo", replace=True) == demo
    (demo / "runs" / "r1" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"runs/r1/keep.txt"):
        check_output_folder(demo, "demo", replace=True)
    (demo / "runs" / "r1" / "keep.txt").unlink()
    (demo / "runs" / "notes.md").write_text("mine")  # in a listed folder that has no marker
    with pytest.raises(ValueError, match=r"runs/notes.md"):
        check_output_folder(demo, "demo", replace=True)


# ---- one writer per folder -----------------------------------------------------------------


def test_the_lock_names_its_holder_and_is_gone_after(tmp_path):
    out = tmp_path / "run"
    with folder_lock(out):
        holder = json.loads(lock_path(out).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        assert holder["command"] and holder["started"].endswith("+00:00")
    assert sorted(os.listdir(tmp_path)) == []  # nothing left beside the folder


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "run"
    with lock_held_elsewhere(out) as pid:
        before = lock_path(out).read_bytes()
        with pytest.raises(FolderInUse) as err:
            with claim_output(out, "run", replace=False):
                pytest.fail("the body must not run")
        assert lock_path(out).read_bytes() == before
    message = str(err.value)
    assert "\n" not in message
    assert f"being written by process {pid} on {socket.gethostname()}, started 2026-01-02T03:04:05+00:00" in message
    assert "srhm train --out elsewhere" in message and "wait for it to end" in message
    assert not out.exists()


def test_the_stale_lock_of_an_ended_process_is_recovered(tmp_path):
    out = tmp_path / "run"
    write_lock(out, ended_pid())
    with folder_lock(out):
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    assert not lock_path(out).exists()


def test_a_lock_whose_pid_now_names_a_later_process_is_recovered(tmp_path):
    out = tmp_path / "run"
    with lock_held_elsewhere(out) as pid:
        write_lock(out, pid, start_ticks="1")  # the holder started at tick 1: not the live process with its pid
        with folder_lock(out):
            assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()


def test_a_lock_of_another_host_is_reported_never_broken(tmp_path):
    out = tmp_path / "run"
    path = write_lock(out, ended_pid(), host="node-17.cluster")
    before = path.read_bytes()
    with pytest.raises(FolderInUse, match=r"on node-17.cluster, .*remove the lock file \(a lock of another host"):
        with folder_lock(out):
            pass
    assert path.read_bytes() == before


def _try_lock(out, results):
    try:
        with folder_lock(out):
            results.put("held")
            time.sleep(0.5)
    except FolderInUse:
        results.put("refused")


def test_of_writers_starting_together_exactly_one_holds_the_folder(tmp_path):
    out = tmp_path / "run"
    write_lock(out, ended_pid())  # a stale lock each of them may try to recover
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_try_lock, args=(out, results)) for _ in range(6)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
    found = sorted(results.get(timeout=5) for _ in procs)
    assert found == ["held"] + ["refused"] * 5
    assert not lock_path(out).exists()


def test_a_failed_command_leaves_no_new_folder(tmp_path):
    with pytest.raises(OSError, match="No space left"):
        with claim_output(tmp_path / "a" / "b" / "run", "run", replace=False) as out:
            mark_owned(out, "run", ["results.json"])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert os.listdir(tmp_path) == []


def test_a_failed_command_keeps_what_it_finished_and_what_was_there(tmp_path):
    out = tmp_path / "curve"
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        with claim_output(out, "learning-curve", replace=False):
            mark_owned(out, "learning-curve", ["P10"])
            (out / "P10").mkdir()
            raise KeyboardInterrupt
    assert sorted(os.listdir(out)) == [MARKER, "P10"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KeyboardInterrupt):
        with claim_output(empty, "run", replace=False):
            mark_owned(empty, "run", ["results.json"])
            raise KeyboardInterrupt
    assert empty.is_dir() and os.listdir(empty) == []  # the user's empty folder stays, without our marker


def test_replace_dir_keeps_a_file_that_appeared_after_the_check(tmp_path):
    out, tmp = tmp_path / "board", tmp_path / ".stage"
    mark_owned(out, "leaderboard", ["index.md"])
    (out / "index.md").write_text("old")
    assert check_output_folder(out, "leaderboard", replace=True) == out
    (out / "keep.txt").write_text("mine")  # while the board is rendered
    mark_owned(tmp, "leaderboard", ["index.md"])
    (tmp / "index.md").write_text("new")
    with pytest.raises(ValueError, match=r"did not write \(keep.txt\).*changed since the first check"):
        replace_dir(tmp, out)
    assert (out / "keep.txt").read_text() == "mine" and (out / "index.md").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == [".stage", "board"]


def test_replace_dir_without_replace_refuses_a_folder_that_appeared(tmp_path):
    out, tmp = tmp_path / "rel", tmp_path / ".stage"
    mark_owned(tmp, "release")
    (out / "sub").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="sub appeared in it since the check"):
        replace_dir(tmp, out, replace=False)
    assert os.listdir(out) == ["sub"]


def test_a_symlinked_output_is_written_through(tmp_path):
    scratch = tmp_path / "scratch" / "board"
    scratch.parent.mkdir()
    link = tmp_path / "board"
    link.symlink_to(scratch)
    assert check_output_folder(link, "leaderboard", replace=True) == scratch
    for text in ("one", "two"):
        with claim_output(link, "leaderboard", replace=True) as out:
            tmp = out.parent / ".stage"
            mark_owned(tmp, "leaderboard", ["index.md"])
            (tmp / "index.md").write_text(text)
            replace_dir(tmp, out)
        assert link.is_symlink() and (link / "index.md").read_text() == text
    assert sorted(os.listdir(tmp_path)) == ["board", "scratch"] and os.listdir(scratch.parent) == ["board"]


def test_remove_locks_clears_a_folder_of_ended_holders(tmp_path):
    """What srhm sweep does for a job it runs again: its SLURM attempt ended on another node."""
    curve = tmp_path / "runs" / "job"
    (curve / "P10").mkdir(parents=True)
    locks = [write_lock(curve, 1, host="node-1"), write_lock(curve / "P10", 1, host="node-1")]
    remove_locks(curve)
    assert not any(p.exists() for p in locks) and os.listdir(curve) == ["P10"]
