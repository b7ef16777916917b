"""Map-style torch access to a published split (format.md §4, §7, §8).

Two paths over the same rows:

* per item: ``SRHMDataset[i] -> (x [v, d] float, label)``, torchvision style, for any
  ``DataLoader`` / ``DistributedSampler`` setup;
* batched (the fast path): ``SRHMDataset.loader(batch_size)`` yields dicts of integer
  token batches ``tokens [B, d]`` (uint8), ``label [B]``, gathered with one numpy
  fancy-index per batch (:class:`SRHMBatches` over a batch sampler, by default an
  :class:`~.batch_sampler.SRHMBatchSampler`), and :meth:`SRHMDataset.to_device` encodes
  them on the training device.

The Arrow table of a ``datasets.Dataset`` is memory-mapped when loaded from a release, so
pickling the dataset to DataLoader workers is cheap; each process builds, lazily on first
access, a :class:`~.arrow_rows.RowGather` per token / latent column (a small per-chunk
table of byte offsets into the Arrow buffers) and gathers every batch straight from them
(one numpy gather per batch and column, whatever the number of chunks): no process holds
a copy of those columns, only the labels, compactly (:func:`~.arrow_rows.compact_labels`).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler

from ..catalog import get_config
from ..config import require, require_int, require_type
from ..tasks import apply_task
from .arrow_rows import RowGather, compact_labels
from .batch_sampler import SRHMBatchSampler
from .encoding import check_encoding, check_float_dtype, encode, to_device_batch, torch_ints, torch_tokens
from .splits import LATENT_COLUMNS, config_of_hf_name, open_split
from .tasks import adapter_task, batch_keys, input_channels, task_tensors


def check_map_load_kwargs(load_kwargs) -> None:
    """``load_kwargs`` of a map-style dataset: None or a dict without ``streaming=True`` (``ValueError``
    naming it: random access needs the whole split, memory-mapped, not a stream)."""
    require_type(load_kwargs, (dict, type(None)), "load_kwargs", "None or a dict")
    require(
        not (load_kwargs or {}).get("streaming"),
        "load_kwargs",
        load_kwargs,
        "no streaming=True: SRHMDataset reads rows by index from the split's memory-mapped Arrow table (no "
        "copy in RAM); to stream, use SRHMStream (the same rows, generated) or "
        "srhm_datasets.load_split(..., streaming=True)",
    )


class SRHMDataset(Dataset):
    """Map-style dataset over a published split; items ``(x [v, d] float, label int)`` (format.md §9.2).

    Items are encoded on the CPU (the per-item path, torchvision style). The fast path
    is :meth:`loader` + :meth:`to_device`: integer token batches [B, d] are gathered
    with one fancy-index per batch and encoded on the training device.

    Parameters
    ----------
    source : datasets.Dataset or datasets.DatasetDict or str or os.PathLike
        A split already loaded, or a local release folder or Hub repo id (format.md §8),
        read with :func:`srhm_datasets.load_split` (rows proven against the rules file).
    config : SRHMConfig or str or None
        The config (as :func:`srhm_datasets.get_config` takes it). Needed for a folder
        or repo (the Hugging Face config to load); optional when the dataset's
        ``info.config_name`` names a config; refused if it names another one.
    split : {"train", "test", "probe"}
        The split.
    revision : str or None
        Hub revision (a release tag such as ``v1.0.0``).
    encoding : {"whiten", "onehot", "tokens"}
        Input encoding (format.md §7); ``whiten`` is the paper's.
    stop : int or None
        Keep rows ``0..stop-1`` only (``train[:P]``: the training set of size P); None
        keeps the whole split.
    return_latents : bool
        Items become ``(x, label, extras)``, extras a dict of ``latents`` /
        ``synonyms`` / ``placements`` int64 tensors [N] (heap order); fast-path
        batches carry them as [B, N].
    dtype : torch.dtype
        Float dtype of onehot / whiten.
    load_kwargs : dict or None
        Keywords of :func:`srhm_datasets.load_split` (``cache_dir``, ...); ``streaming=True``
        is refused (``ValueError``): stream with :class:`~.stream.SRHMStream`.
    task, context, mask_rate, noise, task_key
        The task (format.md §15; ``tasks.make_task``): ``class`` (default: today's items
        and batches, bit for bit), ``last``, ``mlm`` or ``next``, with its parameters
        (``task_key`` is the task's ``key``). Items become ``(x, target)`` (an int for
        ``class`` and ``last``, an int64 tensor [d] for ``mlm``, [d-1] for ``next``);
        fast-path batches of a task other than ``class`` hold ``inputs`` (codes, uint8 or
        int32) and ``targets`` (int64, -100 where unscored) in place of ``tokens`` and
        ``label``; onehot / whiten have ``input_channels`` channels (v + 2 for ``last``
        and ``mlm``, format.md §7). A row's draws (mask, noise) are keyed by its index in
        the split, the position of the row in the Arrow table (a ``select``-ed or
        shuffled Dataset keeps them).

    Attributes
    ----------
    config : SRHMConfig
    v, d, nc : int
    classes : list of str

    Raises
    ------
    ValueError
        A config that does not match the dataset, missing columns, tokens wider than
        ``d``, an unknown encoding, or ``stop`` outside ``0..len(split)``; and every
        error of :func:`srhm_datasets.load_split`.

    Examples
    --------
    >>> import tempfile, srhm_datasets as srhm
    >>> from srhm_datasets.release import build_release
    >>> from srhm_datasets.torch import SRHMDataset
    >>> cfg = srhm.SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, n_train=64, n_test=32, n_probe=16)
    >>> tmp = tempfile.mkdtemp()
    >>> _ = build_release([cfg], tmp + "/release", progress=False)
    >>> ds = SRHMDataset(tmp + "/release", cfg, "train", stop=48, load_kwargs={"cache_dir": tmp + "/cache"})
    >>> len(ds), ds[0][0].shape, ds[0][1]
    (48, torch.Size([4, 16]), 3)
    >>> batch = next(iter(ds.loader(batch_size=16)))  # the fast path: uint8 tokens
    >>> batch["tokens"].shape, batch["tokens"].dtype
    (torch.Size([16, 16]), torch.uint8)
    >>> x, label = ds.to_device(batch, "cpu")
    >>> x.shape
    torch.Size([16, 4, 16])
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
        task: str = "class",
        context: int | None = None,
        mask_rate: float | None = None,
        noise: float = 0.0,
        task_key: int = 0,
    ):
        self.encoding = check_encoding(encoding, "encoding")
        self.split = split
        self.revision = revision
        self.return_latents = bool(return_latents)
        self.dtype = check_float_dtype(dtype)
        config = None if config is None else get_config(config)  # before any download
        check_map_load_kwargs(load_kwargs)
        ds = open_split(source, config, split, revision, **(load_kwargs or {}))
        name = getattr(ds.info, "config_name", None)
        named = config_of_hf_name(name)
        if config is None and named is None:
            raise ValueError(
                f"invalid parameter config=None: the dataset's config_name={name!r} is not a config; "
                "pass config= (an SRHMConfig, a catalog name or a canonical name)"
            )
        if config is not None and named is not None and named != config:
            raise ValueError(
                f"invalid parameter config={config.name!r}: the dataset holds rows of config {named.name} "
                f"(its config_name {name!r}); pass that config or the dataset of {config.name}"
            )
        self.config = config or named
        self.task = adapter_task(self.config, task, context, mask_rate, noise, task_key)
        self.channels = input_channels(self.config.v, self.task)
        missing = [
            c for c in ("tokens", "label") + (LATENT_COLUMNS if self.return_latents else ()) if c not in ds.column_names
        ]
        if missing:
            raise ValueError(f"invalid parameter source: columns {missing} missing (has {ds.column_names})")
        n = len(ds)
        self._length = n if stop is None else require_int("stop", stop, 0, n, f"rows of split {split!r}")
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
        self._rows = None
        self._arrays_pid = None
        self._targets = None

    # ---- columns (lazy, per process) -----------------------------------------------
    def _check_width(self) -> None:
        width = self._hf.features["tokens"]
        length = getattr(width, "length", -1)
        if length not in (-1, None) and length != self.config.d:
            raise ValueError(
                f"invalid parameter config={self.config.name!r}: d={self.config.d} but tokens have length {length}"
            )

    def _columns(self) -> dict:
        """Per-process column access: ``RowGather`` objects (tokens, latents) over the Arrow
        table, the labels, and ``rows`` (the Dataset's indices mapping [n] int64, or None).

        Nothing of size n*d is copied: token (and latent) batches are gathered straight from
        the (memory-mapped) Arrow buffers, whatever the number of chunks. Only the labels are
        held, compactly (one byte per row when nc <= 256): they are read at random for every
        batch, and the page-cache pages of a memory map make that gather several times slower.
        """
        if self._arrays is None or self._arrays_pid != os.getpid():
            ds = self._hf
            table = ds.data
            arrays = {
                "tokens": RowGather(table.column("tokens"), "tokens", self.config.d),
                "label": compact_labels(table.column("label"), self.config.nc),
            }
            if self.return_latents:
                for name in LATENT_COLUMNS:
                    arrays[name] = RowGather(table.column(name), name, self.config.num_nodes)
            indices = getattr(ds, "_indices", None)  # a select()/shuffle()d Dataset maps rows
            rows = None
            if indices is not None:
                rows = indices.column(0).to_numpy().astype(np.int64, copy=False)[: self._length]
            self._arrays, self._rows, self._arrays_pid = arrays, rows, os.getpid()
        return self._arrays

    def _split_rows(self, idx: np.ndarray) -> np.ndarray:
        """The split's row indices (physical rows of the Arrow table) of dataset rows ``idx``."""
        self._columns()
        return idx if self._rows is None else self._rows[idx]

    def _take(self, name: str, idx: np.ndarray) -> np.ndarray:
        """Column ``name`` at dataset rows ``idx`` (int64, validated), as a new numpy array."""
        cols = self._columns()
        rows = self._split_rows(idx)
        if name == "label":
            return cols["label"][rows].astype(np.int64)
        return cols[name].take(rows)

    def _row(self, name: str, index: int):
        """Column ``name`` at dataset row ``index`` (validated): a numpy row, or an int label."""
        cols = self._columns()
        i = index if self._rows is None else int(self._rows[index])
        return int(cols["label"][i]) if name == "label" else cols[name].row(i)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_arrays"] = state["_rows"] = None  # rebuilt lazily in the worker from the (memory-mapped) table
        state["_targets"] = None
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
        """Labels [n] int64 of the kept rows (gathered on first access, then cached)."""
        if self._targets is None:
            self._targets = self._take("label", np.arange(self._length, dtype=np.int64))
        return self._targets

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
        if not self.task.plain:
            return self._task_item(index)
        x = encode(torch_tokens(self._row("tokens", index)), self.v, self.encoding, self.dtype)
        label = self._row("label", index)
        if not self.return_latents:
            return x, label
        return x, label, {k: torch_ints(self._row(k, index)) for k in LATENT_COLUMNS}

    def _task_item(self, index: int):
        """``__getitem__`` of a task other than plain ``class``: the row's batch of one, encoded."""
        batch = self.get_batch(np.array([index], dtype=np.int64))
        x_key, y_key = batch_keys(self.task)
        x = encode(batch[x_key][0], self.v, self.encoding, self.dtype, channels=self.channels)
        target = batch[y_key][0]
        target = int(target) if target.ndim == 0 else target
        if not self.return_latents:
            return x, target
        return x, target, {k: batch[k][0] for k in LATENT_COLUMNS}

    # ---- fast path ------------------------------------------------------------------
    def get_batch(self, indices) -> dict[str, torch.Tensor]:
        """Rows ``indices`` (list / numpy / tensor of ints, or a slice) as integer tensors.

        Returns ``{"tokens": [B, d] uint8 (int32 if v >= 255), "label": [B] int64}``,
        plus ``latents`` / ``synonyms`` / ``placements`` [B, N] int64 with
        ``return_latents``. One numpy gather per column, no per-row Python work. A task
        other than ``class`` gives ``inputs`` and ``targets`` in place of tokens and label.
        """
        if isinstance(indices, slice):
            indices = np.arange(*indices.indices(self._length))
        elif isinstance(indices, torch.Tensor):
            indices = indices.numpy()
        idx = np.asarray(indices)
        require(
            idx.dtype.kind in "iu" or idx.size == 0, "indices", indices, "ints (a list, array or tensor), or a slice"
        )
        idx = idx.astype(np.int64, copy=False).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self._length):
            bad = idx.min() if idx.min() < 0 else idx.max()
            raise IndexError(f"invalid parameter indices: contains {bad}, must satisfy 0 <= index < {self._length}")
        if self.task.plain:
            batch = {"tokens": torch_tokens(self._take("tokens", idx)), "label": torch_ints(self._take("label", idx))}
        else:
            rows = {"tokens": self._take("tokens", idx), "label": self._take("label", idx)}
            task = apply_task(self.config, self.task, rows, self.split, self._split_rows(idx))
            batch = task_tensors(self.task, task)
        if self.return_latents:
            batch.update({k: torch_ints(self._take(k, idx)) for k in LATENT_COLUMNS})
        return batch

    def batches(self) -> SRHMBatches:
        """A map-style view whose item for a list of indices is :meth:`get_batch`."""
        return SRHMBatches(self)

    def batch_sampler(self, batch_size: int, **options) -> SRHMBatchSampler:
        """An :class:`SRHMBatchSampler` over this dataset's rows; ``options`` are its keyword
        arguments (``shuffle``, ``seed``, ``drop_last``, ``rank``, ``world_size``)."""
        return SRHMBatchSampler(len(self), batch_size, **options)

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
            batches = self.batch_sampler(
                batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last, rank=rank, world_size=world_size
            )
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
        """``to_device_batch`` with this dataset's v, encoding, dtype and channels: ``(x [B, C, d], y)``.

        y: the label [B] (``class``) or the task's targets.
        """
        return to_device_batch(batch, self.v, self.encoding, device, self.dtype, non_blocking, self.channels)

    def __repr__(self) -> str:
        return (
            f"SRHMDataset(config={self.config.name!r}, split={self.split!r}, rows={len(self)}, "
            f"encoding={self.encoding!r}, return_latents={self.return_latents}, task={self.task})"
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
