"""files: atomic writes under the umask, and the owned-folder rules every writer obeys."""

import os
import stat

import pytest

from srhm_datasets.files import MARKER, atomic_write, check_output_folder, mark_owned, read_marker, replace_dir


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
