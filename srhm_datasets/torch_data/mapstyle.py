"""Map-style torch access to a published split (SPEC 4, 7, 8).

Two paths over the same rows:

* per item: ``SRHMDataset[i] -> (x [v, d] float, label)``, torchvision style, for any
  ``DataLoader`` / ``DistributedSampler`` setup;
* batched (the fast path): ``SRHMDataset.loader(batch_size)`` yields dicts of integer
  token batches ``tokens [B, d]`` (uint8), ``label [B]``, gathered with one numpy
  fancy-index per batch, and :meth:`SRHMDataset.to_device` encodes them on the
  training device.

The Arrow table of a ``datasets.Dataset`` is memory-mapped when loaded from a release, so
pickling the dataset to DataLoader workers is cheap; each process builds its numpy views
of the columns lazily on first access (zero-copy for a single Arrow chunk, else one
``n*d``-byte copy of the tokens).
"""

from __future__ import annotations

import os
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler

from ..catalog import release_name, resolve
from ..config import SRHMConfig
from .encoding import check_encoding, encode, to_device_batch, torch_ints, torch_tokens
from .world import resolve_world

LATENT_COLUMNS = ("latents", "synonyms", "placements")


def as_config(config) -> SRHMConfig:
    """An ``SRHMConfig`` from a config, a catalog name or a canonical config name."""
    if isinstance(config, SRHMConfig):
        return config
    if isinstance(config, str):
        return resolve(config)
    raise ValueError(f"invalid parameter config={config!r}: must be an SRHMConfig, a catalog name or a canonical name")


def load_split(source, config=None, split: str = "train", revision: str | None = None, **load_kwargs):
    """The ``datasets.Dataset`` of one split.

    source: a ``datasets.Dataset`` (returned as is), a ``datasets.DatasetDict`` (its
    ``split``), or a local release folder / Hub repo id, loaded with
    ``srhm_datasets.release.load.load_split`` (which knows that a release keeps
    ``probe`` in its own HF config); ``config`` is a name or an ``SRHMConfig``, or None
    for the repository's default config.
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
    if config is None:
        return datasets.load_dataset(os.fspath(source), split=split, revision=revision, **load_kwargs)
    name = config if isinstance(config, str) else release_name(config)
    return load_release_split(os.fspath(source), name, split, revision=revision, **load_kwargs)


def _column_matrix(table, name: str, n: int, width: int | None) -> np.ndarray:
    """A list column of an Arrow table as a numpy matrix [n, width] (fixed length rows)."""
    column = table.column(name)
    array = column.chunk(0) if column.num_chunks == 1 else pa.concat_arrays(column.chunks)
    if pa.types.is_fixed_size_list(array.type):
        width = array.type.list_size if width is None else width
        if array.type.list_size != width:
            raise ValueError(f"invalid column {name!r}: rows have length {array.type.list_size}, expected {width}")
    elif pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False) if n else np.zeros(0)
        if width is None:
            width = int(lengths[0]) if n else 0
        if n and not (lengths.min() == lengths.max() == width):
            raise ValueError(
                f"invalid column {name!r}: row lengths in [{lengths.min()}, {lengths.max()}], expected all {width}"
            )
    else:
        raise ValueError(f"invalid column {name!r}: type {array.type} is not a list of ints")
    values = array.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(n, width)


class SRHMDataset(Dataset):
    """Map-style dataset over a published split; items ``(x [v, d] float, label int)``.

    Parameters
    ----------
    source: a ``datasets.Dataset``, a ``DatasetDict``, a local release folder or a Hub
        repo id (SPEC 8), see :func:`load_split`.
    config: ``SRHMConfig``, catalog name or canonical name. Needed for a folder / repo
        (the Hugging Face config to load) and to know v; optional when the dataset's
        ``info.config_name`` resolves to a config.
    split: ``train``, ``test`` or ``probe``.
    revision: Hub revision (a release tag such as ``v1.0.0``) or None.
    encoding: ``whiten`` (paper default), ``onehot`` or ``tokens`` (SPEC 7).
    stop: keep rows 0..stop-1 only (``train[:P]``: the training set of size P); None
        keeps the whole split.
    return_latents: items become ``(x, label, extras)`` with extras a dict of
        ``latents`` / ``synonyms`` / ``placements`` int64 tensors [N] (heap order),
        and fast-path batches carry them as [B, N].
    dtype: float dtype of onehot / whiten.
    load_kwargs: extra keyword arguments of ``datasets.load_dataset`` (``cache_dir``, ...).

    Items are encoded on the CPU (the per-item path, torchvision style). The fast path
    is :meth:`loader` + :meth:`to_device`: integer token batches [B, d] are gathered
    with one fancy-index per batch and encoded on the training device.
    Attributes: ``config``, ``v``, ``d``, ``nc``, ``classes``, ``targets`` (labels [n]).
    """

    def __init__(
        self,
        source,
        config=None,
        split: str = "train",
        revision: str | None = None,
        encoding: str = "whiten",
        stop: int | None = None,
        return_latents: bool = False,
        dtype: torch.dtype = torch.float32,
        load_kwargs: dict | None = None,
    ):
        self.encoding = check_encoding(encoding)
        self.split = split
        self.revision = revision
        self.return_latents = bool(return_latents)
        self.dtype = dtype
        ds = load_split(source, config, split, revision, **(load_kwargs or {}))
        if config is None:
            name = getattr(ds.info, "config_name", None)
            try:
                config = as_config(name) if name else None
            except ValueError:
                config = None
            if config is None:
                raise ValueError(
                    f"invalid parameter config=None: the dataset's config_name={name!r} is not a config; "
                    "pass config= (an SRHMConfig, a catalog name or a canonical name)"
                )
        self.config = as_config(config)
        missing = [c for c in ("tokens", "label") + (LATENT_COLUMNS if self.return_latents else ()) if c not in ds.column_names]
        if missing:
            raise ValueError(f"invalid parameter source: columns {missing} missing (has {ds.column_names})")
        n = len(ds)
        if stop is not None and (isinstance(stop, bool) or not isinstance(stop, int) or not 0 <= stop <= n):
            raise ValueError(f"invalid parameter stop={stop!r}: must satisfy 0 <= stop <= {n} (rows of split {split!r})")
        self._length = n if stop is None else stop
        self._hf = ds
        self._check_width()
        feature = ds.features["label"]
        self.classes = list(getattr(feature, "names", None) or [str(c) for c in range(self.config.nc)])
        if len(self.classes) != self.config.nc:
            raise ValueError(
                f"invalid parameter config={self.config.name!r}: nc={self.config.nc} but the label has "
                f"{len(self.classes)} classes"
            )
        self._arrays = None
        self._arrays_pid = None

    # ---- columns (lazy, per process) -----------------------------------------------
    def _check_width(self) -> None:
        width = self._hf.features["tokens"]
        length = getattr(width, "length", -1)
        if length not in (-1, None) and length != self.config.d:
            raise ValueError(
                f"invalid parameter config={self.config.name!r}: d={self.config.d} but tokens have length {length}"
            )

    def _columns(self) -> dict[str, np.ndarray]:
        """Numpy views of the columns: tokens [n, d], label [n], latents [n, N]."""
        if self._arrays is None or self._arrays_pid != os.getpid():
            ds = self._hf
            table = ds.data
            n_phys = table.num_rows
            arrays = {"tokens": _column_matrix(table, "tokens", n_phys, self.config.d)}
            arrays["label"] = table.column("label").to_numpy().astype(np.int64, copy=False)
            if self.return_latents:
                for name in LATENT_COLUMNS:
                    arrays[name] = _column_matrix(table, name, n_phys, self.config.num_nodes)
            indices = getattr(ds, "_indices", None)  # a select()/shuffle()d Dataset maps rows
            if indices is not None:
                rows = indices.column(0).to_numpy().astype(np.int64, copy=False)
                arrays = {k: a[rows[: self._length]] for k, a in arrays.items()}
            self._arrays, self._arrays_pid = arrays, os.getpid()
        return self._arrays

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_arrays"] = None  # rebuilt lazily in the worker from the (memory-mapped) table
        return state

    # ---- torchvision-style attributes ------------------------------------------------
    @property
    def v(self) -> int:
        """Vocabulary size (the blank token is v)."""
        return self.config.v

    @property
    def d(self) -> int:
        """Input length."""
        return self.config.d

    @property
    def nc(self) -> int:
        """Number of classes."""
        return self.config.nc

    @property
    def targets(self) -> np.ndarray:
        """Labels [n] int64 of the kept rows."""
        return self._columns()["label"][: self._length]

    @property
    def hf_dataset(self):
        """The underlying ``datasets.Dataset`` (whole split, before ``stop``)."""
        return self._hf

    def __len__(self) -> int:
        return self._length

    # ---- per-item path --------------------------------------------------------------
    def __getitem__(self, index: int):
        """Row ``index``: ``(x, label)``, x [v, d] float ([d] int64 for ``tokens``).

        With ``return_latents``: ``(x, label, extras)``, extras of [N] int64 tensors.
        """
        if isinstance(index, torch.Tensor) and index.ndim == 0:
            index = int(index)
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(f"invalid parameter index={index!r}: must be an int; use .batches() for index batches")
        index = int(index)
        if not -self._length <= index < self._length:
            raise IndexError(f"invalid parameter index={index}: must satisfy -{self._length} <= index < {self._length}")
        index %= self._length
        cols = self._columns()
        x = encode(torch_tokens(cols["tokens"][index]), self.v, self.encoding, self.dtype)
        label = int(cols["label"][index])
        if not self.return_latents:
            return x, label
        return x, label, {k: torch_ints(cols[k][index]) for k in LATENT_COLUMNS}

    # ---- fast path ------------------------------------------------------------------
    def get_batch(self, indices) -> dict[str, torch.Tensor]:
        """Rows ``indices`` (list / numpy / tensor of ints, or a slice) as integer tensors.

        Returns ``{"tokens": [B, d] uint8 (int32 if v >= 255), "label": [B] int64}``,
        plus ``latents`` / ``synonyms`` / ``placements`` [B, N] int64 with
        ``return_latents``. One numpy gather per column, no per-row Python work.
        """
        if isinstance(indices, slice):
            indices = np.arange(*indices.indices(self._length))
        elif isinstance(indices, torch.Tensor):
            indices = indices.numpy()
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self._length):
            bad = idx.min() if idx.min() < 0 else idx.max()
            raise IndexError(f"invalid parameter indices: contains {bad}, must satisfy 0 <= index < {self._length}")
        cols = self._columns()
        batch = {"tokens": torch_tokens(cols["tokens"].take(idx, axis=0)), "label": torch.from_numpy(cols["label"].take(idx))}
        if self.return_latents:
            batch.update({k: torch_ints(cols[k].take(idx, axis=0)) for k in LATENT_COLUMNS})
        return batch

    def batches(self) -> "SRHMBatches":
        """A map-style view whose item for a list of indices is :meth:`get_batch`."""
        return SRHMBatches(self)

    def batch_sampler(
        self,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> "SRHMBatchSampler":
        """An :class:`SRHMBatchSampler` over this dataset's rows (see there)."""
        return SRHMBatchSampler(len(self), batch_size, shuffle, seed, drop_last, rank, world_size)

    def loader(
        self,
        batch_size: int = 1024,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        sampler: Sampler | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        **dataloader_kwargs,
    ) -> DataLoader:
        """The fast path: a ``DataLoader`` of integer token batches (dicts, see :meth:`get_batch`).

        Each element of the loader is one batch gathered in one call
        (``batch_size=None`` DataLoader over a batch sampler), so workers, pinning and
        prefetching act on whole batches. Indices come from ``sampler`` when given (any
        index sampler, e.g. ``DistributedSampler(ds)``; it is wrapped in a
        ``BatchSampler``), else from :class:`SRHMBatchSampler` (``shuffle`` with
        ``seed``, sharded over ``rank`` / ``world_size``, by default those of an
        initialised ``torch.distributed``). Call ``loader.sampler.set_epoch(e)`` (or the
        given sampler's) each epoch to reshuffle. ``pin_memory=None`` pins when CUDA is
        available. Encode each batch with :meth:`to_device`.
        """
        if sampler is not None:
            batches = BatchSampler(sampler, batch_size, drop_last)
        else:
            batches = self.batch_sampler(batch_size, shuffle, seed, drop_last, rank, world_size)
        if pin_memory is None:
            pin_memory = torch.cuda.is_available()
        return DataLoader(
            self.batches(),
            batch_size=None,
            sampler=batches,
            num_workers=num_workers,
            pin_memory=pin_memory,
            **dataloader_kwargs,
        )

    def to_device(self, batch: dict, device=None, non_blocking: bool = True):
        """``to_device_batch`` with this dataset's v, encoding and dtype: ``(x [B, v, d], label [B])``."""
        return to_device_batch(batch, self.v, self.encoding, device, self.dtype, non_blocking)

    def __repr__(self) -> str:
        return (
            f"SRHMDataset(config={self.config.name!r}, split={self.split!r}, rows={len(self)}, "
            f"encoding={self.encoding!r}, return_latents={self.return_latents})"
        )


class SRHMBatches(Dataset):
    """Map-style view of an :class:`SRHMDataset` whose items are whole batches.

    ``view[indices]`` is ``dataset.get_batch(indices)``; ``len(view)`` is the number of
    rows. Use it with ``DataLoader(view, batch_size=None, sampler=<batch sampler>)``.
    """

    def __init__(self, dataset: SRHMDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, indices) -> dict[str, torch.Tensor]:
        return self.dataset.get_batch(indices)


class SRHMBatchSampler(Sampler):
    """Batches of row indices (int64 numpy arrays [B]), sharded like ``DistributedSampler``.

    Each epoch the rows 0..num_rows-1 are ordered (a seeded permutation of
    ``seed + epoch`` when ``shuffle``, else in order), padded by wrapping around to a
    multiple of ``world_size`` (as ``DistributedSampler`` does, so every rank takes the
    same number of steps), and rank r takes positions r, r + world_size, ...; its rows
    are then cut into batches of ``batch_size`` (the last one shorter unless
    ``drop_last``). ``rank`` / ``world_size`` default to an initialised
    ``torch.distributed``, else 0 / 1. ``set_epoch(e)`` changes the shuffle.
    """

    def __init__(
        self,
        num_rows: int,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"invalid parameter batch_size={batch_size!r}: must be an int >= 1")
        if not isinstance(num_rows, int) or num_rows < 0:
            raise ValueError(f"invalid parameter num_rows={num_rows!r}: must be an int >= 0")
        self.num_rows = num_rows
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.rank, self.world_size = resolve_world(rank, world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of this epoch (with ``shuffle``)."""
        self.epoch = int(epoch)

    @property
    def rows_per_rank(self) -> int:
        """Rows this rank takes per epoch (padding included)."""
        return -(-self.num_rows // self.world_size) if self.num_rows else 0

    def rank_indices(self) -> np.ndarray:
        """The row indices [rows_per_rank] of this rank for the current epoch, in order."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_rows)
        else:
            order = np.arange(self.num_rows, dtype=np.int64)
        total = self.rows_per_rank * self.world_size
        if total > self.num_rows:
            order = np.resize(order, total)  # wrap around, like DistributedSampler's padding
        return order[self.rank :: self.world_size].astype(np.int64, copy=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        rows = self.rank_indices()
        stop = len(rows) - len(rows) % self.batch_size if self.drop_last else len(rows)
        for a in range(0, stop, self.batch_size):
            yield rows[a : a + self.batch_size]

    def __len__(self) -> int:
        n = self.rows_per_rank
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
