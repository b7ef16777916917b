"""Train G runs of ``srhm train`` at once: one stacked model, one forward and backward per step.

``train_group(options)`` trains the runs described by a list of ``TrainOptions`` as the
members of one :class:`~.stacked.StackedNet`. Members share the network (arch, width, norm,
bias), the data source and the optimiser settings (``GROUP_SHARED``); they may differ in
``P``, ``seed``, ``out``, the step budget, the evaluation schedule, the loss threshold and
the label shuffling. Every member follows the trajectory of the single run
``train(options[g])`` (equal up to floating-point rounding of batched products; the tests
check it in float64) and writes the same run folder (``checkpoint.pt``, ``results.json``),
with one more field, ``training.group``, naming the group it was trained in. Its clock
fields are the group's: ``wall_time_s`` runs from the group's start to the member's stop,
``samples_per_s`` is the member's samples over the group's training time until then.

How each member stays its own run:

- initialisation: the single networks are built with their seeds and stacked
  (``stacked.build_stacked``);
- batches: member g draws from ``train[:P_g]`` with the batch stream of a single run,
  ``train.BatchStream(P_g, seed_g)`` (epoch permutations, consecutive ``batch_size``
  slices, an epoch's tail continuing into the next permutation);
- loss: the SUM over members of each member's mean cross-entropy, so the gradient with
  respect to member g's slice of a stacked parameter is member g's own gradient (no
  operation of the stacked forward mixes members);
- optimiser: ``torch.optim.SGD`` (momentum, no weight decay, no Nesterov) is elementwise
  per parameter entry: ``buf = momentum * buf + grad; p -= lr * buf``. Applied to the
  stacked tensors it performs, entry by entry, exactly the updates of G independent
  optimisers (same lr and momentum, which ``GROUP_SHARED`` requires);
- evaluation: member g is evaluated on the test rows at its own steps (every
  ``eval_every_g`` steps and at its last step), recorded and judged by ``train.evaluation_point``
  (train loss below its threshold, divergence) or its step budget, as a single run;
- a stopped member is frozen: its momentum buffer is zeroed and its gradient masked, so
  its parameters no longer change (``p -= lr * 0``); when at most half the members of the
  stack are still training, the stacked tensors (parameters, momentum buffers, batch
  indices, labels) are rebuilt without the stopped ones, so they cost nothing afterwards.

Device: the train tokens of the largest P (uint8), the members' labels and the test rows
are moved to the device once; batch indices are drawn on the host ``CHUNK_STEPS`` steps
ahead and moved in one copy; inputs are encoded on the device. The host waits for the
device only at evaluation points. ``amp`` and ``compile`` act on CUDA as in ``train.py``.
Not distributed: under ``torchrun`` with WORLD_SIZE > 1 use ``train``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..config import require
from ..protocol import HIERARCHICAL_ARCHS, forward_rows, run_id
from ..torch_data.encoding import encode, torch_ints, torch_tokens
from .checkpoint import run_checkpoint, write_run
from .models import build_model, count_parameters
from .stacked import build_stacked
from .train import (
    EVAL_BATCH,
    SHUFFLE_SEED_OFFSET,
    BatchStream,
    Log,
    TrainOptions,
    claim_run,
    evaluation_point,
    load_arrays,
    resolve,
    run_results,
    set_up,
)

#: Options every member of a group must share (after ``resolve``).
GROUP_SHARED = (
    "config",
    "data",
    "revision",
    "arch",
    "width",
    "norm",
    "bias",
    "lr",
    "momentum",
    "batch_size",
    "encoding",
    "device",
    "amp",
    "compile",
    "num_test",
    "threads",
)
#: Steps of batch indices drawn ahead and moved to the device in one copy.
CHUNK_STEPS = 64
#: Largest default group.
MAX_GROUP = 16
#: On a CPU a step is bound by memory traffic over the members' training state (parameters,
#: gradients, momentum buffers: 12 bytes a scalar), which stacking cannot share; it removes the
#: per-step overhead, which pays only for small members. Measured (benchmarks/train.py, 2-core
#: EPYC, 32 MiB L3, demo CNN, G = 16): 4.6x member-samples/s at width 128, 2.1x at width 256,
#: none at width 512 (12 MiB a member: 0.75-1.1x for G = 2..16). So on a CPU a member of more
#: than CPU_MEMBER_STATE_BYTES trains alone, and a default group's state stays within
#: CPU_GROUP_STATE_BYTES.
CPU_MEMBER_STATE_BYTES = 8 * 2**20
CPU_GROUP_STATE_BYTES = 64 * 2**20


# ---------------------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------------------
#: What a run must have (after ``resolve``) to be stacked into a group, option -> its allowed values: a
#: hierarchical reference network trained with SGD at the mean-field learning rate on the plain ``class`` task.
STACKABLE = {
    "arch": HIERARCHICAL_ARCHS,
    "factory": (None,),
    "task": ("class",),
    "noise": (0.0,),
    "optimizer": ("sgd",),
    "weight_decay": (0.0,),
    "lr_scaling": ("width",),
}


def groupable(opt: TrainOptions) -> bool:
    """Whether a run of the resolved ``opt`` can be a member of a group (``STACKABLE``).

    Examples
    --------
    >>> from srhm_datasets import get_config
    >>> opt = TrainOptions(config=get_config("demo"), P=10, optimizer="sgd", weight_decay=0.0, lr_scaling="width")
    >>> groupable(opt), groupable(dataclasses.replace(opt, optimizer="adam"))
    (True, False)
    >>> groupable(dataclasses.replace(opt, arch="transformer"))
    False
    """
    return all(getattr(opt, name) in allowed for name, allowed in STACKABLE.items())


def group_key(opt: TrainOptions) -> tuple:
    """The values of ``GROUP_SHARED`` of resolved options: runs with equal keys can share a group."""
    return tuple(getattr(opt, name) for name in GROUP_SHARED)


def check_group(options: list[TrainOptions]) -> list[TrainOptions]:
    """Resolve every member's options and check they can be trained as one group.

    Raises ValueError (naming the parameter, value and bound) when the list is empty, an
    option is invalid (``train.resolve``), members differ in a ``GROUP_SHARED`` setting,
    two members write the same ``out`` folder, or the process runs under ``torchrun``
    with WORLD_SIZE > 1. Returns the resolved options, in order.
    """
    require(
        isinstance(options, (list, tuple)) and len(options) >= 1, "options", options, "a non-empty list of TrainOptions"
    )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    require(world == 1, "WORLD_SIZE", world, "1 (group training is not distributed; use train under torchrun)")
    resolved = [resolve(opt) for opt in options]
    first = resolved[0]
    for name, allowed in STACKABLE.items():
        require(
            getattr(first, name) in allowed,
            f"options[0].{name}",
            getattr(first, name),
            f"one of {allowed!r} (a group stacks "
            "reference networks trained with SGD on the class task; train other runs one by one)",
        )
    for g, opt in enumerate(resolved[1:], start=1):
        for name in GROUP_SHARED:
            require(
                getattr(opt, name) == getattr(first, name),
                f"options[{g}].{name}",
                getattr(opt, name),
                f"equal to options[0].{name} = {getattr(first, name)!r} (members of a group share {GROUP_SHARED})",
            )
    outs = [str(Path(opt.out).absolute()) for opt in resolved if opt.out is not None]
    dup = sorted({o for o in outs if outs.count(o) > 1})
    require(not dup, "out", dup[:1], "one run folder per member (two members write the same folder)")
    return resolved


def plan_groups(options: list[TrainOptions], group_size: int) -> list[list[int]]:
    """Indices of ``options`` split into groups of at most ``group_size`` runs that can share a group.

    Runs are grouped by ``group_key`` (after ``resolve``), in their order; raises ValueError
    for ``group_size < 1``.
    """
    require(isinstance(group_size, int) and group_size >= 1, "group_size", group_size, "an int >= 1")
    by_key: dict[tuple, list[int]] = {}
    for i, opt in enumerate(options):
        by_key.setdefault(group_key(resolve(dataclasses.replace(opt, out=None))), []).append(i)
    return [idx[k : k + group_size] for idx in by_key.values() for k in range(0, len(idx), group_size)]


def default_group_size(opt: TrainOptions) -> int:
    """A group size for runs like the resolved ``opt``: ``MAX_GROUP`` on CUDA (a step of these small
    networks is launch-bound there); elsewhere 1 when a member's training state exceeds
    ``CPU_MEMBER_STATE_BYTES``, else as many members (at most ``MAX_GROUP``) as keep the stacked
    state within ``CPU_GROUP_STATE_BYTES``."""
    if torch.device(opt.device).type == "cuda":
        return MAX_GROUP
    state = 12 * count_parameters(build_model(opt.arch, opt.config, width=opt.width, norm=opt.norm, bias=opt.bias))
    return 1 if state > CPU_MEMBER_STATE_BYTES else min(MAX_GROUP, CPU_GROUP_STATE_BYTES // state)


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------
def member_labels(train_label: torch.Tensor, opt: TrainOptions) -> torch.Tensor:
    """The labels of ``train[:P]`` member ``opt`` trains on: shuffled as ``train.py`` does for the control."""
    labels = train_label[: opt.P]
    if opt.shuffle_labels:
        g = torch.Generator().manual_seed(opt.seed + SHUFFLE_SEED_OFFSET)
        labels = labels[torch.randperm(opt.P, generator=g).to(labels.device)]
    return labels


@dataclasses.dataclass
class Member:
    """One member of a group: its options, index in the group, batch stream and ``train.Log``."""

    opt: TrainOptions
    index: int
    stream: BatchStream
    log: Log = dataclasses.field(default_factory=Log)
    last_eval: int = 0
    stopped: bool = False
    results: dict | None = None


# ---------------------------------------------------------------------------------------
# the group
# ---------------------------------------------------------------------------------------
class GroupTrainer:
    """The training loop of a group (see the module docstring); ``run()`` returns the members' results."""

    def __init__(self, options: list[TrainOptions]):
        self.t_start = time.perf_counter()
        opts = check_group(options)
        first = self.first = opts[0]
        self.setup = set_up(first)  # threads; amp and compile on CUDA only (not distributed: check_group)
        self.cfg, self.device = first.config, self.setup.device
        self.dev_type = torch.device(self.device).type
        # -- data: the largest P's train rows, every member's labels, the test rows, on the device once
        arrays, self.info = load_arrays(dataclasses.replace(first, P=max(o.P for o in opts)))
        self.tokens = torch_tokens(arrays["train_tokens"]).to(self.device)
        train_label = torch_ints(arrays["train_label"]).to(self.device)
        self.test_tokens = torch_tokens(arrays["test_tokens"]).to(self.device)
        self.test_label = torch_ints(arrays["test_label"]).to(self.device)
        label_dtype = torch.uint8 if self.cfg.nc <= 256 else torch.int64
        self.labels = torch.zeros(len(opts), len(self.tokens), dtype=label_dtype, device=self.device)  # [G, P_max]
        for g, opt in enumerate(opts):
            self.labels[g, : opt.P] = member_labels(train_label, opt).to(label_dtype)
        # -- members, model, optimiser
        self.members = [Member(opt, g, BatchStream(opt.P, opt.seed)) for g, opt in enumerate(opts)]
        self.slots = list(self.members)  # the member of each row of the stack
        self.raw = build_stacked(
            first.arch, self.cfg, [o.seed for o in opts], width=first.width, norm=first.norm, bias=first.bias
        ).to(self.device)
        self.dtype = self.raw.output.beta.dtype
        self.model = torch.compile(self.raw) if self.setup.compile else self.raw
        self.optimizer = self._optimizer()
        self.frozen = torch.zeros(len(opts), dtype=torch.bool, device=self.device)  # rows stopped, still stacked
        self.frozen_rows: set[int] = set()
        self.loss_sum = torch.zeros(len(opts), dtype=torch.float64, device=self.device)
        self.chunk, self.chunk_pos = None, CHUNK_STEPS
        self.step, self.train_time = 0, 0.0
        self.group = {"size": len(opts), "members": [{"P": o.P, "seed": o.seed} for o in opts]}

    def _optimizer(self, old: torch.optim.Optimizer | None = None, old_params=None, rows=None) -> torch.optim.SGD:
        """SGD on the stacked parameters (lr times the width, as train.py); with ``old``, carry its
        momentum buffers over for the kept ``rows``."""
        opt = self.first
        optimizer = torch.optim.SGD(self.raw.parameters(), lr=opt.lr * opt.width, momentum=opt.momentum)
        if old is not None:
            for p_old, p_new in zip(old_params, self.raw.parameters()):
                buf = old.state.get(p_old, {}).get("momentum_buffer")
                if buf is not None:
                    optimizer.state[p_new]["momentum_buffer"] = buf.index_select(0, rows)
        return optimizer

    # -- one step ----------------------------------------------------------------------
    def _next_indices(self) -> torch.Tensor:
        """The batch indices of this step, [G_stack, batch_size] int64 on the device."""
        if self.chunk_pos == CHUNK_STEPS:
            B = self.first.batch_size
            host = torch.stack([m.stream.take(CHUNK_STEPS * B).view(CHUNK_STEPS, B) for m in self.slots], dim=1)
            if self.dev_type == "cuda":
                host = host.pin_memory()
            self.chunk, self.chunk_pos = host.to(self.device, non_blocking=True), 0
        self.chunk_pos += 1
        return self.chunk[self.chunk_pos - 1]

    def _encode(self, tokens: torch.Tensor) -> torch.Tensor:
        return encode(tokens, self.cfg.v, self.first.encoding, self.dtype)

    def _logits(self, model, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=self.dev_type, dtype=self.setup.amp_dtype, enabled=self.setup.amp):
            return model(x).float()

    def train_step(self) -> None:
        idx = self._next_indices()
        G, B = idx.shape
        logits = self._logits(self.model, self._encode(self.tokens[idx]))  # [G, B, nc]
        labels = self.labels.gather(1, idx).long()
        losses = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none").view(G, B).mean(1)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # the sum: each member's slice receives its own mean loss's gradient
        if self.frozen_rows:
            for p in self.raw.parameters():  # frozen rows: no update (their momentum buffers are zero)
                p.grad.masked_fill_(self.frozen.view(-1, *[1] * (p.dim() - 1)), 0)
        self.optimizer.step()
        self.loss_sum += losses.detach() * B
        self.step += 1

    # -- evaluation and stopping ---------------------------------------------------------
    @torch.no_grad()
    def test_errors(self, rows: list[int]) -> list[float]:
        """Test error of the stack's members ``rows`` on the first ``num_test`` test rows."""
        index = torch.tensor(rows, device=self.device)
        params = {name: p.index_select(0, index) for name, p in self.raw.named_parameters()}
        wrong = torch.zeros(len(rows), dtype=torch.float64, device=self.device)
        rows_per_pass = forward_rows(EVAL_BATCH, self.cfg.v, self.cfg.d, self.first.encoding)
        for chunk in torch.arange(self.first.num_test, device=self.device).split(rows_per_pass):
            x = self._encode(self.test_tokens[chunk]).expand(len(rows), -1, -1, -1)
            logits = self._logits(lambda x: functional_call(self.raw, params, (x,)), x)
            wrong += (logits.argmax(-1) != self.test_label[chunk]).sum(1)
        return (wrong / self.first.num_test).tolist()

    def evaluate(self, rows: list[int]) -> None:
        """Evaluation point of the members in ``rows``: curves, best checkpoint, stopping, writing."""
        losses = self.loss_sum.tolist()
        for row, err in zip(rows, self.test_errors(rows)):
            m = self.slots[row]
            train_loss = losses[row] / ((self.step - m.last_eval) * m.opt.batch_size)
            m.last_eval = m.log.step = self.step
            stop = evaluation_point(m.log, err, train_loss, self.raw.member(row), m.opt, master=True)
            if stop is not None or self.step == m.opt.max_steps:
                self.finish(m, stop or "max_steps")
        self.loss_sum[rows] = 0

    def finish(self, m: Member, reason: str) -> None:
        """Member ``m`` stops: its results (``train.run_results`` and ``training.group``) and run folder."""
        log = m.log
        m.stopped, log.stop_reason, log.train_time = True, reason, max(self.train_time, 1e-9)
        run, member = run_id(m.opt), self.raw.member(self.slots.index(m))
        m.results = run_results(m.opt, self.setup, self.info, member, log, time.perf_counter() - self.t_start, run)
        m.results["training"]["group"] = dict(self.group, index=m.index)
        if m.opt.out is not None:
            catalog = self.info["catalog_name"]
            checkpoint = run_checkpoint(m.opt, log.best_state, log.best_step, log.best_err, catalog, run)
            write_run(m.opt.out, checkpoint, m.results)
        log.best_state = None

    def freeze_or_drop(self) -> None:
        """Stopped members leave the update (masked); when at most half the stack trains, the stack is rebuilt."""
        active = [r for r, m in enumerate(self.slots) if not m.stopped]
        if not active or len(active) > len(self.slots) / 2:
            newly = [r for r, m in enumerate(self.slots) if m.stopped and r not in self.frozen_rows]
            for r in newly:
                self.frozen[r] = True
                self.frozen_rows.add(r)
                for p in self.raw.parameters():
                    state = self.optimizer.state.get(p, {})
                    if state.get("momentum_buffer") is not None:
                        state["momentum_buffer"][r].zero_()
            return
        rows = torch.tensor(active, device=self.device)
        old_params = list(self.raw.parameters())
        self.raw.select_(rows)
        self.optimizer = self._optimizer(self.optimizer, old_params, rows)
        self.slots = [self.slots[r] for r in active]
        self.frozen, self.frozen_rows = self.frozen[rows], set()
        self.loss_sum, self.labels = self.loss_sum[rows], self.labels[rows]
        self.chunk = self.chunk[:, rows]

    def run(self) -> list[dict]:
        first = self.first
        progress = None
        if first.progress:
            from tqdm.auto import tqdm

            progress = tqdm(
                total=max(m.opt.max_steps for m in self.members),
                unit="step",
                leave=False,
                desc=f"{first.arch} group of {len(self.members)}",
            )
        t_train = time.perf_counter()
        while any(not m.stopped for m in self.slots):
            self.train_step()
            due = [
                r
                for r, m in enumerate(self.slots)
                if not m.stopped and (self.step % m.opt.eval_every == 0 or self.step == m.opt.max_steps)
            ]
            if not due:
                continue
            self.train_time += time.perf_counter() - t_train
            self.evaluate(due)
            self.freeze_or_drop()
            if progress is not None:
                progress.n = self.step
                progress.set_postfix(training=sum(not m.stopped for m in self.members))
            t_train = time.perf_counter()
        if progress is not None:
            progress.close()
        return [m.results for m in self.members]


def train_group(options: list[TrainOptions]) -> list[dict]:
    """Train the runs ``options`` as one group; return their results dicts, in order.

    Each member's results (and run folder, when its ``out`` is set) are those of
    ``train(options[g])`` up to floating-point rounding, plus ``training.group``
    (``size``, ``index``, ``members``: the P and seed of every member). Raises ValueError
    before any work when the options are invalid or cannot share a group (``check_group``);
    every member's run folder is held while the group trains (``train.claim_run``).
    """
    trainer = GroupTrainer(options)
    with contextlib.ExitStack() as held:
        for m in trainer.members:
            held.enter_context(claim_run(m.opt))
        return trainer.run()
