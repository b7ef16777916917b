"""One training run of a reference network on ``train[:P]`` of an SRHM config.

Read top to bottom, in the shape of nanoGPT's ``train.py``: options (``resolve``) -> set-up
(``set_up``: device, distributed) -> data (``device_data``) -> model and optimiser
(``build_network``) -> one loop (``training_loop``: SGD steps, periodic evaluation on
``test``, best parameters) -> results (``run_results``, ``checkpoint.write_run``).

Protocol (format.md §10.2; the paper, section 5): cross-entropy, SGD with momentum
0.9, constant learning rate ``lr * width`` (mean-field scaling), stop when the train
loss falls below 1e-3 or at the step budget; the test error of every evaluation is
recorded and the parameters with the lowest test error are kept as the checkpoint.
The same loop trains a user's model (``factory``, format.md §10.5) on any task (format.md
§15: cross-entropy and test error over the scored targets), with SGD, Adam or AdamW.

Data: ``train[:P]`` and the first ``num_test`` rows of ``test``, from the generator or
from a release (``data=`` a local folder or a Hub dataset repo). The integer tokens
(uint8, int32 when v >= 255) live on the training device; each batch is encoded there
(``srhm_datasets.torch.encode``).

Distributed: under ``torchrun`` (RANK and WORLD_SIZE set, WORLD_SIZE > 1) every rank
holds the data, all ranks draw the same global batch of ``batch_size`` rows and each
takes its share ``batch[rank::world_size]`` (the same partition a DistributedSampler
makes); gradients are averaged by DistributedDataParallel, evaluation counts are
summed over ranks, and only rank 0 writes files.

Run folder: ``checkpoint.pt`` and ``results.json`` are written together at the end, after
the results validate: the checkpoint goes to a temp name, an old ``results.json`` is
retired, then the checkpoint and the results are renamed into place. A folder therefore
holds either a finished run (both files, from the same run) or no results at all; it
never pairs a checkpoint of one run with the results of another. A folder that already
holds a finished run is refused unless ``overwrite`` (``--overwrite``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import re
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from huggingface_hub import HfApi
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..config import SRHMConfig, check_config, format_count, is_int, require, require_type
from ..files import check_output_folder, claim_output
from ..generate import generate
from ..hashing import rules_hash
from ..protocol import (
    CHECKPOINT_FILE,
    CUSTOM_ARCH,
    DEFAULT_FACTORY_LR,
    DEFAULT_MAX_STEPS,
    MAX_PARAMETERS,
    MAX_TEST,
    OPTION,
    OPTIONS,
    RESULTS_FILE,
    TRANSFORMER_HEADS,
    TrainOptions,
    arch_defaults,
    arch_encodings,
    arch_inputs,
    default_batch_size,
    default_lr,
    forward_rows,
    num_parameters,
    option_applies,
    run_id,
    target_classes,
)
from ..provenance import dataset_info, git_commit, package_info
from ..release.load import HubUnreachable, load_split
from ..release.rules_file import load_rules
from ..results import FORMAT
from ..tasks import DEFAULT_MASK_RATE, HIDING_TASKS, IGNORE_INDEX, Task, apply_task, make_task
from ..torch_data.encoding import check_device, encode, torch_ints, torch_tokens
from ..torch_data.tasks import scored_pairs, task_loss
from .checkpoint import load_checkpoint, read_checkpoint, run_checkpoint, write_run
from .factory import build_factory_model, default_layers, error_line, factory_record, load_factory, model_name
from .models import build_model, count_parameters
from .transformer import build_transformer

#: Test rows per forward pass of an evaluation.
EVAL_BATCH = 2048
#: Offset of the shuffled-label control's generator seed.
SHUFFLE_SEED_OFFSET = 1_000_003

__all__ = [
    "EVAL_BATCH",
    "TrainOptions",
    "check_data",
    "check_causal",
    "check_options",
    "check_scopes",
    "check_run_folder",
    "claim_run",
    "git_commit",
    "load_arrays",
    "load_checkpoint",
    "read_checkpoint",
    "resolve",
    "test_error",
    "train",
    "write_run",
]


# ---------------------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------------------
#: A Hub dataset repo id, ``org/name``.
_HUB_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_data(data: str | os.PathLike | None) -> None:
    """``data`` is None, an existing folder, or shaped like a Hub repo id ``org/name`` (else ValueError)."""
    if data is None or os.path.isdir(data):
        return
    bound = "an existing release folder or a Hub dataset repo id 'org/name'"
    require(not os.path.exists(data), "data", str(data), f"{bound} (it is a file, not a folder)")
    require(bool(_HUB_REPO.match(str(data))), "data", str(data), f"{bound} (no such folder)")


#: Seeds are drawn from 0 <= seed < SEED_BOUND (torch generators take 64-bit seeds; the
#: shuffled-label control adds an offset).
SEED_BOUND = 2**62


def check_option(name: str, value) -> None:
    """Check one option of ``protocol.OPTIONS`` against its declaration: ``ParameterTypeError`` (a TypeError)
    for a value of another type (a bool is no number), ValueError naming it, its value and the bound otherwise.

    Examples
    --------
    >>> check_option("optimizer", "adamw")
    >>> check_option("weight_decay", -0.1)
    Traceback (most recent call last):
    ...
    ValueError: invalid parameter weight_decay=-0.1: must satisfy None or a finite weight_decay >= 0
    """
    o = OPTION[name]
    if o.kind is not str and not (value is None and o.optional):
        require_type(value, (int, float) if o.kind is float else o.kind, name, o.type_text())
    require(o.accepts(value), name, value, o.bound_text())


def _check_model(opt: TrainOptions) -> None:
    """What the model can do: a hierarchical network trains on ``class`` with float inputs, the transformer
    on every task with token ids (``protocol.arch_encodings``; its ``TRANSFORMER_HEADS`` divide the width),
    a user's model (``factory``) on every task; ``last`` and ``mlm`` inputs hold MASK codes; the task's
    parameters (``tasks.make_task``); the shuffled-label control is a ``class`` run."""
    if opt.factory is None:
        require(
            opt.task == "class" or opt.arch == "transformer",
            "task",
            opt.task,
            f"'class' for the reference network {opt.arch} (its readout has nc outputs); "
            "train other tasks with --arch transformer or --factory",
        )
        encodings = arch_encodings(opt.arch)
        require(
            opt.encoding is None or opt.encoding in encodings,
            "encoding",
            opt.encoding,
            f"one of {encodings} for the reference network {opt.arch}: {arch_inputs(opt.arch)}",
        )
        width = opt.width if opt.width is not None else arch_defaults(opt.arch)["width"]
        ok = opt.arch != "transformer" or width % TRANSFORMER_HEADS == 0
        require(ok, "width", width, f"a multiple of the transformer's {TRANSFORMER_HEADS} heads")
    run_task(opt)
    require(not opt.shuffle_labels or opt.task == "class", "shuffle_labels", True, "False unless task='class'")
    require(opt.name is None or opt.factory is not None, "name", opt.name, "None unless a factory is given")
    require(
        opt.factory is None or opt.lr_scaling != "width",
        "lr_scaling",
        opt.lr_scaling,
        "'none' or None with a factory (lr times the width needs a reference network's width)",
    )


def check_scopes(opt: TrainOptions, given=()) -> None:
    """An option that does not apply to the run (``Option.applies``, judged with the network's defaults
    filled in) keeps its default and is not given: ``--width`` with ``--factory``, ``--momentum`` with AdamW,
    ... would be ignored, so they are refused (ValueError naming the option, its value and the runs it applies
    to). ``given``: the names of the options the user set (on the command line, in a sweep file), refused there
    even at their default value (``--momentum 0.9 --optimizer adamw``).

    Examples
    --------
    >>> from srhm_datasets import get_config
    >>> opt = TrainOptions(config=get_config("demo"), P=10, optimizer="adamw")
    >>> check_scopes(opt)
    >>> check_scopes(opt, given=["momentum"])
    Traceback (most recent call last):
    ...
    ValueError: invalid parameter momentum=0.9: must satisfy not given: it applies only to --optimizer sgd
    """
    filled = {k: v for k, v in arch_defaults(opt.arch, opt.factory).items() if getattr(opt, k) is None}
    run = dataclasses.replace(opt, **filled)
    for o in OPTIONS:
        value = getattr(opt, o.name)
        if option_applies(run, o.name):
            continue
        require(value == o.default, o.name, value, f"{o.default!r} (its default): it applies only to {o.applies}")
        require(o.name not in given, o.name, value, f"not given: it applies only to {o.applies}")


def _check_resources(opt: TrainOptions) -> None:
    """``width`` of a reference network by its parameter count (arithmetic, before anything is built) and
    ``threads`` by the CPU count (torch crashes far above it)."""
    cpus = os.cpu_count() or 1
    require(opt.threads is None or opt.threads <= cpus, "threads", opt.threads, f"threads <= {cpus} (the CPU count)")
    if opt.factory is not None:
        return
    width = opt.width if opt.width is not None else arch_defaults(opt.arch)["width"]
    count = num_parameters(opt.arch, opt.config, width, opt.bias, opt.task) if width <= MAX_PARAMETERS else None
    require(
        count is not None and count <= MAX_PARAMETERS,
        "width",
        width,
        f"a network of at most 2**31 = {MAX_PARAMETERS:,} parameters ({opt.arch} on {opt.config.name} at this width "
        + (f"has {format_count(count)})" if count is not None else "has more: its readout alone has width * nc)"),
    )


def _check_sources(opt: TrainOptions) -> None:
    for name in ("out", "data"):
        value = getattr(opt, name)
        require(value is None or isinstance(value, (str, os.PathLike)), name, value, "None, a str or a path")
    require(opt.revision is None or isinstance(opt.revision, str), "revision", opt.revision, "None or a str")
    check_data(opt.data)


def check_options(opt: TrainOptions, given=()) -> None:
    """Check every field of ``opt`` (type and bound) before any work, naming the field.

    Raises ``TypeError`` for a field of the wrong type (``config`` not an SRHMConfig, a
    number or flag of another type: ``protocol.OPTIONS``), ``ValueError`` for a value out of
    bounds or an option that does not apply to the run (``check_scopes``; ``given``: the options the
    user set). Checks nothing that needs the data (the data source's shape is checked when
    it is read) or a folder (``out``: ``check_run_folder``) but that ``data`` exists.
    """
    cfg = check_config(opt.config, "config")
    for o in OPTIONS:
        if o.name != "data":  # a str or a path: _check_sources
            check_option(o.name, getattr(opt, o.name))
    require_type(opt.overwrite, bool, "overwrite", "True or False")
    require_type(opt.P, int, "P", "an int")
    sizes = cfg.split_sizes()
    require(
        is_int(opt.P) and 1 <= opt.P <= sizes["train"],
        "P",
        opt.P,
        f"1 <= P <= train size {sizes['train']} of {cfg.name}",
    )
    _check_model(opt)
    check_scopes(opt, given)
    _check_resources(opt)
    _check_sources(opt)
    require(sizes["test"] >= 1, "test size", sizes["test"], f">= 1 (data space of {cfg.name} too small)")


def check_run_folder(out, overwrite: bool) -> Path:
    """The run folder ``out`` may receive a run: refused (ValueError naming ``out``) when it is the
    current folder or a parent of it, a folder srhm did not write, another kind of srhm folder, a
    finished run without ``overwrite``, or (with ``overwrite``) a run folder holding other files."""
    path = check_output_folder(out, "run", replace=overwrite)
    require(
        overwrite or not (path / RESULTS_FILE).is_file(),
        "out",
        str(out),
        f"a folder without a finished run (it holds {RESULTS_FILE}); choose another --out or pass --overwrite",
    )
    return path


@contextlib.contextmanager
def claim_run(opt: TrainOptions):
    """Hold the run folder ``opt.out`` for the body (``files.claim_output``: another writer is refused with
    ``files.FolderInUse``; a failed run leaves no new folder), checked again under its lock; only in the
    process that writes it (rank 0; nothing when ``opt.out`` is None)."""
    if opt.out is None or int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    with claim_output(opt.out, "run", replace=opt.overwrite):
        check_run_folder(opt.out, opt.overwrite)
        yield


def resolve(opt: TrainOptions) -> TrainOptions:
    """Validate options and fill in the defaults; raises ValueError naming parameter, value, bound."""
    check_options(opt)
    cfg = opt.config
    if opt.out is not None:
        check_run_folder(opt.out, opt.overwrite)
    opt = dataclasses.replace(opt, device=check_device(opt.device))
    if opt.factory is not None:
        load_factory(opt.factory)  # importable, before any work
    if opt.lr is None:
        opt.lr = default_lr(opt.arch, cfg) if opt.factory is None else DEFAULT_FACTORY_LR
    for name, value in arch_defaults(opt.arch, opt.factory).items():
        if getattr(opt, name) is None:
            setattr(opt, name, value)
    if opt.task == "mlm" and opt.mask_rate is None:
        opt.mask_rate = DEFAULT_MASK_RATE
    if opt.batch_size is None:
        opt.batch_size = default_batch_size(cfg, opt.P)
    opt.num_test = min(cfg.split_sizes()["test"], MAX_TEST if opt.num_test is None else opt.num_test)
    steps_per_epoch = math.ceil(opt.P / opt.batch_size)
    if opt.epochs is not None:
        by_epochs = math.ceil(opt.epochs * steps_per_epoch)
        opt.max_steps = by_epochs if opt.max_steps is None else min(opt.max_steps, by_epochs)
    if opt.max_steps is None:
        opt.max_steps = DEFAULT_MAX_STEPS
    if opt.eval_every is None:  # at least once per epoch's worth of steps; evaluation <= ~1/3 of compute
        opt.eval_every = max(steps_per_epoch, math.ceil(opt.num_test / (2 * opt.batch_size)), 10)
    return opt


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------
def load_arrays(opt: TrainOptions) -> tuple[dict, dict]:
    """Training and test arrays and the provenance of the data.

    Returns ``(arrays, dataset_info)`` with arrays ``train_tokens`` [P, d] uint8/uint16,
    ``train_label`` [P] int64, ``test_tokens`` [num_test, d], ``test_label`` [num_test];
    ``dataset_info`` is the ``dataset`` object of the results file (format.md §12.2).
    """
    cfg = opt.config
    if opt.data is None:
        train = generate(cfg, "train", 0, opt.P)
        test = generate(cfg, "test", 0, opt.num_test)
        arrays = {
            "train_tokens": train["tokens"],
            "train_label": train["label"],
            "test_tokens": test["tokens"],
            "test_label": test["label"],
        }
        return arrays, dataset_info(cfg)
    arrays = {}
    for split, n in (("train", opt.P), ("test", opt.num_test)):
        arrays.update(_release_rows(opt, split, n))
    require(
        arrays["train_tokens"].shape[1] == cfg.d,
        "tokens length",
        arrays["train_tokens"].shape[1],
        f"== d = {cfg.d} of {cfg.name}",
    )
    return arrays, _release_info(opt)


def _release_rows(opt: TrainOptions, split: str, n: int) -> dict[str, np.ndarray]:
    """``{split}_tokens`` [n, d] (uint8, uint16 when v >= 255) and ``{split}_label`` [n] int64: the first
    ``n`` rows of a release's split; ValueError when the release cannot be read or has fewer rows."""
    cfg = opt.config
    try:
        ds = load_split(str(opt.data), cfg.name, split, revision=opt.revision)
    except HubUnreachable:  # the outside world failed, not the option: one line at the command's edge, exit 1
        raise
    except OSError as err:  # no such Hub repo, no data files
        raise ValueError(
            f"invalid parameter data={str(opt.data)!r}: must be a release folder or a reachable "
            f"Hub dataset repo with config {cfg.name} ({err})"
        ) from None
    require(len(ds) >= n, f"{split} rows of {opt.data}", len(ds), f">= {n} requested")
    rows = ds.select(range(n)).with_format("numpy", columns=["tokens", "label"])[:]
    tokens = np.asarray(rows["tokens"])
    tokens = np.stack(list(tokens)) if tokens.dtype == object else tokens
    return {
        f"{split}_tokens": tokens.astype(np.uint8 if cfg.v < 255 else np.uint16),
        f"{split}_label": np.asarray(rows["label"], dtype=np.int64),
    }


def _release_info(opt: TrainOptions) -> dict:
    """The ``dataset`` object of a run on a release: the rules hash and train content hash of its rules
    file (when readable), the Hub commit of its revision (when a Hub repo)."""
    cfg = opt.config
    info = dataset_info(cfg, str(opt.data), opt.revision)
    rules = _release_rules(str(opt.data), cfg, opt.revision)
    if rules is not None:
        if rules.get("rules") is not None:
            info["rules_hash"] = rules_hash(rules["rules"])
        info["train_content_hash"] = rules.get("splits", {}).get("train", {}).get("content_hash")
    if not os.path.isdir(opt.data):
        info["resolved_commit"] = _hub_commit(str(opt.data), opt.revision)
    return info


def _release_rules(data: str, cfg: SRHMConfig, revision: str | None) -> dict | None:
    """``rules/<config>.json`` of a release, or None (with a warning) if it cannot be read."""
    try:
        return load_rules(data, cfg.name, revision)
    except (OSError, ValueError) as err:  # no rules file, offline Hub, unreadable JSON
        warnings.warn(f"could not read rules/{cfg.name}.json of {data}: {err}", stacklevel=2)
        return None


def _hub_commit(repo: str, revision: str | None) -> str | None:
    try:
        return HfApi().dataset_info(repo, revision=revision).sha
    except Exception as err:  # noqa: BLE001 (offline, no such repo or revision, any Hub error: only a warning)
        warnings.warn(f"could not resolve the commit of {repo}@{revision}: {err}", stacklevel=2)
        return None


@dataclasses.dataclass
class DeviceData:
    """The run's rows on the training device: integer tokens [n, d] (uint8, int32 when v >= 255)
    and int64 labels [n] of ``train[:P]`` and of the first ``num_test`` test rows (the inputs and
    targets of the run's task). ``train_rows``: the clean train arrays (``train_tokens``,
    ``train_label``) a run that ``redraws`` keeps to draw each epoch's inputs; ``epoch``: the epoch whose
    draws the train tensors hold."""

    train_tokens: torch.Tensor
    train_label: torch.Tensor
    test_tokens: torch.Tensor
    test_label: torch.Tensor
    train_rows: dict | None = None
    epoch: int = 0


def redraw_setting(opt: TrainOptions) -> bool | None:
    """``redraw`` as a run's results and a curve's summary record it (format.md §10.3, §12.2): the option where it
    applies (``mlm`` or noise, ``protocol.option_applies``), else None."""
    return opt.redraw if option_applies(opt, "redraw") else None


def redraws(opt: TrainOptions) -> bool:
    """Whether the run draws its train rows' masks and noise afresh every epoch (``--redraw``, where it
    applies: ``mlm`` or noise)."""
    return bool(redraw_setting(opt))


def run_task(opt: TrainOptions, key: int = 0) -> Task:
    """The checked task of a run's options with ``key`` (``tasks.make_task``; format.md §15).

    Examples
    --------
    >>> from srhm_datasets import get_config
    >>> run_task(TrainOptions(config=get_config("demo"), P=10, task="mlm"), key=3)
    Task(name='mlm', context=None, mask_rate=0.15, noise=0.0, key=3)
    """
    return make_task(opt.config, opt.task, context=opt.context, mask_rate=opt.mask_rate, noise=opt.noise, key=key)


def split_task(opt: TrainOptions, arrays: dict, split: str, key: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, targets)`` of ``opt.task`` with ``key`` on the rows 0.. of ``split`` in ``arrays``
    (``tasks.apply_task``; format.md §15): targets [n] (``class``, ``last``) or [n, d] / [n, d-1]
    (``mlm``, ``next``) with ``IGNORE_INDEX`` where unscored."""
    task = run_task(opt, key)
    batch = {"tokens": arrays[f"{split}_tokens"], "label": arrays[f"{split}_label"]}
    tb = apply_task(opt.config, task, batch, split, 0)
    return tb.inputs, tb.targets


def task_arrays(opt: TrainOptions, arrays: dict) -> dict:
    """``arrays`` with each split's tokens and labels replaced by the inputs and targets of ``opt.task``
    with key 0 (``split_task``). Unchanged for ``class`` without noise."""
    if run_task(opt).plain:
        return arrays
    out = {}
    for split in ("train", "test"):
        out[f"{split}_tokens"], out[f"{split}_label"] = split_task(opt, arrays, split)
    return out


def draw_epoch(opt: TrainOptions, data: DeviceData, epoch: int) -> None:
    """Put the train inputs and targets of ``epoch`` (the task's key = epoch, format.md §15.3) in ``data``,
    on the device of its tensors."""
    tokens, label = split_task(opt, data.train_rows, "train", key=epoch)
    data.train_tokens = torch_tokens(tokens).to(data.train_tokens.device)
    if opt.task != "class":  # class targets are the labels, which the shuffled-label control permutes
        data.train_label = torch_ints(label).to(data.train_label.device)
    data.epoch = epoch


def device_data(opt: TrainOptions, device: str) -> tuple[DeviceData, dict]:
    """``(DeviceData, dataset_info)``: the inputs and targets of the run's task (``task_arrays``), with the
    clean train rows when the run ``redraws``; the shuffled-label control permutes the train labels
    (seed ``opt.seed + SHUFFLE_SEED_OFFSET``; test labels untouched)."""
    arrays, info = load_arrays(opt)
    rows = {k: arrays[k] for k in ("train_tokens", "train_label")} if redraws(opt) else None
    arrays = task_arrays(opt, arrays)
    data = DeviceData(
        train_tokens=torch_tokens(arrays["train_tokens"]).to(device),
        train_label=torch_ints(arrays["train_label"]).to(device),
        test_tokens=torch_tokens(arrays["test_tokens"]).to(device),
        test_label=torch_ints(arrays["test_label"]).to(device),
        train_rows=rows,
    )
    if opt.shuffle_labels:  # control: labels independent of the inputs
        g = torch.Generator().manual_seed(opt.seed + SHUFFLE_SEED_OFFSET)
        data.train_label = data.train_label[torch.randperm(opt.P, generator=g).to(device)]
    return data, info


class BatchStream:
    """The batch indices a run with ``seed`` draws from ``train[:P]``.

    An endless concatenation of permutations ``torch.randperm(P, generator)`` of a
    generator seeded with ``seed``; ``take(n)`` returns its next ``n`` entries (int64, CPU).
    A run's global batch is ``take(batch_size)``, identical on all ranks. ``epoch``: the permutation
    of the last entry taken (0 for the first).
    """

    def __init__(self, P: int, seed: int):
        self.P = P
        self.gen = torch.Generator().manual_seed(seed)
        self.perm, self.pos, self.epoch = torch.randperm(P, generator=self.gen), 0, 0

    def take(self, n: int) -> torch.Tensor:
        parts = [self.perm[:0]]
        while n:
            if self.pos == self.P:
                self.perm, self.pos = torch.randperm(self.P, generator=self.gen), 0
                self.epoch += 1
            part = self.perm[self.pos : self.pos + n]
            parts.append(part)
            self.pos += len(part)
            n -= len(part)
        return torch.cat(parts)


# ---------------------------------------------------------------------------------------
# set-up: device and distributed
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class SetUp:
    """Where a run trains: ``device`` (``cuda:N`` per rank under torchrun), this process's ``rank`` among
    ``world`` ranks (``ddp``: under torchrun), whether autocast (``amp``, in ``amp_dtype``, with a gradient
    ``scaler`` for float16) and torch.compile are used."""

    device: str
    rank: int = 0
    world: int = 1
    ddp: bool = False
    amp: bool = False
    amp_dtype: torch.dtype = torch.bfloat16
    scaler: torch.amp.GradScaler | None = None
    compile: bool = False

    @property
    def master(self) -> bool:
        return self.rank == 0


def autocast_dtype(device: str) -> torch.dtype:
    """The dtype of autocast on ``device``: bfloat16 on a CPU and on CUDA where supported, else float16.

    Examples
    --------
    >>> autocast_dtype("cpu")
    torch.bfloat16
    """
    if torch.device(device).type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def set_up(opt: TrainOptions) -> SetUp:
    """Threads, the process group under torchrun (RANK and WORLD_SIZE > 1 set), the device, autocast
    (``autocast_dtype``; float16 with a gradient scaler), torch.compile, and the CUDA speed-ups (TF32)."""
    if opt.threads is not None:
        torch.set_num_threads(opt.threads)
    setup = SetUp(device=opt.device)  # validated, autodetected when not given (resolve)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ:
        _init_distributed(opt, setup)
    dev_type = torch.device(setup.device).type
    setup.amp, setup.compile = opt.amp, opt.compile
    setup.amp_dtype = autocast_dtype(setup.device)
    if opt.amp and setup.amp_dtype == torch.float16:
        setup.scaler = torch.amp.GradScaler(dev_type)
    if dev_type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return setup


def _init_distributed(opt: TrainOptions, setup: SetUp) -> None:
    """Join the process group (NCCL on CUDA, else gloo); each rank takes ``cuda:LOCAL_RANK``."""
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if setup.device.startswith("cuda") else "gloo")
    setup.ddp, setup.rank, setup.world = True, dist.get_rank(), dist.get_world_size()
    require(
        opt.batch_size % setup.world == 0, "batch_size", opt.batch_size, f"a multiple of WORLD_SIZE = {setup.world}"
    )
    if setup.device.startswith("cuda"):
        setup.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(setup.device)


def tear_down(setup: SetUp) -> None:
    """Wait for every rank, then leave the process group (under torchrun)."""
    if setup.ddp:
        dist.barrier()
        dist.destroy_process_group()


def reduce_mean(value: float, setup: SetUp) -> float:
    """The mean of ``value`` over the ranks (``value`` itself when not distributed)."""
    if not setup.ddp:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=setup.device)
    dist.all_reduce(t)
    return float(t.item()) / setup.world


# ---------------------------------------------------------------------------------------
# model and optimiser
# ---------------------------------------------------------------------------------------
def make_model(opt: TrainOptions) -> torch.nn.Module:
    """The run's network on the CPU: the user's model ``factory(config[, task])`` (initialised under
    ``torch.manual_seed(seed)``), else the reference network ``arch``."""
    if opt.arch == "transformer" and opt.factory is None:
        return build_transformer(opt.config, opt.task, width=opt.width, seed=opt.seed)
    if opt.factory is None:
        return build_model(opt.arch, opt.config, width=opt.width, seed=opt.seed, norm=opt.norm, bias=opt.bias)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(opt.seed)
        return build_factory_model(opt.factory, opt.config, opt.task)


def effective_lr(opt: TrainOptions) -> float:
    """The optimiser's learning rate: ``lr * width`` with ``lr_scaling='width'`` (mean-field), else ``lr``.

    Examples
    --------
    >>> from srhm_datasets import get_config
    >>> opt = TrainOptions(config=get_config("demo"), P=10, lr=0.01, width=64, lr_scaling="width")
    >>> effective_lr(opt), effective_lr(dataclasses.replace(opt, lr_scaling="none"))
    (0.64, 0.01)
    """
    return opt.lr * opt.width if opt.lr_scaling == "width" else opt.lr


def make_optimizer(opt: TrainOptions, parameters) -> torch.optim.Optimizer:
    """SGD with ``momentum`` (the paper's), Adam or AdamW at ``effective_lr`` with ``weight_decay``."""
    lr, wd = effective_lr(opt), opt.weight_decay
    if opt.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=opt.momentum, weight_decay=wd)
    return {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[opt.optimizer](parameters, lr=lr, weight_decay=wd)


def build_network(opt: TrainOptions, setup: SetUp):
    """``(raw_model, model, optimizer)``: the network on the device (``make_model``), the module trained
    (compiled with ``compile_backend`` and/or wrapped in DistributedDataParallel) and its optimiser
    (``make_optimizer``)."""
    raw_model = make_model(opt).to(setup.device)
    model = torch.compile(raw_model, backend=opt.compile_backend or "inductor") if setup.compile else raw_model
    if setup.ddp:
        dev = torch.device(setup.device)
        model = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    return raw_model, model, make_optimizer(opt, model.parameters())


def outputs(
    model: torch.nn.Module, tokens: torch.Tensor, v: int, encoding: str, amp: bool = False, channels: int | None = None
) -> torch.Tensor:
    """``model(encode(tokens, v, encoding, channels=channels))``: tokens [B, d] (a task's input codes with
    ``channels`` = v + 2) on the model's device -> its output, [B, nc] for ``class`` (under autocast in
    ``autocast_dtype`` when ``amp``)."""
    x = encode(tokens, v, encoding, channels=channels)
    with torch.autocast(device_type=tokens.device.type, dtype=autocast_dtype(str(tokens.device)), enabled=amp):
        return model(x)


def count_errors(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(wrong, scored)``: int64 counts of scored targets whose argmax is wrong, and of scored targets.

    Examples
    --------
    >>> logits = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])  # [B=1, n=2, C=2]: argmax 1, 0
    >>> [int(c) for c in count_errors(logits, torch.tensor([[0, IGNORE_INDEX]]))]
    [1, 1]
    """
    flat, target = scored_pairs(logits, targets)
    scored = target != IGNORE_INDEX
    return ((flat.argmax(-1) != target) & scored).sum(), scored.sum()


@torch.no_grad()
def test_error(
    model: torch.nn.Module,
    tokens: torch.Tensor,
    labels: torch.Tensor,
    v: int,
    encoding: str = "whiten",
    *,
    batch_size: int = EVAL_BATCH,
    amp: bool = False,
    rank: int = 0,
    world: int = 1,
    channels: int | None = None,
) -> float:
    """Error of ``argmax model(encode(tokens))`` against ``labels`` over the scored targets, in eval mode.

    tokens: integer tokens (or a task's input codes, ``channels`` = v + 2) [n, d], labels: int64 [n]
    (a task's targets [n] or [n, d'] with ``IGNORE_INDEX`` where unscored), both on the model's device;
    ``batch_size`` rows per forward pass at most (fewer at large v * d: ``protocol.forward_rows``).
    Distributed (``world`` > 1, process group initialised): rank ``rank`` measures rows
    ``rank::world`` and the counts are summed over ranks, so every rank returns the error over all
    n rows. The model's training mode is restored. ValueError for n = 0 or no
    scored target.
    """
    if len(tokens) == 0:
        raise ValueError("invalid parameter tokens: empty test set")
    was_training = model.training
    model.eval()
    counts = torch.zeros(2, dtype=torch.int64, device=tokens.device)  # wrong, scored
    try:
        rows = forward_rows(batch_size, channels or v, tokens.shape[-1], encoding)
        for chunk in torch.arange(rank, len(tokens), world, device=tokens.device).split(rows):
            logits = outputs(model, tokens[chunk], v, encoding, amp, channels)
            counts += torch.stack(count_errors(logits, labels[chunk]))
    finally:
        model.train(was_training)
    if world > 1:
        dist.all_reduce(counts)
    if counts[1] == 0:
        raise ValueError("invalid parameter labels: no scored target in the test set")
    return int(counts[0].item()) / int(counts[1].item())


# ---------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------
@dataclasses.dataclass
class Log:
    """What the loop records: curves, the best test error (its step and parameters), why it stopped."""

    curves: dict = dataclasses.field(default_factory=lambda: {"step": [], "train_loss": [], "test_error": []})
    best_err: float = math.inf
    best_step: int = 0
    best_state: dict | None = None
    stop_reason: str = "max_steps"
    step: int = 0
    train_time: float = 0.0


class Interval:
    """Sums of the train loss and of correct predictions since the last evaluation (on the device)."""

    def __init__(self, device: str):
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.float64, device=device)
        self.n = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """One step's mean loss and its logits against the targets (accuracy over the scored ones)."""
        wrong, scored = count_errors(logits.detach(), labels)
        self.loss += loss.detach() * len(labels)
        self.correct += len(labels) * (1 - wrong / scored.clamp(min=1))
        self.n += len(labels)

    def means(self, setup: SetUp) -> tuple[float, float]:
        """(mean train loss, train accuracy) over the interval and the ranks; the sums restart."""
        loss, acc = reduce_mean(self.loss.item() / self.n, setup), reduce_mean(self.correct.item() / self.n, setup)
        self.loss.zero_(), self.correct.zero_()
        self.n = 0
        return loss, acc


def sgd_step(
    model, optimizer, data: DeviceData, idx: torch.Tensor, opt: TrainOptions, setup: SetUp, interval: Interval
) -> None:
    """One optimiser step on the rows ``idx`` of ``train[:P]`` (``task_loss``: cross-entropy of float32
    logits over the scored targets; a gradient scaler with float16 autocast)."""
    logits = outputs(model, data.train_tokens[idx], opt.config.v, opt.encoding, setup.amp, input_channels(opt))
    loss = task_loss(logits, data.train_label[idx])
    optimizer.zero_grad(set_to_none=True)
    if setup.scaler is None:
        loss.backward()
        optimizer.step()
    else:
        setup.scaler.scale(loss).backward()
        setup.scaler.step(optimizer)
        setup.scaler.update()
    interval.add(loss, logits.float(), data.train_label[idx])


#: What a model receives under each encoding (format.md §7).
ENCODED_INPUTS = {"whiten": "[B, v, d] floats", "onehot": "[B, v, d] floats", "tokens": "[B, d] int64 ids"}


def check_outputs(opt: TrainOptions, raw_model: torch.nn.Module, data: DeviceData) -> None:
    """Before training, on two train rows in eval mode: the model runs on the encoded inputs, its output has
    the shape of the task's targets plus a last dimension of at least ``target_classes``, and its loss
    (``task_loss``) backpropagates. ValueError naming ``factory`` or ``arch``, the task, the encoding and the
    type and first line of what the model raised (chained to it); the parameters' gradients are left unset."""
    name, value = ("factory", opt.factory) if opt.factory is not None else ("arch", opt.arch)
    targets, classes = data.train_label[:2], target_classes(opt.config, opt.task)
    expected = f"[{', '.join(['B', *map(str, targets.shape[1:])])}, >= {classes}]"
    inputs = f"{ENCODED_INPUTS[opt.encoding]} (--encoding {opt.encoding})"
    was_training = raw_model.training
    raw_model.eval()
    try:
        try:
            out = outputs(raw_model, data.train_tokens[:2], opt.config.v, opt.encoding, False, input_channels(opt))
        except Exception as err:  # noqa: BLE001 (the model raised on its first rows: one line naming it)
            raise model_error(name, value, f"a model that takes {inputs} for task {opt.task!r}", err) from err
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        fits = isinstance(out, torch.Tensor) and out.shape[:-1] == targets.shape and out.shape[-1] >= classes
        require(fits, name, value, f"a model whose output for task {opt.task!r} is {expected} (it gave {shape})")
        try:
            task_loss(out, targets).backward()
        except Exception as err:  # noqa: BLE001 (its loss does not backpropagate: one line naming it)
            raise model_error(name, value, f"a model whose loss on task {opt.task!r} backpropagates", err) from err
    finally:
        raw_model.zero_grad(set_to_none=True)
        raw_model.train(was_training)
    check_causal(raw_model, opt.config, opt.task, opt.encoding, name, value)


def check_causal(model: torch.nn.Module, cfg: SRHMConfig, task: str, encoding: str, name: str, value) -> None:
    """A model of ``next`` predicts the token at position i + 1 from the inputs at positions 0..i (format.md
    §15.2): one that sees position i + 1 reads its target there. In eval mode, on the first two train rows of
    the generator (the task's inputs, [2, n], n = d - 1), for j = 1, n // 2 and n - 1: the inputs at positions
    >= j are changed (every code c to (c + 1) mod (v + 1)) and the outputs at positions < j must stay as they
    were (to 1e-5 of their largest magnitude). ValueError naming ``name`` (``factory`` or ``arch``),
    ``value`` and the task otherwise; nothing is checked for another task. The model stays on its device
    and in its training mode.

    Examples
    --------
    >>> from srhm_datasets import get_config
    >>> from srhm_datasets.baselines.transformer import build_transformer
    >>> cfg = get_config("demo")
    >>> model = build_transformer(cfg, "next", width=8, depth=1)
    >>> check_causal(model, cfg, "next", "tokens", "arch", "transformer")
    >>> model.blocks[0].attn.causal = False  # every position attends to every other
    >>> check_causal(model, cfg, "next", "tokens", "arch", "transformer")
    Traceback (most recent call last):
    ...
    ValueError: invalid parameter arch='transformer': must satisfy a causal model for task 'next': ...
    """
    if task != "next":
        return
    rows = generate(cfg, "train", 0, min(2, cfg.split_sizes()["train"]))
    inputs = apply_task(cfg, "next", {"tokens": rows["tokens"], "label": rows["label"]}, "train", 0).inputs
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    tokens = torch_tokens(inputs).to(device)
    n, was_training = tokens.shape[1], model.training
    model.eval()
    try:
        with torch.no_grad():
            before = outputs(model, tokens, cfg.v, encoding).float()
            for j in sorted({1, n // 2, n - 1} & set(range(1, n))):
                changed = tokens.clone()
                changed[:, j:] = (changed[:, j:].long() + 1).remainder(cfg.v + 1).to(tokens.dtype)
                after = outputs(model, changed, cfg.v, encoding).float()
                tolerance = 1e-5 * max(1.0, float(before.nan_to_num().abs().max()))
                require(
                    torch.allclose(after[:, :j], before[:, :j], rtol=0.0, atol=tolerance, equal_nan=True),
                    name,
                    value,
                    f"a causal model for task 'next': its output at position i must depend on inputs 0..i only "
                    f"(changing the inputs at positions >= {j} changed its output at a position < {j}, so it "
                    "could read the token it predicts)",
                )
    finally:
        model.train(was_training)


def model_error(name: str, value, bound: str, err: Exception) -> ValueError:
    """The package's ValueError naming ``name``, ``value`` and ``bound``, and the type and first line of ``err``
    (what the model raised).

    Examples
    --------
    >>> model_error("factory", "m:f", "a model", RuntimeError("bad dtype\\nmore"))
    ValueError("invalid parameter factory='m:f': must satisfy a model (it raised RuntimeError: bad dtype)")
    """
    return ValueError(f"invalid parameter {name}={value!r}: must satisfy {bound} (it raised {error_line(err)})")


def input_channels(opt: TrainOptions) -> int | None:
    """``encode``'s channels for the run's task: v + 2 for ``last`` and ``mlm`` (MASK codes), else None."""
    return opt.config.v + 2 if opt.task in HIDING_TASKS else None


def evaluation_point(log: Log, err: float, train_loss: float, raw_model, opt: TrainOptions, master: bool) -> str | None:
    """Record an evaluation at ``log.step`` (curves; best error, step and, on rank 0, parameters);
    the stop reason (``diverged``, ``loss_threshold``) or None to go on."""
    finite = math.isfinite(train_loss)
    log.curves["step"].append(log.step)
    log.curves["train_loss"].append(train_loss if finite else None)
    log.curves["test_error"].append(err)
    if err < log.best_err:
        log.best_err, log.best_step = err, log.step
        if master:
            log.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in raw_model.state_dict().items()})
    if not finite:
        return "diverged"
    return "loss_threshold" if train_loss < opt.loss_threshold else None


def _progress_bar(opt: TrainOptions, setup: SetUp):
    """A tqdm bar over the step budget on rank 0 with ``progress``, else None."""
    if not (setup.master and opt.progress):
        return None
    return tqdm(total=opt.max_steps, desc=f"{model_name(opt)} P={opt.P}", unit="step", leave=False)


def training_loop(opt: TrainOptions, setup: SetUp, data: DeviceData, raw_model, model, optimizer) -> Log:
    """SGD steps on global batches (this rank's share ``batch[rank::world]``); every ``eval_every`` steps
    and at the last, the interval's mean train loss and the test error; stops at the budget, below
    the loss threshold, or on a non-finite loss."""
    log, interval, stream = Log(), Interval(setup.device), BatchStream(opt.P, opt.seed)
    progress = _progress_bar(opt, setup)
    model.train()
    t_train = time.perf_counter()
    while log.step < opt.max_steps:
        idx = stream.take(opt.batch_size)[setup.rank :: setup.world].to(setup.device)
        if data.train_rows is not None and stream.epoch != data.epoch:
            draw_epoch(opt, data, stream.epoch)
        sgd_step(model, optimizer, data, idx, opt, setup, interval)
        log.step += 1
        if log.step % opt.eval_every and log.step != opt.max_steps:
            continue
        log.train_time += time.perf_counter() - t_train
        train_loss, train_acc = interval.means(setup)
        err = test_error(
            model,
            data.test_tokens,
            data.test_label,
            opt.config.v,
            opt.encoding,
            amp=setup.amp,
            rank=setup.rank,
            world=setup.world,
            channels=input_channels(opt),
        )
        stop = evaluation_point(log, err, train_loss, raw_model, opt, setup.master)
        if progress is not None:
            progress.n = log.step
            progress.set_postfix(loss=f"{train_loss:.3g}", acc=f"{train_acc:.3f}", test_err=f"{err:.3f}")
        if stop is not None:
            log.stop_reason = stop
            break
        t_train = time.perf_counter()
    if progress is not None:
        progress.close()
    log.train_time = max(log.train_time, 1e-9)
    return log


# ---------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------
def model_record(opt: TrainOptions, raw_model: torch.nn.Module) -> dict:
    """The ``model`` object of a run's results (format.md §12.2): a reference network's arch, width, depth
    (L layers, the transformer's blocks), norm, bias; a user's model's ``factory.factory_record`` (factory,
    name, parameter count, source hash), arch ``custom``, ``width`` and ``depth`` from the module's attributes
    of those names (else None)."""
    if opt.factory is None:
        return {
            "arch": opt.arch,
            "width": opt.width,
            "depth": raw_model.depth if opt.arch == "transformer" else opt.config.L,
            "n_parameters": count_parameters(raw_model),
            "layer_names": raw_model.layer_names(),
            "norm": opt.norm,
            "bias": opt.bias,
        }
    attr = lambda key: getattr(raw_model, key) if is_int(getattr(raw_model, key, None)) else None  # noqa: E731
    return {
        "arch": CUSTOM_ARCH,
        "width": attr("width"),
        "depth": attr("depth"),
        **factory_record(opt.factory, raw_model, opt.name),
        "layer_names": default_layers(raw_model),
    }


def run_results(opt: TrainOptions, setup: SetUp, info: dict, raw_model, log: Log, wall_time: float, run: str) -> dict:
    """The results object of a finished run (format.md §12.2; format ``results.FORMAT``) whose identifier
    is ``run`` (``protocol.run_id``); ``wall_time`` in seconds, from a monotonic clock."""
    samples = log.step * opt.batch_size
    return {
        "format": dict(FORMAT),
        "package": package_info(git_commit()),
        "dataset": info,
        "P": opt.P,
        "model": model_record(opt, raw_model),
        "training": {
            "run_id": run,
            "seed": opt.seed,
            "lr": opt.lr,
            "lr_effective": effective_lr(opt),
            "lr_scaling": opt.lr_scaling,
            "momentum": opt.momentum,
            "optimizer": opt.optimizer,
            "weight_decay": opt.weight_decay,
            "task": opt.task,
            "context": opt.context,
            "mask_rate": opt.mask_rate,
            "noise": opt.noise,
            "redraw": redraw_setting(opt),
            "batch_size": opt.batch_size,
            "max_steps": opt.max_steps,
            "steps": log.step,
            "epochs": samples / opt.P,
            "encoding": opt.encoding,
            "device": setup.device,
            "world_size": setup.world,
            "amp": setup.amp,
            "compile": setup.compile,
            "shuffle_labels": opt.shuffle_labels,
            "loss_threshold": opt.loss_threshold,
            "num_test": opt.num_test,
            "eval_every": opt.eval_every,
            "wall_time_s": wall_time,
            "samples_per_s": samples / log.train_time,
            "stop_reason": log.stop_reason,
            "best_step": log.best_step,
            "curves": log.curves,
        },
        "final_test_error": log.curves["test_error"][-1],
        "best_test_error": log.best_err,
        "checkpoint": CHECKPOINT_FILE if opt.out is not None else None,
    }


def train(opt: TrainOptions) -> dict:
    """Train one network; return the results dict (also written to ``opt.out`` on rank 0).

    ValueError naming the option when ``opt`` is invalid (``resolve``), before any work;
    ``files.FolderInUse`` when another process writes ``opt.out`` (``claim_run``).
    """
    opt = resolve(opt)
    with claim_run(opt):
        t_start = time.perf_counter()  # durations from a monotonic clock: the wall clock may step back
        setup = set_up(opt)
        data, info = device_data(opt, setup.device)
        raw_model, model, optimizer = build_network(opt, setup)
        check_outputs(opt, raw_model, data)
        log = training_loop(opt, setup, data, raw_model, model, optimizer)
        run = run_id(opt)
        results = run_results(opt, setup, info, raw_model, log, time.perf_counter() - t_start, run)
        if setup.master and opt.out is not None:
            best = (log.best_state, log.best_step, log.best_err)
            checkpoint = run_checkpoint(opt, *best, info["catalog_name"], run, results["model"])
            write_run(opt.out, checkpoint, results)
        tear_down(setup)
    return results
