"""On-the-fly SRHM rows as a torch ``IterableDataset`` (format.md §5, §9).

Rows ``start..stop-1`` of a split are cut into chunks of ``chunk_size`` consecutive rows
(chunk j holds rows ``start + j*chunk_size ..``). With W DataLoader workers and R
distributed ranks, worker w of rank r generates chunks j = w*R + r, w*R + r + W*R, ...
So:

* every row is produced at most once over all ranks and workers (no duplicate); with
  ``even_ranks=False`` exactly once (no gap either), with ``even_ranks=True`` (the
  default) every rank gets the same number of rows and of chunks (batches), so DDP
  steps stay in lockstep, and the last ``(stop - start) % R`` rows (fewer than R) are
  dropped, as ``DistributedSampler(drop_last=True)`` does: the rows that do not fill
  a whole round of R chunks are shared equally, one shorter chunk per rank;
* rank r receives chunks r, r + R, r + 2R, ... and, because ``DataLoader`` reads its
  workers round-robin, in that order whatever W is: the stream a rank sees does not
  depend on the number of workers (in item mode, when the DataLoader's batch size is
  ``chunk_size``; in batch mode always);
* row i is ``generate(cfg, split, i, i+1)``, identical to the published split's row i.

Endless streams (``stop=None``): the ``train`` split continues past its published size
through the rest of the data space (global indices up to min(P_max, 2**62)): rows beyond
the published ``train`` are fresh samples of the same uniform permutation, disjoint
from ``test`` and ``probe`` and never repeated; the stream ends only when the data space
is exhausted (which for most paper configs is never in practice). ``test`` and ``probe``
end at their published size.

Generation on the training device (``device=``): the rows are computed by
:class:`~srhm_datasets.torch_data.generator.TorchGenerator` with torch ops on that device,
bit-identical to ``generate``; batches (and their encodings, :meth:`SRHMStream.to_device`)
never leave it. Iterate such a stream in the training process (no DataLoader workers for an
accelerator).
"""

from __future__ import annotations

import dataclasses

import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..catalog import get_config
from ..config import ParameterTypeError, require, require_int
from ..generate import generate
from ..sampler import split_limit
from ..tasks import apply_task
from .encoding import (
    check_device,
    check_encoding,
    check_float_dtype,
    encode,
    to_device_batch,
    torch_ints,
    torch_tokens,
)
from .generator import device_generator
from .splits import LATENT_COLUMNS
from .tasks import adapter_task, batch_keys, input_channels, task_tensors, torch_apply_task
from .world import resolve_world


class SRHMStream(IterableDataset):
    """Rows ``start..stop-1`` of a split, generated on the fly, sharded without overlap.

    Parameters
    ----------
    cfg : SRHMConfig or str
        The config (as :func:`srhm_datasets.get_config` takes it).
    split : {"train", "test", "probe"}
        ``train``, ``test`` or ``probe``.
    start, stop : int
        the row range; ``stop=None`` is the end of the split for test / probe
        and the end of the data space for train (an endless stream, see module doc).
        ``stop`` may exceed the published ``train`` size (same permutation, new rows).
    encoding : {"whiten", "onehot", "tokens"}
        ``whiten``, ``onehot`` or ``tokens`` (format.md §7), for item mode and
        :meth:`to_device`.
    batch_size : int or None
        None (item mode): yields ``(x [v, d] float, label int)`` encoded on
        the CPU, one chunk at a time. An int (batch mode, the fast path): yields dicts
        ``tokens [B, d]`` uint8 (int32 if v >= 255), ``label [B]`` int64 (plus latent
        columns [B, N]), to use with ``DataLoader(stream, batch_size=None)`` and
        :meth:`to_device`; the chunk size is then ``batch_size``.
    return_latents : bool
        add ``latents`` / ``synonyms`` / ``placements`` (int64, heap order):
        items ``(x, label, extras)`` with [N] tensors, batches with [B, N] tensors.
    chunk_size : int or None
        rows per generated chunk and unit of sharding in item mode (default
        1024). Use the DataLoader's batch size to make item-mode order independent of
        the number of workers.
    rank, world_size : int or None
        distributed shard; default those of an initialised
        ``torch.distributed`` (resolved when the stream is built or pickled to
        workers), else 0 / 1.
    even_ranks : bool
        True (default): every rank receives the same number of rows,
        ``(stop - start) // world_size``, in the same number of chunks (batches), so
        no rank waits for another on a collective (DDP's all-reduce) at the end. The
        ``(stop - start) % world_size`` rows at the end of the range (fewer than
        ``world_size``) are dropped. Rows are dealt in rounds of ``world_size`` whole
        chunks; the rows after the last whole round (fewer than
        ``world_size * chunk_size``) are split into one shorter chunk per rank of
        ``((stop - start) // world_size) % chunk_size`` rows. False: every row of the
        range exactly once, the last chunk possibly shorter and ranks possibly one
        chunk apart (rank r gets ``len(stream)`` of its own). With ``world_size = 1``
        both are the same.
    dtype : torch.dtype
        float dtype of the encodings.
    task, context, mask_rate, noise, task_key
        The task (format.md §15; ``tasks.make_task``): ``class`` (default: today's items
        and batches, bit for bit), ``last``, ``mlm`` or ``next``, with its parameters
        (``task_key`` is the task's ``key``). Items become ``(x, target)`` (an int for
        ``class`` and ``last``, an int64 tensor [d] for ``mlm``, [d-1] for ``next``);
        batches of a task other than ``class`` hold ``inputs`` (codes, uint8 or int32) and
        ``targets`` (int64, -100 where unscored) in place of ``tokens`` and ``label``;
        onehot / whiten have ``input_channels`` channels (v + 2 for ``last`` and ``mlm``,
        format.md §7).
    device : torch.device or str or None
        None (default): rows generated by numpy on the CPU, for DataLoader workers.
        A torch device (``cpu``, ``cuda``, ``cuda:N``, ``mps``; ``default_device()`` to
        autodetect): rows generated there by torch, the same values; batches are tensors
        on that device (tokens uint8, or int32 if v >= 255; the other columns int64), item
        mode encodes there, and :meth:`to_device` defaults to it. An accelerator stream
        is iterated in the main process (a DataLoader worker raises ValueError).

    Resuming: ``state_dict(rows_consumed)`` gives the state after every rank received
    ``rows_consumed`` rows (a multiple of the chunk size); a new stream with
    ``load_state_dict(state)`` continues exactly where those left off, and so does this
    stream at the next pass of a ``DataLoader`` it runs in, persistent workers included
    (``start`` is kept in shared memory). Or pass ``start`` directly.

    Raises
    ------
    TypeError
        An argument of the wrong type.
    ValueError
        An unknown split, encoding or device, or not ``0 <= start <= stop <=``
        ``sampler.split_limit``.

    Examples
    --------
    >>> import srhm_datasets as srhm
    >>> from srhm_datasets.torch import SRHMStream
    >>> cfg = srhm.get_config("demo")
    >>> x, label = next(iter(SRHMStream(cfg, "test", stop=8)))  # item mode
    >>> x.shape, label
    (torch.Size([4, 16]), 1)
    >>> stream = SRHMStream(cfg, "train", stop=8, batch_size=4)  # batch mode, the fast path
    >>> batch = next(iter(stream))
    >>> batch["tokens"].shape, batch["tokens"].dtype, batch["label"]
    (torch.Size([4, 16]), torch.uint8, tensor([1, 1, 2, 3]))
    >>> stream.to_device(batch, "cpu")[0].shape
    torch.Size([4, 4, 16])
    """

    def __init__(
        self,
        cfg,
        split: str = "train",
        start: int = 0,
        stop: int | None = None,
        encoding: str = "whiten",
        batch_size: int | None = None,
        return_latents: bool = False,
        chunk_size: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        dtype: torch.dtype = torch.float32,
        even_ranks: bool = True,
        device=None,
        task: str = "class",
        context: int | None = None,
        mask_rate: float | None = None,
        noise: float = 0.0,
        task_key: int = 0,
    ):
        super().__init__()
        require(isinstance(even_ranks, bool), "even_ranks", even_ranks, "True or False", ParameterTypeError)
        self.device = None if device is None else check_device(device)
        self.even_ranks = even_ranks
        self.cfg = get_config(cfg)
        self.split = split
        self.task = adapter_task(self.cfg, task, context, mask_rate, noise, task_key)
        self.channels = input_channels(self.cfg.v, self.task)
        self.limit = split_limit(self.cfg, split)
        self.encoding = check_encoding(encoding, "encoding")
        self.return_latents = bool(return_latents)
        self.dtype = check_float_dtype(dtype)
        batch_size = None if batch_size is None else require_int("batch_size", batch_size, 1, why="or None")
        chunk_size = None if chunk_size is None else require_int("chunk_size", chunk_size, 1, why="or None")
        if batch_size is not None and chunk_size is not None and chunk_size != batch_size:
            raise ValueError(
                f"invalid parameter chunk_size={chunk_size}: must equal batch_size={batch_size} "
                "in batch mode (or be None)"
            )
        self.batch_size = batch_size
        self.chunk_size = batch_size or chunk_size or 1024
        self.endless = stop is None and split == "train"
        self.stop = self.limit if stop is None else stop
        # the first row, in shared memory: DataLoader workers (persistent ones included) read it
        # at every pass, so load_state_dict in the main process reaches them (see load_state_dict)
        self._start = torch.zeros((), dtype=torch.int64).share_memory_()
        self._set_range(start)
        resolve_world(rank, world_size)  # validates explicit values early
        self._rank, self._world_size = rank, world_size
        self._pin_world()

    # ---- range and world -------------------------------------------------------------
    def _set_range(self, start: int) -> None:
        why = f"rows of split {self.split!r} of {self.cfg.name} a stream can produce"
        stop = self.stop = require_int("stop", self.stop, 0, self.limit, why)
        start = require_int("start", start, 0, stop, f"stop = {stop}")
        self._start.fill_(start)
        size = self.cfg.split_sizes()[self.split]
        # Rows past the published train size: the same permutation with a larger n_train.
        self._gen_cfg = dataclasses.replace(self.cfg, n_train=stop) if stop > size else self.cfg

    @property
    def start(self) -> int:
        """First row of the range (moved by :meth:`load_state_dict`)."""
        return int(self._start)

    def _pin_world(self) -> None:
        dist = torch.distributed
        if (self._rank is None or self._world_size is None) and dist.is_available() and dist.is_initialized():
            self._rank, self._world_size = resolve_world(self._rank, self._world_size)

    def __getstate__(self):
        self._pin_world()  # workers do not see the parent's process group
        return dict(self.__dict__)

    @property
    def world(self) -> tuple[int, int]:
        """``(rank, world_size)`` this stream shards for."""
        return resolve_world(self._rank, self._world_size)

    # ---- sizes ---------------------------------------------------------------------
    def _even_split(self, start: int) -> tuple[int, int]:
        """``even_ranks``: (whole chunks per rank, rows of each rank's last shorter chunk) from row ``start``."""
        _, R = self.world
        return divmod((self.stop - start) // R, self.chunk_size)

    def _rank_counts(self) -> tuple[int, int]:
        """(chunks, rows) this rank receives."""
        rank, R = self.world
        if self.even_ranks:
            whole, tail = self._even_split(self.start)
            return whole + (tail > 0), whole * self.chunk_size + tail
        n = self.stop - self.start
        chunks = -(-n // self.chunk_size)
        mine = (chunks - rank + R - 1) // R if chunks > rank else 0
        rows = mine * self.chunk_size
        if mine and (chunks - 1) % R == rank:
            rows -= chunks * self.chunk_size - n  # the last, shorter chunk is this rank's
        return mine, rows

    def _chunk(self, i: int, rank: int, start: int) -> tuple[int, int] | None:
        """Rows [a, b) of chunk i of ``rank`` (global chunk i*R + rank) of the range from ``start``,
        None past the end."""
        _, R = self.world
        c = self.chunk_size
        if self.even_ranks:
            whole, tail = self._even_split(start)
            if i < whole:
                a = start + (i * R + rank) * c
                return a, a + c
            if i == whole and tail:
                a = start + whole * R * c + rank * tail
                return a, a + tail
            return None
        a = start + (i * R + rank) * c
        return (a, min(a + c, self.stop)) if a < self.stop else None

    def __len__(self) -> int:
        """Items (rows) in item mode, batches in batch mode, that this rank receives."""
        chunks, rows = self._rank_counts()
        return chunks if self.batch_size else rows

    @property
    def v(self) -> int:
        return self.cfg.v

    # ---- iteration -------------------------------------------------------------------
    def chunk_ranges(self):
        """(first row, stop row) of the chunks of this process (rank and worker), in order."""
        info = get_worker_info()
        worker, W = (info.id, info.num_workers) if info is not None else (0, 1)
        rank, _ = self.world
        start = self.start  # read once: a pass keeps the range it began with
        i = worker
        while (rows := self._chunk(i, rank, start)) is not None:
            yield rows
            i += W

    def _batch(self, a: int, b: int) -> dict[str, torch.Tensor]:
        latents = LATENT_COLUMNS if self.return_latents else ()
        if self.device is not None:
            gen = device_generator(self._gen_cfg, self.device)
            batch = gen.rows(self.split, a, b, ("tokens", "label") + latents)
            if self.task.plain:
                return batch
            extras = {k: batch[k] for k in latents}
            return {**torch_apply_task(gen, self.task, batch, self.split, a), **extras}
        rows = generate(self._gen_cfg, self.split, a, b, workers=1)
        if self.task.plain:
            batch = {"tokens": torch_tokens(rows["tokens"]), "label": torch.from_numpy(rows["label"])}
        else:
            batch = task_tensors(self.task, apply_task(self.cfg, self.task, rows, self.split, a))
        batch.update({k: torch_ints(rows[k]) for k in latents})
        return batch

    def __iter__(self):
        if self.device is not None and torch.device(self.device).type != "cpu":
            bound = "cpu or None inside a DataLoader worker (iterate an accelerator stream in the main process)"
            require(get_worker_info() is None, "device", self.device, bound)
        x_key, y_key = batch_keys(self.task)
        for a, b in self.chunk_ranges():
            batch = self._batch(a, b)
            if self.batch_size:
                yield batch
                continue
            x = encode(batch[x_key], self.v, self.encoding, self.dtype, channels=self.channels)
            targets = batch[y_key].tolist() if batch[y_key].ndim == 1 else batch[y_key]
            if self.return_latents:
                extras = [batch[k] for k in LATENT_COLUMNS]
                for i, target in enumerate(targets):
                    yield x[i], target, {k: e[i] for k, e in zip(LATENT_COLUMNS, extras)}
            else:
                yield from zip(x, targets)

    def to_device(self, batch: dict, device=None, non_blocking: bool = True):
        """``to_device_batch`` with this stream's v, encoding, dtype and channels: ``(x [B, C, d], y)``.

        y: the label [B] (``class``) or the task's targets. ``device=None``: the stream's
        ``device`` if it has one, else ``default_device()``.
        """
        device = self.device if device is None else device
        return to_device_batch(batch, self.v, self.encoding, device, self.dtype, non_blocking, self.channels)

    # ---- resuming --------------------------------------------------------------------
    def state_dict(self, rows_consumed: int = 0) -> dict:
        """State after each rank received ``rows_consumed`` rows of this stream.

        ``rows_consumed`` must be a multiple of ``chunk_size`` (whole chunks; batch mode:
        batches * batch_size), the same on every rank, or the rank's whole share.
        """
        _, R = self.world
        _, total = self._rank_counts()
        if rows_consumed == total:  # every rank finished its share
            start = self.stop
        elif (
            isinstance(rows_consumed, bool)
            or not isinstance(rows_consumed, int)
            or rows_consumed < 0
            or (rows_consumed % self.chunk_size)
        ):
            raise ValueError(
                f"invalid parameter rows_consumed={rows_consumed!r}: must be a multiple of "
                f"chunk_size={self.chunk_size} or this rank's total {total}"
            )
        else:
            start = min(self.start + rows_consumed * R, self.stop)
        return {
            "config": self.cfg.name,
            "split": self.split,
            "start": start,
            "stop": None if self.endless else self.stop,
            "chunk_size": self.chunk_size,
            "even_ranks": self.even_ranks,
            "task": dataclasses.asdict(self.task),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (from :meth:`state_dict`): sets ``start``.

        Also for a stream already running in a ``DataLoader`` (``persistent_workers=True``
        included): ``start`` lives in shared memory and every worker reads it when a pass
        begins, so the next ``iter(loader)`` continues from ``state``; a pass in progress
        finishes as it began. ValueError when ``state`` is of another stream (config,
        split, chunk size, ranks, stop, task).
        """
        if not isinstance(state, dict):
            raise TypeError(f"invalid parameter state={state!r}: must be a dict from SRHMStream.state_dict()")
        checked = [("config", self.cfg.name), ("split", self.split), ("chunk_size", self.chunk_size)]
        if "even_ranks" in state:  # states written before the option have no such key
            checked.append(("even_ranks", self.even_ranks))
        if "task" in state:  # likewise: a state without a task is of a class stream
            checked.append(("task", dataclasses.asdict(self.task)))
        for key, mine in checked:
            if state.get(key) != mine:
                raise ValueError(f"invalid parameter state[{key!r}]={state.get(key)!r}: must be {mine!r}")
        if state.get("stop") != (None if self.endless else self.stop):
            raise ValueError(f"invalid parameter state['stop']={state.get('stop')!r}: this stream stops at {self.stop}")
        self._set_range(state["start"])

    def __repr__(self) -> str:
        rank, R = self.world
        return (
            f"SRHMStream(cfg={self.cfg.name!r}, split={self.split!r}, start={self.start}, stop={self.stop}, "
            f"encoding={self.encoding!r}, batch_size={self.batch_size}, chunk_size={self.chunk_size}, "
            f"rank={rank}, world_size={R}, even_ranks={self.even_ranks}, device={self.device!r}, task={self.task})"
        )
