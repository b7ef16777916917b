"""The probe split's extra columns (format.md §6.3): what they hold and how they are made.

A release's ``probe`` split carries, beside the generator's columns, ``synonym_tokens``
and ``diffeo_tokens`` [n, L, d]: index ``l-1`` is the forced perturbation of the row at
level ``l`` (``perturb(..., force=PROBE_FORCE, key=PROBE_KEY)``), or the unperturbed
tokens where that change is impossible (``probe_defined``). The probe split lives in
its own Hugging Face config, ``<config>`` + ``PROBE_SUFFIX`` (format.md §8.2).

The release builder, the verifier, the loaders and the evaluation share these facts;
this module needs numpy only (no pyarrow, no torch).
"""

from __future__ import annotations

import numpy as np

from .config import SRHMConfig
from .generate import COLUMNS, generate
from .perturb import forced_change_possible, perturb

#: The probe split's extra columns, in Parquet order.
PROBE_COLUMNS = ("synonym_tokens", "diffeo_tokens")
#: Perturbation kind of each probe column.
PROBE_KINDS = {"synonym_tokens": "synonym", "diffeo_tokens": "diffeo"}
#: Perturbation parameters of the probe columns.
PROBE_FORCE, PROBE_KEY = True, 0
#: Suffix of the Hugging Face config that holds a config's probe split.
PROBE_SUFFIX = "_probe"


def split_columns(split: str) -> tuple[str, ...]:
    """Column names of a split, in Parquet order (format.md §4.1, §6.3)."""
    return COLUMNS + (PROBE_COLUMNS if split == "probe" else ())


def probe_defined(cfg: SRHMConfig) -> dict[str, bool]:
    """Per probe column, whether its forced change is possible (``forced_change_possible``)."""
    possible = forced_change_possible(cfg)
    return {column: possible[kind] for column, kind in PROBE_KINDS.items()}


def probe_document(cfg: SRHMConfig) -> dict:
    """How the probe columns were made: the rules file's ``probe`` object (format.md §8.4)."""
    return {
        "levels": list(range(1, cfg.L + 1)),
        "level_index": "column[l - 1] holds level l (l = 1 acts on depth L - 1, l = L under the root)",
        "force": PROBE_FORCE,
        "key": PROBE_KEY,
        "defined": probe_defined(cfg),
    }


def probe_columns(cfg: SRHMConfig, batch: dict) -> dict[str, np.ndarray]:
    """The probe columns of the rows in ``batch`` (label, synonyms, placements, tokens [n, d]).

    Each is [n, L, d] tokens of the batch's dtype, index l-1 the forced perturbation at
    level l, or the unperturbed tokens where that change is impossible (``probe_defined``).
    """
    defined = probe_defined(cfg)
    tokens = batch["tokens"]
    columns = {}
    for column in PROBE_COLUMNS:
        out = np.empty((tokens.shape[0], cfg.L, cfg.d), dtype=tokens.dtype)
        for level in range(1, cfg.L + 1):
            if defined[column]:
                out[:, level - 1] = perturb(
                    cfg, batch, kind=PROBE_KINDS[column], level=level, force=PROBE_FORCE, key=PROBE_KEY
                )
            else:
                out[:, level - 1] = tokens
        columns[column] = out
    return columns


def make_block(cfg: SRHMConfig, split: str, start: int, stop: int, threads: int | None = None) -> dict[str, np.ndarray]:
    """Rows start..stop-1 of a split as numpy columns, as published: probe adds ``probe_columns``."""
    batch = generate(cfg, split, start, stop, workers=threads)
    if split == "probe":
        batch.update(probe_columns(cfg, batch))
    return batch


__all__ = [
    "PROBE_COLUMNS",
    "PROBE_FORCE",
    "PROBE_KEY",
    "PROBE_KINDS",
    "PROBE_SUFFIX",
    "make_block",
    "probe_columns",
    "probe_defined",
    "probe_document",
    "split_columns",
]
