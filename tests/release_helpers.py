"""Shared helpers for the release tests: small configs, a split's rows, Parquet rewriting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from srhm_datasets.config import SRHMConfig
from srhm_datasets.release.features import from_arrow, to_arrow

#: Small configs covering: catalog names, canonical names, sparsity B, s = 3, uint16 tokens,
#: m = 1 (synonym probe undefined), K = 1 (diffeo probe undefined), L = 3.
SMALL = {
    "demo": SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, sparsity="A", seed=0),  # = CATALOG["demo"]
    "grid_L2_s0-0_v3": SRHMConfig(L=2, s=2, s0=0, v=3, nc=3, m=3, sparsity="A", seed=2),  # K = 1
    "B_small": SRHMConfig(L=2, s=2, s0=1, v=3, nc=3, m=3, sparsity="B", seed=5, n_test=50, n_probe=20, n_train=300),
    "s3_small": SRHMConfig(L=2, s=3, s0=1, v=3, nc=3, m=9, seed=4, n_test=40, n_probe=10, n_train=200),
    "L3_small": SRHMConfig(L=3, s=2, s0=1, v=4, nc=2, m=3, seed=3, n_test=30, n_probe=10, n_train=250),
    "wide_v": SRHMConfig(L=1, s=2, s0=1, v=256, nc=2, m=2, seed=1),  # uint16 tokens, P_max = 16
    "m1": SRHMConfig(L=2, s=2, s0=1, v=3, nc=2, m=1, seed=0),  # synonym probe undefined
}

#: The config of the ``tiny_release`` fixture (its name in the release): a catalog config with 49 train,
#: 16 test and 16 probe rows.
TINY_NAME = "grid_L2_s0-0_v3"
TINY = SMALL[TINY_NAME]


def rows(ds) -> dict[str, np.ndarray]:
    """Every column of a ``datasets.Dataset`` as a numpy array [n, ...]."""
    return {k: np.asarray(v) for k, v in ds.with_format("numpy")[:].items()}


def rewrite(path: Path, change) -> None:
    """Rewrite a Parquet shard after ``change(columns)`` edits its numpy columns in place."""
    table = pq.read_table(path)
    cols = {k: v.copy() for k, v in from_arrow(table).items()}
    change(cols)
    split = "probe" if "synonym_tokens" in cols else "train"
    cfg = _cfg_of(path)
    pq.write_table(to_arrow(cfg, cols, split), path)


def _cfg_of(path: Path) -> SRHMConfig:
    root = path.parent.parent
    doc = json.loads((root / "rules" / f"{path.parent.name}.json").read_text())
    return SRHMConfig.from_name(doc["config"])


def write_rules(root: Path, cfg: SRHMConfig, name: str, splits: dict[str, dict]) -> None:
    """``rules/<name>.json`` of a hand-written test release (format.md §8.4): the config's rules document
    with, per split, the row count and content hash of its columns (what ``load_split`` checks the
    loaded rows against)."""
    from srhm_datasets.hashing import content_hash
    from srhm_datasets.release.rules_file import dumps, rules_document

    counts = {
        split: {"num_rows": len(columns["label"]), "content_hash": content_hash(columns)}
        for split, columns in splits.items()
    }
    (root / "rules").mkdir(parents=True, exist_ok=True)
    (root / "rules" / f"{name}.json").write_text(dumps(rules_document(cfg, counts)))
