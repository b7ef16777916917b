"""Probe and test points of an evaluation (format.md §6.3, §11).

Probe points come from a release's ``probe`` split (``synonym_tokens`` / ``diffeo_tokens``
columns, the forced perturbations with key 0) or are generated afresh with
``probe.make_block(cfg, "probe", ...)`` (``generate`` and ``perturb(..., force=True, key=0)``):
both give the same tokens, hence the same numbers. Test points are the ``test`` split of a
release, or generated.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import SRHMConfig, require_int
from ..generate import generate
from ..probe import PROBE_FORCE, PROBE_KEY, make_block, probe_defined
from ..release.features import from_arrow
from ..release.load import load_split

PROBE_SOURCES = ("release", "generator")
#: Options of ``perturb`` that made the probe's perturbed copies: the release builder's own.
PROBE_PERTURBATION = {"force": PROBE_FORCE, "key": PROBE_KEY}


@dataclasses.dataclass
class ProbeSet:
    """Base probe points and their perturbed copies.

    tokens [n, d], label [n]; synonym / diffeo [n, L, d] (index l-1 = level l), or None
    where the quantity is undefined for the config (m = 1, K = 1). ``source`` is
    "release" or "generator".
    """

    tokens: np.ndarray
    label: np.ndarray
    synonym: np.ndarray | None
    diffeo: np.ndarray | None
    source: str

    @property
    def num_points(self) -> int:
        return int(self.tokens.shape[0])

    def head(self, n: int | None) -> ProbeSet:
        """The first n points (all when n is None); 2 <= n <= num_points, else ValueError."""
        if n is None:
            return self
        check_num_probe(n, self.num_points, "probe points available")
        cut = lambda a: None if a is None else a[:n]
        return ProbeSet(self.tokens[:n], self.label[:n], cut(self.synonym), cut(self.diffeo), self.source)

    def perturbed(self) -> dict:
        """``{"synonym": [n, L, d] or None, "diffeo": ...}`` for ``compute_sensitivities``."""
        return {"synonym": self.synonym, "diffeo": self.diffeo}


def check_num_probe(n, size: int, what: str) -> None:
    """TypeError unless n is an int, ValueError unless 2 <= n <= size (a denominator needs two points)."""
    require_int("num_probe", n, 2, size, what)


def probe_size(cfg: SRHMConfig, num_points: int | None) -> int:
    """``num_points`` checked against the config's probe split (its size when None)."""
    size = cfg.split_sizes()["probe"]
    if num_points is not None:
        check_num_probe(num_points, size, f"probe split size of {cfg.name}")
    return size if num_points is None else num_points


def _probe_set(cfg: SRHMConfig, cols: dict[str, np.ndarray], source: str) -> ProbeSet:
    """The ``ProbeSet`` of probe-split columns (tokens [n, d], label [n], synonym_tokens /
    diffeo_tokens [n, L, d]); a copy column whose forced change is impossible becomes None."""
    defined = probe_defined(cfg)
    copy = lambda column: cols[column] if defined[column] else None
    return ProbeSet(cols["tokens"], cols["label"], copy("synonym_tokens"), copy("diffeo_tokens"), source)


def generator_probe(cfg: SRHMConfig, num_points: int | None = None) -> ProbeSet:
    """Probe points from the generator: the rows the release builder writes (``release.build.make_block``:
    ``generate(cfg, "probe")`` and its forced key-0 perturbations)."""
    return _probe_set(cfg, make_block(cfg, "probe", 0, probe_size(cfg, num_points)), "generator")


def _columns(dataset, names: list[str]) -> dict[str, np.ndarray]:
    """Numpy columns [n, ...] of a ``datasets.Dataset`` (fixed-length lists -> extra axes), via Arrow."""
    missing = [name for name in names if name not in dataset.column_names]
    if missing:
        raise ValueError(f"invalid dataset: columns {missing} missing (has {dataset.column_names})")
    table = dataset.select_columns(names).with_format("arrow")[:]
    return from_arrow(table)


def release_probe(data: str, cfg: SRHMConfig, revision: str | None = None, num_points: int | None = None) -> ProbeSet:
    """Probe points from a release folder or Hub repo (``probe`` split, format.md §6)."""
    probe_size(cfg, num_points)  # the same bound as the generator's, before any download
    ds = load_split(data, cfg.name, "probe", revision=revision)
    cols = _columns(ds, ["tokens", "label", "synonym_tokens", "diffeo_tokens"])
    for name in ("synonym_tokens", "diffeo_tokens"):
        if cols[name].shape[1:] != (cfg.L, cfg.d):
            raise ValueError(
                f"invalid probe column {name} shape {cols[name].shape}: expected [n, L={cfg.L}, d={cfg.d}]"
            )
    return _probe_set(cfg, cols, "release").head(num_points)


def load_probe(
    cfg: SRHMConfig,
    source: str = "generator",
    data: str | None = None,
    revision: str | None = None,
    num_points: int | None = None,
) -> ProbeSet:
    """The probe set from ``source`` ("release" needs ``data``, a folder or Hub repo id)."""
    if source not in PROBE_SOURCES:
        raise ValueError(f"invalid parameter probe_source={source!r}: must be one of {PROBE_SOURCES}")
    if source == "release":
        if not data:
            raise ValueError(
                "invalid parameter data=None: probe_source='release' needs a release folder or repo (--data)"
            )
        return release_probe(data, cfg, revision, num_points)
    return generator_probe(cfg, num_points)


def load_test(
    cfg: SRHMConfig, data: str | None = None, revision: str | None = None, num_test: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Tokens [n, d] and labels [n] of the ``test`` split (release when ``data``, else generator)."""
    size = cfg.split_sizes()["test"]
    n = size if num_test is None else require_int("num_test", num_test, 1, size, "test split size")
    if data:
        ds = load_split(data, cfg.name, "test", revision=revision)
        if n < len(ds):
            ds = ds.select(range(n))
        cols = _columns(ds, ["tokens", "label"])
        return cols["tokens"], cols["label"]
    batch = generate(cfg, "test", 0, n)
    return batch["tokens"], batch["label"]
