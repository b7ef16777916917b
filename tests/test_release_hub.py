"""Publish round trip against the in-process fake Hub (no network): tags, revisions, load_rules."""

from __future__ import annotations

import shutil

import datasets
import numpy as np
import pytest
from click.testing import CliRunner

import srhm_datasets as srhm
from srhm_datasets import catalog
from srhm_datasets.cli import main
from srhm_datasets.config import SRHMConfig
from srhm_datasets.files import MARKER
from srhm_datasets.release.build import build_release
from srhm_datasets.release.load import load_split
from srhm_datasets.release.publish import TagExistsError, publish_release

from .release_helpers import SMALL, TINY, rows

REPO = "srhm-org/srhm"
TOKEN = "hf_fake_token_for_tests"
V1 = TINY  # release 1, with EXTRA
V2 = SRHMConfig(L=2, s=2, s0=0, v=3, nc=3, m=3, seed=9)  # same catalog name in release 2, other data
EXTRA = SMALL["m1"]  # only in release 1


def test_publish_round_trip_with_versions(fake_hub, tmp_path, monkeypatch):
    r1 = tmp_path / "r1"
    build_release([V1, EXTRA], r1, progress=False)
    res1 = publish_release(r1, REPO, "v1.0.0")
    assert res1.tag == "v1.0.0" and fake_hub.repos[("datasets", REPO)].tags["v1.0.0"] == res1.commit
    assert (r1 / MARKER).is_file() and MARKER not in fake_hub.repos[("datasets", REPO)].commits[res1.commit]
    old_rules = srhm.load_rules(REPO, "grid_L2_s0-0_v3", revision="v1.0.0")

    monkeypatch.setitem(catalog.CATALOG, "grid_L2_s0-0_v3", V2)  # changed data under the same name
    r2 = tmp_path / "r2"
    build_release([V2], r2, progress=False)
    commits_before = len(fake_hub.repos[("datasets", REPO)].commits)
    res2 = publish_release(r2, REPO, "v1.1.0")
    assert len(fake_hub.repos[("datasets", REPO)].commits) == commits_before + 1  # one commit per release
    assert res2.commit != res1.commit

    for rev, cfg in (("v1.0.0", V1), ("v1.1.0", V2), ("main", V2), (res1.commit, V1)):
        dd = datasets.load_dataset(REPO, "grid_L2_s0-0_v3", revision=rev)
        assert dd["train"].features["label"] == datasets.ClassLabel(names=["0", "1", "2"])
        for split in ("train", "test"):
            got, want = rows(dd[split]), srhm.generate(cfg, split)
            for col in want:
                np.testing.assert_array_equal(got[col], want[col], err_msg=f"{rev} {split} {col}")
    probe = load_split(REPO, "grid_L2_s0-0_v3", "probe", revision="v1.0.0")
    np.testing.assert_array_equal(rows(probe)["label"], srhm.generate(V1, "probe")["label"])

    assert srhm.load_rules(REPO, "grid_L2_s0-0_v3", revision="v1.0.0") == old_rules
    assert old_rules["config"] == V1.name
    new_rules = srhm.load_rules(REPO, "grid_L2_s0-0_v3", revision="v1.1.0")
    assert new_rules["config"] == V2.name and new_rules["rules"] == [t.tolist() for t in srhm.sample_rules(V2)]
    assert new_rules["rules_hash"] != old_rules["rules_hash"]
    # release 2 mirrors its folder: the config only in release 1 is gone from v1.1.0, kept at v1.0.0
    assert srhm.load_rules(REPO, EXTRA.name, revision="v1.0.0")["config"] == EXTRA.name
    with pytest.raises(FileNotFoundError):
        srhm.load_rules(REPO, EXTRA.name, revision="v1.1.0")
    # every repo endpoint the libraries used was served (others, e.g. agent detection, may 404)
    assert not [p for _, p in fake_hub.unhandled if p.startswith((f"/api/datasets/{REPO}", f"/datasets/{REPO}/"))]


def test_publish_refuses_existing_tag_and_bad_arguments(fake_hub, tiny_release, tmp_path):
    out = tiny_release
    publish_release(out, REPO, "v1.0.0")
    repo = fake_hub.repos[("datasets", REPO)]
    state = (dict(repo.tags), dict(repo.branches), len(repo.commits))
    with pytest.raises(TagExistsError, match="v1.0.0"):
        publish_release(out, REPO, "v1.0.0")
    assert (dict(repo.tags), dict(repo.branches), len(repo.commits)) == state  # nothing uploaded, tag not moved
    with pytest.raises(ValueError, match="tag='1.0'"):
        publish_release(out, REPO, "1.0")
    with pytest.raises(ValueError, match="repo='no-slash'"):
        publish_release(out, "no-slash", "v2.0.0")
    with pytest.raises(ValueError, match="not a complete release"):
        publish_release(tmp_path, REPO, "v2.0.0")


def test_cli_publish_uses_token_without_printing_it(fake_hub, tiny_release, tmp_path, monkeypatch):
    out = tmp_path / "r"
    shutil.copytree(tiny_release, out)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    runner = CliRunner()
    res = runner.invoke(main, ["publish", str(out), "--repo", REPO, "--tag", "v1.0.0"])
    assert res.exit_code == 0, res.output
    assert "v1.0.0" in res.output and TOKEN not in res.output
    assert f"Bearer {TOKEN}" in fake_hub.auth_headers  # the token was used for the calls
    res = runner.invoke(main, ["publish", str(out), "--repo", REPO, "--tag", "v1.0.0"])
    assert res.exit_code == 1 and "already exists" in res.output and TOKEN not in res.output
    # a corrupted folder is not uploaded
    (out / "rules" / "grid_L2_s0-0_v3.json").write_text("{}")
    res = runner.invoke(main, ["publish", str(out), "--repo", REPO, "--tag", "v1.2.0"])
    assert res.exit_code == 1 and "verification failed" in res.output
    assert "v1.2.0" not in fake_hub.repos[("datasets", REPO)].tags
