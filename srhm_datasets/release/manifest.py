"""A release against its manifest: the committed ``cards/vX.Y.Z/`` of the repository (format.md §8.10).

A manifest folder holds what identifies a release: ``rules/<config>.json`` (parameters, rule
tables, their hash, every split's row count and content hash), the card ``README.md`` (its
hash table) and ``croissant.json``. ``srhm verify DIR --manifest cards/v1.0.0`` re-derives
every row of DIR against DIR's own rules files (``verify``) and checks here that those
rules files, and the card's hash table, are the manifest's: together a proof that the rows
loaded are the release's. The ``generator`` field of a rules file (the package version that
built it) is not compared: a later package version rebuilds the same rows.
"""

from __future__ import annotations

import json
from pathlib import Path

from .card import HASH_ROW
from .rules_file import candidate_names

#: Rules-file keys that may differ between builds of the same release.
UNCOMPARED_KEYS = ("generator",)


def _rules_files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted((folder / "rules").glob("*.json"))}


def _read_json(path: Path) -> tuple[dict | None, str | None]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return None, f"{path} unreadable ({type(err).__name__}: {err})"
    return (doc, None) if isinstance(doc, dict) else (None, f"{path} is not a JSON object")


def rules_differences(got: dict, want: dict) -> list[str]:
    """The keys where a rules document differs from the manifest's (``generator`` aside)."""
    keys = sorted((set(got) | set(want)) - set(UNCOMPARED_KEYS))
    problems = []
    for key in keys:
        if got.get(key) != want.get(key):
            if key == "splits":
                for split in sorted(set(got.get(key) or {}) | set(want.get(key) or {})):
                    a, b = (got.get(key) or {}).get(split), (want.get(key) or {}).get(split)
                    if a != b:
                        problems.append(f"split {split}: {a} != manifest {b}")
            else:
                problems.append(f"{key} differs from the manifest's")
    return problems


def config_problems(folder: Path, manifest: Path, name: str) -> list[str]:
    """Problems of one config of ``folder`` against ``manifest``: its rules file must equal the manifest's."""
    mine, theirs = folder / "rules" / f"{name}.json", manifest / "rules" / f"{name}.json"
    if not theirs.is_file():
        return [f"not in the manifest ({manifest / 'rules'} has no {name}.json)"]
    if not mine.is_file():
        return [f"missing: the manifest has {name} but {folder / 'rules'} has no {name}.json"]
    (got, err1), (want, err2) = _read_json(mine), _read_json(theirs)
    if err1 or err2:
        return [e for e in (err1, err2) if e]
    return rules_differences(got, want)


def selected_names(manifest: Path, configs) -> list[str]:
    """Rules-file names of the manifest to compare: all, or those of ``configs`` (catalog or canonical)."""
    names = list(_rules_files(manifest))
    if not configs:
        return names
    return [next((n for n in candidate_names(c) if n in names), c) for c in configs]


def extra_configs(folder: Path, manifest: Path) -> list[str]:
    """Configs of ``folder`` that the manifest does not have."""
    return sorted(set(_rules_files(folder)) - set(_rules_files(manifest)))


def card_rows(card: Path) -> set[tuple[str, str, str, str]]:
    """The hash table of a card: {(config, item, rows, hash)} (empty if the card is missing)."""
    try:
        body = card.read_text(encoding="utf-8")
    except OSError:
        return set()
    return {(m["config"], m["item"], m["rows"], m["hash"]) for m in HASH_ROW.finditer(body)}


__all__ = ["UNCOMPARED_KEYS", "card_rows", "config_problems", "extra_configs", "rules_differences", "selected_names"]
