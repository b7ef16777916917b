"""``srhm build --executor slurm``: one SLURM job per config on a real single-node cluster (``slurm_cluster``,
skipped with the reason where it cannot start), published only when every config is built, byte for byte the
folder a local ``srhm build`` writes; a cancelled job is rebuilt by the next call; nothing half-written is read
as done; bad arguments are refused before anything is written."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main
from srhm_datasets.executors import read_queue
from srhm_datasets.release.jobs import (
    DONE,
    PLAN,
    RELEASE,
    build_folder,
    build_on_slurm,
    build_one,
    publish_built,
    read_done,
)

from .release_helpers import rewrite
from .slurm_cluster import slurm_cluster  # noqa: F401 (the fixture)

CONFIGS = [
    "A_L2_s2_s0-1_v4_nc4_m4_seed0_test50_probe10_train200",
    "A_L2_s2_s0-1_v3_nc3_m3_seed1_test40_probe10_train150",
    "B_L2_s2_s0-1_v3_nc3_m3_seed2_test30_probe10_train120",
]


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones included) -> sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def srhm(*args: str):
    return CliRunner().invoke(main, list(args))


def _wait_gone(slurm_ids: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while set(slurm_ids) & set(read_queue()):
        assert time.monotonic() < deadline, f"SLURM jobs {slurm_ids} still queued: {read_queue()}"
        time.sleep(0.2)


def test_slurm_build_equals_local_and_a_cancelled_job_is_rebuilt(slurm_cluster, tmp_path):  # noqa: F811
    local = srhm("build", *CONFIGS, "--out", str(tmp_path / "local"), "--executor", "local", "--quiet")
    assert local.exit_code == 0, local.output
    out = tmp_path / "release"
    cfgs = [get_config(c) for c in CONFIGS]

    # held at submission, so that one job is surely cancelled before it runs
    report = build_on_slurm(cfgs, out, options={"sbatch": {"hold": True}}, progress=False)
    assert report.submitted == CONFIGS and len(report.slurm_ids) == 3 and report.published is None
    assert all(s.live for s in report.after) and not out.exists()
    victim = report.slurm_ids[1]
    assert slurm_cluster.run("scancel", victim).returncode == 0
    assert slurm_cluster.run("scontrol", "release", victim.split("_")[0]).returncode == 0
    _wait_gone(report.slurm_ids)

    status = srhm("build", *CONFIGS, "--out", str(out), "--executor", "slurm", "--quiet")  # resubmits the victim
    assert status.exit_code == 0, status.output
    assert f"rebuild {CONFIGS[1]}: SLURM job {victim} ended before the config was built" in status.output
    assert "submitted 1 job(s) to SLURM" in status.output and "not published yet" in status.output
    again = srhm("build", *CONFIGS, "--out", str(out), "--executor", "slurm", "--wait", "--poll", "0.2", "--quiet")
    assert again.exit_code == 0, again.output
    assert "submitted" not in again.output and "3 done, 0 running, 0 failed, 0 pending" in again.output
    assert f"wrote {out}" in again.output and not build_folder(out).exists()

    assert tree(out) == tree(tmp_path / "local")  # shards, rules, card, croissant.json, owner marker
    verified = srhm("verify", str(out))
    assert verified.exit_code == 0 and f"OK: {len(CONFIGS)} config(s)" in verified.output
    refused = srhm("build", *CONFIGS, "--out", str(out), "--executor", "slurm")
    assert refused.exit_code == 2 and "already exists" in refused.output  # as a local build: --overwrite


def test_a_config_is_done_only_when_complete(tmp_path):
    folder = tmp_path / ".release.jobs"
    cfg, other = get_config(CONFIGS[0]), get_config(CONFIGS[1])
    assert build_one(str(folder), CONFIGS[0]) == CONFIGS[0]
    built = read_done(folder, cfg)
    assert built is not None and built.rules["config"] == CONFIGS[0] and set(built.splits) == {"train", "test", "probe"}
    assert read_done(folder, other) is None  # never built
    shard = folder / RELEASE / built.splits["train"].files[0]
    data = shard.read_bytes()
    shard.write_bytes(data[:-10])  # a shard cut short
    assert read_done(folder, cfg) is None
    shard.write_bytes(data)
    assert read_done(folder, cfg) is not None
    rules = folder / RELEASE / "rules" / f"{CONFIGS[0]}.json"
    rules.write_text(rules.read_text()[:-20])  # a rules file cut short
    assert read_done(folder, cfg) is None
    rules.unlink()  # no rules file
    assert read_done(folder, cfg) is None
    build_one(str(folder), CONFIGS[0])  # an attempt again starts from nothing
    record = folder / DONE / f"{CONFIGS[0]}.json"
    doc = json.loads(record.read_text())
    record.write_text(json.dumps({**doc, "config": other.name}))  # the record of another config
    assert read_done(folder, cfg) is None


def test_a_config_failing_verification_is_not_published_and_is_rebuilt(tmp_path):
    folder, out, cfg = tmp_path / ".release.jobs", tmp_path / "release", get_config(CONFIGS[0])
    build_one(str(folder), CONFIGS[0])
    shard = folder / RELEASE / read_done(folder, cfg).splits["test"].files[0]
    rewrite(shard, lambda cols: cols["label"].__setitem__(0, (cols["label"][0] + 1) % cfg.nc))  # a wrong row
    record = folder / DONE / f"{CONFIGS[0]}.json"
    doc = json.loads(record.read_text())
    doc["splits"]["test"]["sizes"] = [shard.stat().st_size]  # complete by its record, wrong by its content
    record.write_text(json.dumps(doc))
    assert read_done(folder, cfg) is not None
    with pytest.raises(RuntimeError, match=f"failed verification; nothing published; rerun to rebuild {CONFIGS[0]}"):
        publish_built(folder, [cfg], out, False, None, None)
    assert not out.exists() and read_done(folder, cfg) is None  # the next call builds it again


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"options": {"time_min": 0}}, "invalid parameter time_min=0: must satisfy an int >= 1"),
        ({"options": {"partion": "gpu"}}, "invalid parameter option='partion'"),
        ({"options": {"sbatch": "qos=high"}}, "invalid parameter sbatch='qos=high'"),
        ({"release_version": "1.0"}, "release_version"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    out = tmp_path / "release"
    with pytest.raises(ValueError, match="invalid parameter") as err:
        build_on_slurm([get_config(CONFIGS[0])], out, **kwargs)
    assert message in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_build_of_other_configs_is_refused(tmp_path):
    out = tmp_path / "release"
    folder = build_folder(out)
    folder.mkdir()
    (folder / PLAN).write_text(json.dumps({"configs": [CONFIGS[1]]}))
    before = tree(tmp_path)
    with pytest.raises(ValueError, match=f"a build of other configs is under way in .*{CONFIGS[1]}"):
        build_on_slurm([get_config(CONFIGS[0])], out)
    (folder / PLAN).unlink()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not srhm's"):
        build_on_slurm([get_config(CONFIGS[0])], out)
    assert tree(tmp_path) == {
        **{k: v for k, v in before.items() if not k.endswith(PLAN)},
        ".release.jobs/notes.txt": hashlib.sha256(b"mine").hexdigest(),
    }


def test_cli_options_go_with_their_executor(tmp_path):
    out = str(tmp_path / "r")
    for args, message in (
        (["--wait"], "--wait go(es) with --executor slurm"),
        (["--partition", "gpu"], "--partition go(es) with --executor slurm"),
        (["--executor", "slurm", "--workers", "2"], "--workers goes with --executor local"),
    ):
        result = srhm("build", CONFIGS[0], "--out", out, *args)
        assert result.exit_code == 2 and message in result.output
    assert list(tmp_path.iterdir()) == []
