"""Release layer reliability: owned folders, interruption, bad input, outside-world failures, shards."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import srhm_datasets as srhm
from srhm_datasets.catalog import CATALOG, release_name
from srhm_datasets.cli import main
from srhm_datasets.config import SRHMConfig
from srhm_datasets.files import MARKER, read_marker
from srhm_datasets.hashing import content_hash
from srhm_datasets.release import build as build_mod
from srhm_datasets.release.build import build_release
from srhm_datasets.release.publish import publish_release
from srhm_datasets.release.verify import verify_release

from . import fakehub
from .processes import alive, children, interruptible, lock_held_elsewhere
from .release_helpers import SMALL, TINY, TINY_NAME

ZERO = TINY  # 49 train rows


# ---- destructive writes --------------------------------------------------------------------------


def test_overwrite_of_the_current_folder_is_refused_and_keeps_its_files(tmp_path, monkeypatch):
    here = tmp_path / "c"
    here.mkdir()
    (here / "keep.txt").write_text("x")
    monkeypatch.chdir(here)
    res = CliRunner().invoke(main, ["build", "demo", "--out", ".", "--overwrite", "--quiet"])
    assert res.exit_code == 2 and "current folder or one of its parents" in res.output
    assert (here / "keep.txt").read_text() == "x" and sorted(os.listdir(here)) == ["keep.txt"]
    assert sorted(os.listdir(tmp_path)) == ["c"]  # no temporary folder next to it either


def test_overwrite_of_a_folder_srhm_did_not_build_is_refused(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    with pytest.raises(ValueError, match=r"invalid parameter out=.*non-empty folder that srhm did not write"):
        build_release([ZERO], out, overwrite=True, progress=False)
    assert sorted(os.listdir(out)) == ["notes.md"]
    assert sorted(os.listdir(tmp_path)) == ["mine"]


def test_overwrite_of_a_release_holding_a_foreign_file_is_refused(tmp_path):
    out = tmp_path / "r"
    build_release([ZERO], out, progress=False)
    (out / "my-analysis.ipynb").write_text("{}")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(ValueError, match=r"out=.*entries srhm did not write \(my-analysis.ipynb\)"):
        build_release([ZERO], out, overwrite=True, progress=False)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_a_release_srhm_built_is_replaced_and_marked(tmp_path):
    out = tmp_path / "r"
    build_release([ZERO], out, progress=False)
    marker = read_marker(out)
    assert marker["kind"] == "release"
    written = {p.relative_to(out).as_posix() for p in out.rglob("*")} - {".srhm-owner.json"}
    assert set(marker["entries"]) == written  # every path, at any depth
    assert {"README.md", "croissant.json", "rules", f"rules/{release_name(ZERO)}.json"} <= written
    with pytest.raises(FileExistsError, match="overwrite"):  # without --overwrite: still an error
        build_release([ZERO], out, progress=False)
    build_release([SMALL["m1"]], out, overwrite=True, progress=False)
    assert sorted(p.name for p in (out / "rules").iterdir()) == [f"{release_name(SMALL['m1'])}.json"]
    assert not (out / release_name(ZERO)).exists() and verify_release(out).ok
    assert sorted(os.listdir(tmp_path)) == ["r"]


def test_an_empty_folder_is_built_into(tmp_path):
    (tmp_path / "r").mkdir()
    build_release([ZERO], tmp_path / "r", progress=False)
    assert (tmp_path / "r" / "README.md").is_file()


def test_an_unmarked_old_release_is_refused_with_a_hint(tmp_path):
    out = tmp_path / "r"
    build_release([ZERO], out, progress=False)
    (out / MARKER).unlink()  # as built by a version that wrote no marker
    with pytest.raises(
        ValueError, match=r"did not write.*releases built before srhm wrote .*rebuild into a new folder"
    ):
        build_release([ZERO], out, overwrite=True, progress=False)
    assert (out / "README.md").is_file()


# ---- interruption --------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_workers_and_removes_the_partial_folder(tmp_path, signum):
    srhm_cli = Path(sys.executable).with_name("srhm")
    proc = subprocess.Popen(
        [str(srhm_cli), "build", "grid_L3_s0-2_v10", "--out", "r", "--workers", "2", "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,  # SIGINT reaches it even when the suite runs as a background job
    )
    try:
        workers: set[int] = set()
        for _ in range(2400):  # until blocks flow from the workers into a shard (the whole build takes minutes)
            workers = children(proc.pid)
            if len(workers) >= 2 and list(tmp_path.glob(".r.partial-*/*/train-00000-*")) and proc.poll() is None:
                break
            time.sleep(0.05)
        assert proc.poll() is None and len(workers) >= 2, "the build did not start its workers"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, err
    assert err.strip().splitlines()[-1] == (
        f"srhm build: interrupted by {signal.Signals(signum).name}; "
        "worker processes ended and the temporary folder removed"
    )
    assert "Traceback" not in err
    for _ in range(200):  # orphans would be reparented: check the recorded pids themselves
        if not any(alive(p) for p in workers):
            break
        time.sleep(0.05)
    assert not [p for p in workers if alive(p)], err
    assert os.listdir(tmp_path) == [], err


def test_a_signal_during_the_final_rename_waits_for_it(tmp_path, monkeypatch):
    """The old release is never left half moved away: the signal is raised once the renames are done."""
    out = tmp_path / "r"
    build_release([ZERO], out, progress=False)
    real = build_mod.replace_dir

    def interrupted_replace(tmp, dest, replace):
        os.kill(os.getpid(), signal.SIGTERM)  # delivered while the renames run
        real(tmp, dest, replace)

    monkeypatch.setattr(build_mod, "replace_dir", interrupted_replace)
    with pytest.raises(build_mod.BuildInterrupted, match="SIGTERM"):
        build_release([SMALL["m1"]], out, overwrite=True, progress=False)
    assert verify_release(out).ok and (out / "rules" / f"{release_name(SMALL['m1'])}.json").is_file()
    assert sorted(os.listdir(tmp_path)) == ["r"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is restored


def test_workers_of_a_killed_build_end_with_it(tmp_path):
    """SIGKILL (the OOM killer, a scheduler's kill -9) cannot be handled: the workers watch their parent."""
    srhm_cli = Path(sys.executable).with_name("srhm")
    proc = subprocess.Popen(
        [str(srhm_cli), "build", "grid_L3_s0-2_v10", "--out", "r", "--workers", "2", "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(2400):  # until blocks flow from the workers into a shard
            workers = children(proc.pid)
            if len(workers) >= 3 and list(tmp_path.glob(".r.partial-*/*/train-00000-*")):
                break
            time.sleep(0.05)
        assert proc.poll() is None and len(workers) >= 3, "the build did not start its workers"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    for _ in range(1200):
        if not any(alive(p) for p in workers):
            break
        time.sleep(0.05)
    left = [p for p in workers if alive(p)]
    for p in left:  # do not leave them to the rest of the suite
        os.kill(p, signal.SIGKILL)
    assert not left


# ---- bad input before any work -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"configs": "demo"}, TypeError, "configs='demo'"),
        ({"configs": ["demo"]}, TypeError, "configs='demo'.*SRHMConfig"),
        ({"configs": ZERO}, TypeError, "configs=SRHMConfig"),
        ({"out": 3}, TypeError, r"out=3: must satisfy a path \(str or os.PathLike\), not type int"),
        ({"workers": 2.0}, TypeError, "workers=2.0"),
        ({"workers": True}, TypeError, "workers=True"),
        ({"overwrite": "yes"}, TypeError, "overwrite='yes'"),
        ({"repo_id": "not a repo"}, ValueError, "repo_id='not a repo': must satisfy a Hub repo id ORG/NAME"),
        ({"repo_id": "no-slash"}, ValueError, "repo_id='no-slash'"),
        ({"repo_id": 7}, TypeError, "repo_id=7"),
        ({"release_version": "v1.0.0"}, ValueError, "release_version='v1.0.0': must satisfy the form X.Y.Z"),
        ({"release_version": "1.0\nfoo"}, ValueError, "release_version='1.0\\\\nfoo'"),
    ],
)
def test_build_arguments_are_checked_before_any_work(tmp_path, monkeypatch, kwargs, exc, message):
    monkeypatch.setattr(build_mod, "make_block", lambda *a, **k: pytest.fail("work started"))
    args = {"configs": [ZERO], "out": tmp_path / "r", "progress": False, **kwargs}
    with pytest.raises(exc, match=message):
        build_release(args.pop("configs"), args.pop("out"), **args)
    assert os.listdir(tmp_path) == []


def test_cli_build_refuses_free_text_for_the_card(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["build", "demo", "--out", str(tmp_path / "r"), "--repo", "not a repo"])
    assert res.exit_code == 2 and "invalid parameter --repo='not a repo'" in res.output
    res = runner.invoke(main, ["build", "demo", "--out", str(tmp_path / "r"), "--release-version", "latest"])
    assert res.exit_code == 2 and "invalid parameter --release-version='latest'" in res.output
    assert os.listdir(tmp_path) == []


def test_build_refuses_more_workers_than_cpus_before_any_work(tmp_path):
    out = tmp_path / "r"
    bound = r"invalid parameter workers=~1.00e30 \(31 digits\): must satisfy 1 <= workers <= \d+ \(the CPU count"
    with pytest.raises(ValueError, match=bound):
        build_release([ZERO], out, workers=10**30, progress=False)
    res = CliRunner().invoke(main, ["build", "demo", "--out", str(out), "--workers", str(10**30)])
    assert res.exit_code == 2 and "invalid parameter --workers=" in res.output, res.output
    assert "Traceback" not in res.output and os.listdir(tmp_path) == []


# ---- the disk ------------------------------------------------------------------------------------


def test_cli_build_out_inside_a_file_is_refused_before_work(tmp_path):
    (tmp_path / "f").write_text("x")
    res = CliRunner().invoke(main, ["build", "demo", "--out", str(tmp_path / "f" / "r"), "--quiet"])
    assert res.exit_code == 2 and "must be a path inside a folder" in res.output
    assert os.listdir(tmp_path) == ["f"]


@pytest.mark.parametrize("where", ["parquet", "rename"])
def test_cli_build_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, where):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "r"))

    if where == "parquet":
        monkeypatch.setattr(build_mod, "to_arrow", full)
    else:
        monkeypatch.setattr(build_mod, "replace_dir", full)
    res = CliRunner().invoke(main, ["build", "grid_L2_s0-0_v3", "--out", str(tmp_path / "r"), "--quiet"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        f"Error: could not write the release (No space left on device: {tmp_path / 'r'}); nothing was written "
        + "and the temporary folder was removed: free space or choose another --out"
    ]
    assert os.listdir(tmp_path) == []


# ---- streaming parallelism -----------------------------------------------------------------------


def _check_shards(cfg, n: int) -> list[tuple[int, int]]:
    """Shards of a train split of n rows: whole row groups, contiguous, even, at most SHARD_BYTES (+ a group) each."""
    shards = build_mod.shard_ranges(cfg, "train", n)
    group = build_mod.row_group_rows(cfg, "train", n)
    assert group <= min(
        build_mod.MAX_GROUP_ROWS, max(1024, build_mod.ROW_GROUP_BYTES // build_mod.row_bytes(cfg, "train"))
    )
    groups = -(-n // group)
    assert min(groups, 16) <= len(shards) <= groups
    assert [a for a, _ in shards[1:]] == [b for _, b in shards[:-1]] and shards[0][0] == 0 and shards[-1][1] == n
    assert all(a % group == 0 for a, _ in shards)
    sizes = [b - a for a, b in shards]
    assert max(sizes) - min(sizes) <= group  # even: one row group apart at most
    assert max(sizes) * build_mod.row_bytes(cfg, "train") <= build_mod.SHARD_BYTES + group * build_mod.row_bytes(
        cfg, "train"
    )
    return shards


def test_train_shards_at_least_sixteen_from_sixteen_thousand_rows():
    counts = {}
    for name, cfg in CATALOG.items():
        n = cfg.split_sizes()["train"]
        counts[name] = len(_check_shards(cfg, n))
        if n >= 16 * 1024:
            assert counts[name] >= 16, name
        else:  # one shard per row group of 1024 rows
            assert counts[name] == -(-n // 1024), name
    assert counts["fig1"] == 16  # 16 row groups of 65,536 rows, one file each
    assert counts["demo"] == 13  # 12,708 rows: 13 row groups of 1,024 rows
    assert counts["grid_L2_s0-1_v10"] == 16  # 619,000 rows (5 shards when row groups were 131,072 rows)
    assert sorted(c for c in counts.values() if c >= 16) == [16] * 115 + [19]  # 19: the largest, d = 9261


def test_large_train_gets_shards_by_bytes(monkeypatch):
    cfg = CATALOG["fig1"]
    n = cfg.split_sizes()["train"]
    group_bytes = build_mod.row_group_rows(cfg, "train", n) * build_mod.row_bytes(cfg, "train")
    monkeypatch.setattr(build_mod, "SHARD_BYTES", 2 * group_bytes)
    assert len(_check_shards(cfg, 40 * build_mod.row_group_rows(cfg, "train", n))) == 20  # more than 16


def test_streaming_load_has_a_shard_per_worker(tmp_path, monkeypatch):
    cfg = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, seed=7, n_test=50, n_probe=10, n_train=4000)
    monkeypatch.setattr(build_mod, "MIN_GROUP_ROWS", 16)
    monkeypatch.setattr(build_mod, "ROW_GROUP_BYTES", 200 * build_mod.row_bytes(cfg, "train"))  # 20 row groups
    build_release([cfg], tmp_path / "r", progress=False)
    files = sorted((tmp_path / "r" / cfg.name).glob("train-*.parquet"))
    assert len(files) == 16
    assert sum(pq.ParquetFile(f).metadata.num_row_groups for f in files) == 20
    stream = datasets.load_dataset(str(tmp_path / "r"), cfg.name, split="train", streaming=True)
    assert stream.num_shards == 16
    doc = srhm.load_rules(str(tmp_path / "r"), cfg.name)
    assert doc["splits"]["train"]["content_hash"] == content_hash(srhm.generate(cfg, "train"))
    assert verify_release(tmp_path / "r").ok


# ---- the network, the token, damaged files -------------------------------------------------------

SECRET = "hf_secret_token_never_printed"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_publish_without_network_is_one_line_naming_the_step(tiny_release, tmp_path):
    env = {
        **os.environ,
        "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
        "HF_TOKEN": SECRET,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_ETAG_TIMEOUT": "2",
    }
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("srhm")),
            "publish",
            str(tiny_release),
            "--repo",
            "org/srhm",
            "--tag",
            "v1.0.0",
            "--no-verify",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: Hub step 'create_repo' for org/srhm failed (")
    assert lines[0].endswith(f"); check the network connection and HF_ENDPOINT ({env['HF_ENDPOINT']})")
    assert SECRET not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr


def _no_token(monkeypatch, tmp_path):
    import huggingface_hub.constants as hconst

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(hconst, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(hconst, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-stored-tokens"))


def test_cli_publish_checks_token_and_arguments_before_verify(tiny_release, tmp_path, monkeypatch):
    from srhm_datasets.release import verify as verify_mod

    monkeypatch.setattr(verify_mod, "verify_release", lambda *a, **k: pytest.fail("verified first"))
    _no_token(monkeypatch, tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["publish", str(tiny_release), "--repo", "org/srhm", "--tag", "v1.0.0"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        "Error: no Hugging Face token: run `hf auth login` or set HF_TOKEN to a token with write access to the "
        + "repo; nothing was uploaded"
    ]
    monkeypatch.setenv("HF_TOKEN", SECRET)
    for args, message in (
        (["--repo", "not a repo", "--tag", "v1.0.0"], "invalid parameter --repo='not a repo'"),
        (["--repo", "org/srhm", "--tag", "1.0"], "invalid parameter --tag='1.0'"),
    ):
        res = runner.invoke(main, ["publish", str(tiny_release), *args])
        assert res.exit_code == 2 and message in res.output and SECRET not in res.output


def test_publish_hub_error_names_the_step_and_never_the_token(tiny_release, monkeypatch):
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    from srhm_datasets.release.publish import HubError, publish_release

    url = "https://hub.example/api/repos/create"
    response = httpx2.Response(401, request=httpx2.Request("POST", url))

    class Api:
        token = SECRET
        endpoint = "https://hub.example"

        def create_repo(self, *a, **k):
            raise HfHubHTTPError(f"401 Client Error: Unauthorized for url {url}", response=response)

    with pytest.raises(
        HubError,
        match=r"Hub step 'create_repo' for org/srhm failed \(HfHubHTTPError: 401 .*\); "
        r"check that the token has write access to org/srhm",
    ) as info:
        publish_release(tiny_release, "org/srhm", "v1.0.0", api=Api())
    assert SECRET not in str(info.value)


def test_cli_verify_reports_damaged_files_one_line_each(tmp_path):
    out = tmp_path / "r"
    build_release([ZERO, SMALL["m1"]], out, progress=False)
    shard = next((out / release_name(ZERO)).glob("train-*.parquet"))
    shard.write_bytes(shard.read_bytes()[:100])
    (out / "rules" / f"{release_name(SMALL['m1'])}.json").write_text("{oops")
    res = CliRunner().invoke(main, ["verify", str(out)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    problems = [line.strip() for line in res.output.splitlines() if line.strip().startswith("- ")]
    assert problems[0].startswith("- unreadable: Expecting property name")
    assert problems[1].startswith(f"- {shard.name}: not a readable Parquet file (ArrowInvalid: ")
    assert res.output.strip().splitlines()[-1].startswith("FAILED: 2 config(s)")


# ---- train and evaluate with the network lost ----------------------------------------------------

REPO = "srhm-org/srhm"


def _one_error_line(res) -> str:
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


def test_evaluate_without_network_is_one_line_and_exit_1(fake_hub, tiny_run, monkeypatch, tmp_path):
    shutil.copytree(tiny_run, tmp_path / "run")
    fakehub.cut_off(monkeypatch, fake_hub)
    line = _one_error_line(CliRunner().invoke(main, ["evaluate", str(tmp_path / "run"), "--data", REPO]))
    assert f"could not read the probe split of config demo_probe of dataset repo {REPO} at revision main" in line
    assert "check the network connection and HF_ENDPOINT" in line
    assert "evaluation" not in json.loads((tmp_path / "run" / "results.json").read_text())


def test_train_without_network_names_the_rules_file_it_tried(fake_hub, tiny_release, monkeypatch, tmp_path):
    publish_release(tiny_release, REPO, "v1.0.0")
    for split in ("train", "test"):  # the rows are cached, the rules file is not (publish cached it: removed)
        datasets.load_dataset(REPO, TINY_NAME, split=split)
    shutil.rmtree(tmp_path / "hf_home" / "hub")
    fakehub.cut_off(monkeypatch, fake_hub)
    args = ["train", "--config", TINY_NAME, "--data", REPO, "--P", "10", "--width", "4", "--max-steps", "1"]
    res = CliRunner().invoke(main, [*args, "--no-progress", "--out", str(tmp_path / "run")])
    line = _one_error_line(res)
    assert f"could not read rules/{TINY_NAME}.json of dataset repo {REPO} at revision main from the Hub" in line
    assert "A_L2" not in line
    assert not (tmp_path / "run").exists()


# ---- wrong types at the edge ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: verify_release(3), "folder=3"),
        (lambda: verify_release(".", "demo"), "configs='demo'"),
        (lambda: verify_release(".", [1]), "configs=1"),
        (lambda: srhm.load_rules(None, "demo"), "repo_or_dir=None"),
        (lambda: srhm.load_rules(".", 3), "config_name=3"),
        (lambda: srhm.load_rules("org/srhm", "demo", revision=1), "revision=1"),
    ],
)
def test_wrong_types_name_the_parameter(call, message):
    with pytest.raises(TypeError, match=message):
        call()


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"folder": 1}, TypeError, "folder=1"),
        ({"repo_id": None}, TypeError, "repo=None"),
        ({"repo_id": "a/b/c"}, ValueError, "repo='a/b/c'"),
        ({"tag": 1}, TypeError, "tag=1"),
        ({"private": "no"}, TypeError, "private='no'"),
    ],
)
def test_publish_arguments_name_the_parameter(tiny_release, kwargs, exc, message):
    from srhm_datasets.release.publish import publish_release

    class Api:  # any call to it would fail the test
        token = SECRET
        endpoint = "https://hub.example"

    args = {"folder": tiny_release, "repo_id": "org/srhm", "tag": "v1.0.0", **kwargs}
    with pytest.raises(exc, match=message):
        publish_release(args.pop("folder"), args.pop("repo_id"), args.pop("tag"), api=Api(), **args)


def test_overwrite_refuses_a_file_added_inside_a_config_folder(tmp_path):
    """The new user's case: rel/demo/notes.txt was deleted by `srhm build demo --out rel --overwrite`."""
    out = tmp_path / "r"
    build_release([ZERO], out, progress=False)
    notes = out / release_name(ZERO) / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(ValueError, match=rf"did not write \({release_name(ZERO)}/notes.txt\)"):
        build_release([ZERO], out, overwrite=True, progress=False)
    assert notes.read_text() == "mine"


# ---- one writer per folder; nothing deleted that appeared since the check ------------------------


def test_build_is_refused_while_another_process_writes_out(tmp_path):
    out = tmp_path / "r"
    with lock_held_elsewhere(out) as pid:
        res = CliRunner().invoke(main, ["build", release_name(ZERO), "--out", str(out), "--quiet"])
    assert res.exit_code == 1, res.output
    assert len(res.output.strip().splitlines()) == 1 and f"being written by process {pid} on " in res.output
    assert os.listdir(tmp_path) == []


def _user_file_while_building(monkeypatch, out):
    """``keep.txt`` created in ``out`` while the build runs (after the first check, before the rename)."""
    real = build_mod.seal

    def seal_and_user(*args):
        out.mkdir(exist_ok=True)
        (out / "keep.txt").write_text("mine")
        return real(*args)

    monkeypatch.setattr(build_mod, "seal", seal_and_user)


@pytest.mark.parametrize("old", [False, True])
def test_build_keeps_a_file_created_in_out_while_it_ran(tmp_path, monkeypatch, old):
    out = tmp_path / "r"
    if old:
        build_release([ZERO], out, progress=False)
    _user_file_while_building(monkeypatch, out)
    args = ["build", release_name(ZERO), "--out", str(out), "--quiet"] + (["--overwrite"] if old else [])
    res = CliRunner().invoke(main, args)
    assert res.exit_code != 0 and "keep.txt" in res.output, res.output
    assert (out / "keep.txt").read_text() == "mine"
    assert not old or verify_release(out).ok  # the old release untouched
    assert sorted(os.listdir(tmp_path)) == ["r"]


@pytest.mark.parametrize("target", ["missing", "empty", "release"])
def test_build_writes_through_a_symlinked_out_and_keeps_the_link(tmp_path, target):
    scratch = tmp_path / "scratch" / "r"
    scratch.parent.mkdir()
    if target == "empty":
        scratch.mkdir()
    elif target == "release":
        build_release([ZERO], scratch, progress=False)
    link = tmp_path / "r"
    link.symlink_to(scratch)
    build_release([SMALL["m1"]], link, overwrite=target == "release", progress=False)
    assert link.is_symlink() and os.readlink(link) == str(scratch)
    assert verify_release(scratch).ok and (scratch / "rules" / f"{release_name(SMALL['m1'])}.json").is_file()
    assert sorted(os.listdir(tmp_path)) == ["r", "scratch"] and os.listdir(scratch.parent) == ["r"]


@pytest.mark.parametrize("name", ["-r", "a release", "données ✓"])
def test_build_into_unusual_names(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["build", release_name(ZERO), f"--out={name}", "--quiet"])
    assert res.exit_code == 0, res.output
    assert verify_release(tmp_path / name).ok and os.listdir(tmp_path) == [name]
