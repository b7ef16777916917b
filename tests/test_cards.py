"""The committed release manifest ``cards/v1.0.0`` (format.md §8.10) against the generator of today.

Rebuilding the small catalog configs must give exactly the committed rules files and content
hashes; the card's YAML header must parse with ``huggingface_hub``'s card parser and name every
config of the manifest; every rules file must name its catalog config.
"""

import json
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard

from srhm_datasets.catalog import CATALOG, get_config, release_name
from srhm_datasets.release.build import build_release
from srhm_datasets.release.verify import verify_release

MANIFEST = Path(__file__).resolve().parents[1] / "cards" / "v1.0.0"
SMALL = ["demo", "grid_L2_s0-0_v3", "grid_L2_s0-0_v4", "grid_L2_s0-0_v5", "grid_L2_s0-1_v3"]


def test_manifest_holds_every_catalog_config():
    names = sorted(p.stem for p in (MANIFEST / "rules").glob("*.json"))
    assert names == sorted(release_name(get_config(n)) for n in CATALOG)
    for path in (MANIFEST / "rules").glob("*.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["release_name"] == path.stem
        assert doc["config"] == get_config(path.stem).name


def test_rebuilt_small_configs_match_the_manifest(tmp_path):
    out = tmp_path / "rebuilt"
    build_release([get_config(n) for n in SMALL], out, progress=False, release_version="1.0.0")
    report = verify_release(out, configs=SMALL, manifest=MANIFEST)
    assert report.ok, report.format()
    assert sum(c.item == "manifest" for c in report.checks) == len(SMALL)


@pytest.mark.parametrize("name", ["README.md"])
def test_card_parses_with_huggingface_hub(name):
    card = DatasetCard.load(MANIFEST / name)
    configs = {c["config_name"] for c in card.data.to_dict()["configs"]}
    rules = {p.stem for p in (MANIFEST / "rules").glob("*.json")}
    assert rules <= configs  # each config, plus its <config>_probe
    assert card.data.to_dict()["license"]
    assert "| `demo` |" in card.text
