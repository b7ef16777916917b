"""``srhm verify``: passes on a build, fails (exit 1, named check) on each of several corruptions."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from srhm_datasets.cli import main
from srhm_datasets.generate import generate
from srhm_datasets.release.build import build_release
from srhm_datasets.release.features import from_arrow
from srhm_datasets.release.verify import decode, verify_release
from srhm_datasets.rules import sample_rules

from .release_helpers import SMALL, rewrite

CFG = SMALL["B_small"]  # canonical name, sparsity B
NAME = CFG.name


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "release"
    build_release([CFG, SMALL["grid_L2_s0-0_v3"]], out, progress=False)
    return out


@pytest.fixture
def release(pristine, tmp_path):
    out = tmp_path / "release"
    shutil.copytree(pristine, out)
    return out


def shard(out, split):
    return out / NAME / f"{split}-00000-of-00001.parquet"


def failures(report) -> dict[tuple[str, str], str]:
    """(config, item) -> the problems of each failed check, joined by " | "."""
    return {(c.config, c.item): " | ".join(c.problems) for c in report.failures}


def test_verify_passes_on_a_build(pristine):
    report = verify_release(pristine)
    assert report.ok, report.format()
    items = {(c.config, c.item) for c in report.checks}
    for split in ("rules", "train", "test", "probe", "overlap", "card"):
        assert (NAME, split) in items
    res = CliRunner().invoke(main, ["verify", str(pristine)])
    assert res.exit_code == 0, res.output
    assert "OK: 2 config(s)" in res.output
    res = CliRunner().invoke(main, ["verify", str(pristine), "--config", "grid_L2_s0-0_v3"])
    assert res.exit_code == 0 and NAME not in res.output


@pytest.mark.parametrize("cfg", [SMALL["s3_small"], SMALL["L3_small"], CFG], ids=["s3", "L3", "B"])
def test_independent_decoder_matches_generate(cfg):
    batch = generate(cfg, "train", 0, 100)
    latents, tokens = decode(cfg, sample_rules(cfg), batch["label"], batch["synonyms"], batch["placements"])
    np.testing.assert_array_equal(latents, batch["latents"])
    np.testing.assert_array_equal(tokens, batch["tokens"])


def _flip_token(cols):
    informative = np.flatnonzero(cols["tokens"][3] != CFG.blank)[0]
    cols["tokens"][3, informative] = (cols["tokens"][3, informative] + 1) % CFG.v


def _duplicate_row(cols):
    for c in cols:
        cols[c][5] = cols[c][4]


def _swap_rows(cols):
    for c in cols:
        cols[c][[0, 1]] = cols[c][[1, 0]]


def _bad_label(cols):
    cols["label"][0] = CFG.nc


def _move_blank(cols):
    row = cols["tokens"][7]
    i = np.flatnonzero(row != CFG.blank)[0]
    j = np.flatnonzero(row == CFG.blank)[0]
    row[i], row[j] = row[j], row[i]


def _bad_latent(cols):
    cols["latents"][2, 1] = (cols["latents"][2, 1] + 1) % CFG.v


def _probe_unperturbed(cols):
    cols["synonym_tokens"][:, 0] = cols["tokens"]


CORRUPTIONS = {
    "flipped token": ("train", _flip_token, "train", "do not follow from the rules"),
    "duplicate row": ("test", _duplicate_row, "test", "duplicate samples"),
    "swapped rows": ("train", _swap_rows, "train", "are not row i of split train"),
    "label out of range": ("test", _bad_label, "test", "label outside"),
    "moved feature": ("train", _move_blank, "train", "do not follow from the rules"),
    "wrong latent": ("test", _bad_latent, "test", "do not follow from the rules"),
    "probe not perturbed": ("probe", _probe_unperturbed, "probe", "synonym_tokens[level 1] differs"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_verify_fails_on_corrupted_rows(release, kind):
    split, change, item, message = CORRUPTIONS[kind]
    rewrite(shard(release, split), change)
    report = verify_release(release)
    assert not report.ok
    failed = failures(report)
    assert (NAME, item) in failed, report.format()
    assert message in failed[(NAME, item)], failed
    assert "content hash" in failed[(NAME, item)] or kind == "label out of range"
    assert ("grid_L2_s0-0_v3", item) not in failed  # the other config still passes
    res = CliRunner().invoke(main, ["verify", str(release)])
    assert res.exit_code == 1 and "FAILED" in res.output


def test_verify_fails_on_overlap_between_splits(release):
    train0 = {k: v[0] for k, v in from_arrow(pq.read_table(shard(release, "train"))).items()}

    def copy_train_row(cols):
        for c in cols:
            cols[c][0] = train0[c]

    rewrite(shard(release, "test"), copy_train_row)
    failed = failures(verify_release(release))
    assert "1 samples in both test and train" in failed[(NAME, "overlap")], failed


def test_verify_fails_on_rules_card_and_missing_files(release):
    rules = release / "rules" / f"{NAME}.json"
    doc = json.loads(rules.read_text())
    doc["rules"][1][0][0] = doc["rules"][1][0][1]  # a repeated production tuple
    rules.write_text(json.dumps(doc))
    card = release / "README.md"
    text = card.read_text()
    h = json.loads((release / "rules" / "grid_L2_s0-0_v3.json").read_text())["splits"]["test"]["content_hash"]
    card.write_text(text.replace(h, "sha256:" + "0" * 64).replace("num_examples: 16", "num_examples: 17", 1))
    shard(release, "probe").unlink()
    report = verify_release(release)
    failed = failures(report)
    assert "repeats a production tuple" in failed[(NAME, "rules")]
    assert "rules_hash" in failed[(NAME, "rules")] and "differ from sample_rules" in failed[(NAME, "rules")]
    assert "no shard" in failed[(NAME, "probe")]
    assert "not in the card" in failed[("grid_L2_s0-0_v3", "test")]
    assert re.search(r"split sizes .*17", failed[("grid_L2_s0-0_v3", "card")])
    res = CliRunner().invoke(main, ["verify", str(release), "--config", "nonexistent_config"])
    assert res.exit_code == 1 and "no rules file" in res.output


def test_verify_fails_on_extra_shard(release):
    extra = release / NAME / "train-00001-of-00001.parquet"
    shutil.copy(shard(release, "train"), extra)
    failed = failures(verify_release(release))
    assert "stray file train-00001-of-00001.parquet beside the 1 shard(s)" in failed[(NAME, "train")]
    assert "600 rows in the shards, expected 300" in failed[(NAME, "train")]


def _edit_card(out, old, new, count=1):
    card = out / "README.md"
    text = card.read_text()
    assert old in text, old
    card.write_text(text.replace(old, new, count))


def _edit_rules(out, change):
    path = out / "rules" / f"{NAME}.json"
    doc = json.loads(path.read_text())
    doc = change(doc) or doc
    path.write_text(json.dumps(doc))


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


UNREADABLE = {
    "garbage parquet": (
        lambda out: shard(out, "train").write_bytes(b"garbage"),
        NAME,
        "train",
        "not a readable Parquet file",
    ),
    "truncated parquet": (lambda out: _truncate(shard(out, "test")), NAME, "test", "not a readable Parquet file"),
    "card yaml broken": (
        lambda out: _edit_card(out, "configs:", "configs: [ "),
        "(release)",
        "card",
        "README.md: its YAML header does not parse",
    ),
    "card yaml a list": (
        lambda out: (out / "README.md").write_text("---\n- a\n- b\n---\nbody\n"),
        "(release)",
        "card",
        "not a mapping",
    ),
    "rules splits a list": (
        lambda out: _edit_rules(out, lambda d: d.update(splits=[])),
        NAME,
        "rules",
        "splits is list",
    ),
    "rules split entry a list": (
        lambda out: _edit_rules(out, lambda d: d["splits"].update(train=[])),
        NAME,
        "rules",
        "splits.train is list",
    ),
    "rules parameters a string": (
        lambda out: _edit_rules(out, lambda d: d.update(parameters="x")),
        NAME,
        "rules",
        "parameters is str",
    ),
    "rules a list": (lambda out: _edit_rules(out, lambda d: [d]), NAME, "rules", "not a JSON object"),
    "rules tables ragged": (
        lambda out: _edit_rules(out, lambda d: d["rules"][0].append([1])),
        NAME,
        "rules",
        "rule tables malformed",
    ),
}


@pytest.mark.parametrize("kind", list(UNREADABLE))
def test_verify_reports_unreadable_inputs_without_traceback(release, kind):
    corrupt, config, item, message = UNREADABLE[kind]
    corrupt(release)
    report = verify_release(release)
    failed = failures(report)
    assert message in failed.get((config, item), ""), report.format()
    res = CliRunner().invoke(main, ["verify", str(release)])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    assert "FAIL" in res.output and message in res.output and "Traceback" not in res.output


def test_verify_checks_card_rows_default_license_and_croissant(release):
    doc = json.loads((release / "rules" / f"{NAME}.json").read_text())
    train, test = doc["splits"]["train"]["content_hash"], doc["splits"]["test"]["content_hash"]
    # swap the train and test hashes of the card's table: both still appear in the card
    _edit_card(release, f"| train | 300 | `{train}` |", f"| train | 300 | `{test}` |")
    _edit_card(release, f"| test | 50 | `{test}` |", f"| test | 50 | `{train}` |")
    _edit_card(release, "  default: true\n", "")
    _edit_card(release, "license: cc-by-4.0\n", "")
    croissant = json.loads((release / "croissant.json").read_text())
    croissant["distribution"] = [d for d in croissant["distribution"] if d["@id"] != f"{NAME}/probe"]
    (release / "croissant.json").write_text(json.dumps(croissant))
    report = verify_release(release)
    failed = failures(report)
    assert f"not in the card's row for {NAME} train (it has {test})" in failed[(NAME, "train")]
    assert f"not in the card's row for {NAME} test (it has {train})" in failed[(NAME, "test")]
    assert "no license" in failed[("(release)", "card")]
    assert "default: true on exactly one config, has []" in failed[("(release)", "card")]
    assert f"no file set naming {NAME}/probe-00000-of-00001.parquet" in failed[(NAME, "croissant")]
    assert ("grid_L2_s0-0_v3", "croissant") not in failed
    (release / "croissant.json").unlink()
    failed = failures(verify_release(release))
    assert "croissant.json missing" in failed[("grid_L2_s0-0_v3", "croissant")]


def test_verify_default_config_must_be_demo_when_present(tmp_path):
    out = tmp_path / "release"
    build_release([SMALL["grid_L2_s0-0_v3"], SMALL["demo"]], out, progress=False)
    assert verify_release(out, ["grid_L2_s0-0_v3"]).ok
    text = (out / "README.md").read_text()
    text = text.replace("  default: true\n", "").replace(
        "- config_name: grid_L2_s0-0_v3\n", "- config_name: grid_L2_s0-0_v3\n  default: true\n", 1
    )
    (out / "README.md").write_text(text)
    failed = failures(verify_release(out, ["grid_L2_s0-0_v3"]))
    assert "default: true on 'demo'" in failed[("(release)", "card")]


@pytest.mark.parametrize("name", ["", "../demo", "rules/demo"])
def test_verify_refuses_a_config_option_that_is_not_a_name(tiny_release, name):
    result = CliRunner().invoke(main, ["verify", str(tiny_release), "--config", name])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '--config': {name!r}: must be a config name" in result.output
