"""A release against its manifest (format.md §8.10): rules files and the card's hash table must be the manifest's."""

import json
import shutil

import pytest
from click.testing import CliRunner

from srhm_datasets.cli import main
from srhm_datasets.release.build import build_release
from srhm_datasets.release.verify import verify_release
from tests.release_helpers import SMALL

CONFIGS = [SMALL["demo"], SMALL["B_small"]]


def manifest_of(release, to):
    """What a repository commits as a release's manifest: card, croissant, rules."""
    to.mkdir()
    for name in ("README.md", "croissant.json"):
        shutil.copy(release / name, to / name)
    shutil.copytree(release / "rules", to / "rules")
    return to


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("manifest")
    release = root / "release"
    build_release(CONFIGS, release, progress=False)
    return release, manifest_of(release, root / "manifest")


def failed(report):
    return {(c.config, c.item): c.problems for c in report.failures}


def test_a_build_matches_its_manifest(built):
    release, manifest = built
    report = verify_release(release, manifest=manifest)
    assert report.ok, report.format()
    assert sum(c.item == "manifest" for c in report.checks) == len(CONFIGS) + 1


def test_a_release_of_other_content_is_refused(built, tmp_path):
    """A release that verifies on its own but whose content hash is not the manifest's."""
    release, manifest = built
    other = manifest_of(release, tmp_path / "other")
    path = other / "rules" / "demo.json"
    doc = json.loads(path.read_text())
    doc["splits"]["train"]["content_hash"] = "sha256:" + "0" * 64
    path.write_text(json.dumps(doc))
    assert verify_release(release).ok
    report = verify_release(release, manifest=other)
    problems = failed(report)[("demo", "manifest")]
    assert problems == [
        f"split train: {json.loads((release / 'rules' / 'demo.json').read_text())['splits']['train']} "
        f"!= manifest {doc['splits']['train']}"
    ]
    assert set(failed(report)) == {("demo", "manifest")}


def test_missing_and_extra_configs_and_card_rows(built, tmp_path):
    release, manifest = built
    partial = tmp_path / "partial"
    build_release([CONFIGS[0]], partial, progress=False)
    problems = failed(verify_release(partial, manifest=manifest))
    assert any(f"the manifest has {CONFIGS[1].name}" in p for p in problems[(CONFIGS[1].name, "manifest")])
    assert any("is missing" in p for p in problems[("(release)", "manifest")])
    # a subset checked on purpose: only the configs named
    assert verify_release(partial, configs=["demo"], manifest=manifest).ok
    smaller = manifest_of(partial, tmp_path / "smaller")
    problems = failed(verify_release(release, manifest=smaller))
    assert any("is not in the manifest" in p for p in problems[("(release)", "manifest")])


def test_cli_manifest_option(built, tmp_path):
    release, manifest = built
    ok = CliRunner().invoke(main, ["verify", str(release), "--manifest", str(manifest)])
    assert ok.exit_code == 0, ok.output
    assert "manifest" in ok.output
    bad = CliRunner().invoke(main, ["verify", str(release), "--manifest", str(tmp_path)])
    assert bad.exit_code == 1
    assert "is not a release manifest" in bad.output


def test_empty_config_name_is_refused_before_any_check(built):
    release, _ = built
    with pytest.raises(ValueError, match=r"invalid parameter configs='': must satisfy non-empty config names"):
        verify_release(release, configs=[""])
