"""torch adapters (format.md §7, §9): encodings on the tokens' device, map-style and streaming data.

* :func:`encode`: integer tokens [B, d] -> [B, v, d] float (onehot / whiten) or [B, d]
  ids (tokens), built on the tokens' device. The fast path: ship uint8 token batches to
  the training device and encode there.
* :class:`SRHMDataset`: map-style over a published split (a ``datasets.Dataset``, a
  release folder or a Hub repo), items ``(x [v, d], label)``; ``.loader()`` +
  ``.to_device()`` is the batched fast path.
* :class:`SRHMStream`: an ``IterableDataset`` generating rows on the fly, sharded over
  DataLoader workers and distributed ranks, no row twice; by default (``even_ranks``)
  every rank gets the same number of rows and batches (fewer than world_size rows at
  the end dropped), ``even_ranks=False`` gives every row exactly once.
* :func:`to_device_batch`: a token batch dict -> ``(x, label)`` on a device.
* :class:`TorchGenerator`: the generator (rows, ``expand``, perturbations) with torch ops
  on any device, bit-identical to the numpy one; ``SRHMStream(..., device=...)`` uses it.
* :class:`SRHMBatchSampler`: the row-index batches of :meth:`SRHMDataset.loader`, sharded
  like ``DistributedSampler``.
* :func:`default_device`: cuda, then mps, then cpu; :data:`ENCODINGS`: the encodings.
* Tasks (format.md §15): the adapters take ``task=`` (``class``, ``last``, ``mlm``,
  ``next``) and its parameters; :func:`torch_apply_task` computes a task on a
  TorchGenerator's device, :func:`input_channels` the channels of its encoded inputs.

These are the public names (``__all__``). The implementation, :mod:`srhm_datasets.torch_data`,
is internal.
"""

from __future__ import annotations

from .torch_data.batch_sampler import SRHMBatchSampler
from .torch_data.encoding import ENCODINGS, default_device, encode, to_device_batch
from .torch_data.generator import TorchGenerator
from .torch_data.mapstyle import SRHMDataset
from .torch_data.stream import SRHMStream
from .torch_data.tasks import input_channels, torch_apply_task

__all__ = [
    "ENCODINGS",
    "SRHMBatchSampler",
    "SRHMDataset",
    "SRHMStream",
    "TorchGenerator",
    "default_device",
    "encode",
    "input_channels",
    "to_device_batch",
    "torch_apply_task",
]
