"""A versioned Hugging Face release of SRHM configs (format.md §8).

Submodules (import what you need; this package itself imports nothing heavy):

* ``build``: ``build_release(configs, out)`` writes Parquet shards, rules files, the
  card and ``croissant.json`` atomically, streaming in bounded memory.
* ``verify``: ``verify_release(folder)`` re-derives every row and checks format.md §8.9.
* ``publish``: ``publish_release(folder, repo_id, tag)`` uploads one commit and tags it.

Loading a published split or rules file is public at the package root only
(``srhm_datasets.load_split``, ``srhm_datasets.load_rules``). The other submodules
(``arguments``, ``card``, ``croissant``, ``features``, ``jobs``, ``manifest``, ``cli``)
are internal.
"""

from __future__ import annotations

__all__ = ["build_release", "publish_release", "verify_release"]


def __getattr__(name: str):
    """Lazy access to the main entry points (keeps ``import srhm_datasets.release`` cheap)."""
    targets = {
        "build_release": ("build", "build_release"),
        "verify_release": ("verify", "verify_release"),
        "publish_release": ("publish", "publish_release"),
    }
    if name not in targets:
        raise AttributeError(name)
    import importlib

    module, attr = targets[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
