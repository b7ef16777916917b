"""Synonym exchange and diffeomorphism at level l (format.md §6).

Level l acts on depth k = L - l. A synonym exchange gives every node at depth k a new
production index (forced different from the old one unless ``force=False``) and
redraws the production index of every deeper node; placements are kept. A
diffeomorphism does the same to placement indices and keeps production indices.
The label never changes.

Draws are counter-based: node j of a sample draws from a hash of (sample
fingerprint, node j, seed, kind, level, key), where the fingerprint hashes the
sample's (label, synonyms, placements). So the result is a deterministic function
of (sample, level, kind, seed, key), independent of the batch it sits in.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .config import SRHMConfig, check_config, require, require_choice, require_int
from .generate import _expand, check_batch, token_dtype
from .prng import MAX_KEY, below, derive_key, hash_with, mix64

KINDS = ("synonym", "diffeo")


#: The batch columns a perturbation reads.
INDEX_COLUMNS = ("label", "synonyms", "placements")


def fingerprint(batch: dict) -> np.ndarray:
    """A uint64 hash [n] per sample of its (label [n], synonyms [n, N], placements [n, N])."""
    h = hash_with(0, np.asarray(batch["label"]))
    with np.errstate(over="ignore"):
        for column in ("synonyms", "placements"):
            for col in np.asarray(batch[column], dtype=np.uint64).T:
                h = mix64(h ^ col)
    return h


def check_perturbation(cfg: SRHMConfig, batch, kind: str, level: int, force: bool, key: int) -> dict[str, np.ndarray]:
    """The batch's index columns (and tokens when present), every argument checked against cfg.

    Raises ValueError naming the argument: cfg not an SRHMConfig; a batch column missing,
    misshapen or out of range for cfg (a batch of another config); kind not in KINDS;
    level not an int in 1..L; force not a bool; key not an int in [0, 2**64).
    """
    check_config(cfg)
    present = tuple(c for c in ("tokens", "latents") if isinstance(batch, Mapping) and c in batch)
    arrays = check_batch(cfg, batch, INDEX_COLUMNS + present)
    require_choice("kind", kind, KINDS)
    require_int("level", level, 1, cfg.L, "levels 1..L act on depths L-1..0")
    require(isinstance(force, (bool, np.bool_)), "force", force, "a bool")
    require_int("key", key, 0, MAX_KEY)
    return arrays


def forced_change_possible(cfg: SRHMConfig) -> dict[str, bool]:
    """Per kind, whether a forced change exists: synonym needs m >= 2, diffeo needs K >= 2.

    Where it does not, the probe columns hold unperturbed tokens and S (resp. D) is undefined.
    """
    return {"synonym": cfg.m >= 2, "diffeo": cfg.placements_per_node >= 2}


def perturb_indices(
    cfg: SRHMConfig, batch: dict, kind: str, level: int, force: bool = True, key: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """New (synonyms, placements), each int64 [n, N], of the perturbed samples.

    Arguments as for ``perturb``; raises ValueError as ``check_perturbation`` does.
    """
    batch = check_perturbation(cfg, batch, kind, level, force, key)
    level = int(level)
    name = "m" if kind == "synonym" else "placements_per_node"  # the radix of the changed index
    radix = getattr(cfg, name)
    if force and not forced_change_possible(cfg)[kind]:
        raise ValueError(
            f"invalid parameter {name}={radix}: a forced {kind} change needs {name} >= 2 "
            "(use force=False for the plain redraw)"
        )
    synonyms = np.array(batch["synonyms"], dtype=np.int64)
    placements = np.array(batch["placements"], dtype=np.int64)
    target = synonyms if kind == "synonym" else placements
    k = cfg.L - level
    first = cfg.depth_nodes(k).start
    nodes = np.arange(first, cfg.num_nodes, dtype=np.uint64)
    node_keys = hash_with(derive_key(cfg.seed, "perturb", kind, level, int(key)), nodes)
    with np.errstate(over="ignore"):
        draws = mix64(fingerprint(batch)[:, None] ^ node_keys[None, :])  # [n, nodes]
    fresh = below(draws, radix)
    if force:  # depth-k nodes take one of the radix-1 other values
        width = cfg.s**k
        shift = 1 + below(draws[:, :width], radix - 1)
        fresh[:, :width] = (target[:, first : first + width] + shift) % radix
    target[:, first:] = fresh
    return synonyms, placements


def perturb(cfg: SRHMConfig, batch: dict, kind: str, level: int, force: bool = True, key: int = 0) -> np.ndarray:
    """Tokens [n, d] of the batch's samples perturbed at level l (1 <= l <= L).

    ``batch`` is a dict with label [n], synonyms [n, N], placements [n, N] (as from
    ``generate``). ``kind`` is "synonym" or "diffeo"; ``force`` forces the change at
    depth L - l; ``key`` selects an independent perturbation of the same samples.
    Returns tokens in the dtype of ``batch["tokens"]`` when present, else int64.
    Raises ValueError naming the argument when the batch does not fit cfg (shapes:
    tokens [n, d], label [n], synonyms/placements/latents [n, N]; values below v+1, nc,
    m, K) or an argument is out of range; see ``check_perturbation``.
    """
    synonyms, placements = perturb_indices(cfg, batch, kind, level, force, key)
    dtype = token_dtype(cfg, np.asarray(batch["tokens"]).dtype if "tokens" in batch else np.int64)
    return _expand(cfg, np.asarray(batch["label"], dtype=np.int64), synonyms, placements, dtype)[1]
