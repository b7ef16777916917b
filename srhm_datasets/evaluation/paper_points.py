"""The paper's P* points (Tomasini & Wyart 2024), as read off its figures.

Data: ``paper_points.json`` next to this module (also readable without Python).
Source: the paper's Fig. 4C (CNN) and Fig. 4B (LCN) by pixel position, about +-20 %. Sparsity A, s = 2,
n_c = m = v (maximal m = v**(s-1)); P* is the training-set size at test error 10 %.

Each row: (v, L, s0, d, x, P*) with x the law's prediction in the paper's units
(``protocol.law_x``; the threshold of P* is ``protocol.EPSILON_STAR``):

- CNN (Eq. 4): x = (s0+1)**2 * n_c * m**L;          dashed fit P* = 2.5 x.
- LCN (Eq. 3): x = s**(L/2) * (s0+1)**L * n_c * m**L; dashed fit P* = 1.0 x.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).with_name("paper_points.json")


@lru_cache(maxsize=1)
def _doc() -> dict:
    return json.loads(DATA_FILE.read_text())


def _rows(arch: str) -> tuple[tuple, ...]:
    return tuple(tuple(row) for row in _doc()["tables"][arch]["rows"])


#: Fig. 4C, CNN, sparsity A, s = 2: (v = n_c = m, L, s0, d, x, P* read).
CNN_FIG4C = _rows("cnn")
#: Fig. 4B, LCN, sparsity A, s = 2: (v = n_c = m, L, s0, d, x, P* read).
LCN_FIG4B = _rows("lcn")
#: P* ~= C x: the dashed lines of the figures.
LAW_CONSTANT = {arch: float(_doc()["tables"][arch]["fit_constant"]) for arch in ("cnn", "lcn")}


def paper_points(arch: str) -> list[dict]:
    """The paper's points for "cnn" or "lcn" as dicts: v, nc, m, L, s, s0, d, x, p_star."""
    table = {"cnn": CNN_FIG4C, "lcn": LCN_FIG4B}.get(arch)
    if table is None:
        raise ValueError(f"invalid parameter arch={arch!r}: the paper gives P* points for 'cnn' and 'lcn'")
    return [
        {"v": v, "nc": v, "m": v, "L": L, "s": 2, "s0": s0, "d": d, "x": float(x), "p_star": float(p)}
        for v, L, s0, d, x, p in table
    ]
