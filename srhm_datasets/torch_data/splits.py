"""What the torch datasets read: a config and a published split (format.md §8).

* :func:`config_of_hf_name`: the config an HF config name stands for, or None;
* :func:`open_split`: the ``datasets.Dataset`` of one split, whatever ``SRHMDataset`` was given;
* :data:`LATENT_COLUMNS`: the latent columns of a split (format.md §4), the extras of
  ``return_latents``.
"""

from __future__ import annotations

import os

from ..catalog import get_config, release_name
from ..config import SRHMConfig
from ..probe import PROBE_SUFFIX

LATENT_COLUMNS = ("latents", "synonyms", "placements")


def config_of_hf_name(name: str | None) -> SRHMConfig | None:
    """The config an HF config name stands for: a catalog / canonical name, or one with the
    release's ``_probe`` suffix (the HF config holding a release's probe split); else None."""
    candidates = [name] if name else []
    if name and name.endswith(PROBE_SUFFIX):
        candidates.append(name[: -len(PROBE_SUFFIX)])
    for candidate in candidates:
        try:
            return get_config(candidate)
        except ValueError:
            continue
    return None


def open_split(source, config=None, split: str = "train", revision: str | None = None, **load_kwargs):
    """The ``datasets.Dataset`` of one split, for :class:`~srhm_datasets.torch.SRHMDataset`.

    source: a ``datasets.Dataset`` (returned as is), a ``datasets.DatasetDict`` (its
    ``split``), or a local release folder / Hub repo id, loaded with
    :func:`srhm_datasets.load_split` (which knows that a release keeps ``probe`` in its own
    HF config, and checks the rows against the rules file of the same revision); ``config``
    is an ``SRHMConfig``, or None for the repository's default config.
    """
    import datasets

    from ..release.load import load_split as load_release_split

    if isinstance(source, datasets.Dataset):
        return source
    if isinstance(source, datasets.DatasetDict):
        if split not in source:
            raise ValueError(f"invalid parameter split={split!r}: must be one of {sorted(source)}")
        return source[split]
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(
            f"invalid parameter source={source!r}: must be a datasets.Dataset, a DatasetDict, "
            "a release folder or a Hub repo id"
        )
    name = config if isinstance(config, str) or config is None else release_name(config)
    return load_release_split(os.fspath(source), name, split, revision=revision, **load_kwargs)
