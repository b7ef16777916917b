"""One training run of a reference network on ``train[:P]`` of an SRHM config.

Read top to bottom: options -> distributed set-up -> data -> model -> optimiser ->
loop (SGD steps, periodic evaluation on ``test``, best checkpoint) -> results file.

Protocol (paper.md section 5, reference_code.md 2.3): cross-entropy, SGD with momentum
0.9, constant learning rate ``lr * width`` (mean-field scaling), stop when the train
loss falls below 1e-3 or at the step budget; the test error of every evaluation is
recorded and the parameters with the lowest test error are kept as the checkpoint.

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

import copy
import dataclasses
import math
import os
import pickle
import re
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import __version__
from ..catalog import catalog_name
from ..config import SRHMConfig, require
from ..files import atomic_write, check_output_folder, mark_owned
from ..release.load import load_split
from ..results import FILENAME as RESULTS_FILE
from ..results import FORMAT, validate_results, write_results
from ..torch_data.encoding import check_device, encode, torch_ints, torch_tokens
from .models import ARCHS, NORMS, build_model, count_parameters

CHECKPOINT = "checkpoint.pt"
MAX_TEST = 20000
DEFAULT_MAX_STEPS = 20000
EVAL_BATCH = 2048


# ---------------------------------------------------------------------------------------
# defaults of the protocol
# ---------------------------------------------------------------------------------------
def default_lr(arch: str, cfg: SRHMConfig) -> float:
    """Base learning rate of the authors' scripts (``choice_lr``); the optimiser uses it times the width.

    CNN, s=2, L=2: 0.01 at s0=0, 0.1 for 1<=s0<4, 0.03 for 4<=s0<6, 0.01 for s0>=6.
    CNN, s=2, L>=3: 0.01 for s0<4, 0.003 for 4<=s0<6, 0.001 for s0>=6.
    CNN, s>=3: 0.01 for s0<4, 0.003 for 4<=s0<6, 0.0003 for s0>=6.
    LCN: 0.01 for s=2 and s0<4, else 0.003.
    FCN: 0.01 for L=2, 0.003 for L>=3 (0.01 at L=1).
    """
    s, s0, L = cfg.s, cfg.s0, cfg.L
    if arch == "cnn":
        if s == 2 and L <= 2:
            return 0.01 if s0 == 0 else 0.1 if s0 < 4 else 0.03 if s0 < 6 else 0.01
        if s == 2:
            return 0.01 if s0 < 4 else 0.003 if s0 < 6 else 0.001
        return 0.01 if s0 < 4 else 0.003 if s0 < 6 else 0.0003
    if arch == "lcn":
        return 0.01 if (s == 2 and s0 < 4) else 0.003
    if arch == "fcn":
        return 0.01 if L <= 2 else 0.003
    raise ValueError(f"invalid parameter arch={arch!r}: must be one of {ARCHS}")


def default_batch_size(cfg: SRHMConfig, P: int) -> int:
    """4 rows per class, as one stored file of the authors' pipeline (at most P)."""
    return max(1, min(P, 4 * cfg.nc))


#: A Hub dataset repo id, ``org/name``.
_HUB_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_data(data: str | os.PathLike | None) -> None:
    """``data`` is None, an existing folder, or shaped like a Hub repo id ``org/name`` (else ValueError)."""
    if data is None or os.path.isdir(data):
        return
    bound = "an existing release folder or a Hub dataset repo id 'org/name'"
    require(not os.path.exists(data), "data", str(data), f"{bound} (it is a file, not a folder)")
    require(bool(_HUB_REPO.match(str(data))), "data", str(data), f"{bound} (no such folder)")


@dataclasses.dataclass
class TrainOptions:
    """Everything that defines a run. ``None`` means the protocol default (see ``resolve``)."""

    config: SRHMConfig
    P: int
    arch: str = "cnn"
    out: str | None = None  # run folder; None: nothing is written
    data: str | None = None  # release folder or Hub repo; None: the generator
    revision: str | None = None
    width: int = 512
    lr: float | None = None  # base lr (times width in the optimiser)
    momentum: float = 0.9
    batch_size: int | None = None
    max_steps: int | None = None
    epochs: float | None = None
    seed: int = 0
    device: str | None = None
    encoding: str = "whiten"
    amp: bool = False
    compile: bool = False
    shuffle_labels: bool = False
    num_test: int | None = None  # at most this many test rows (default 20000)
    eval_every: int | None = None
    loss_threshold: float = 1e-3
    norm: str = "fan_in"
    bias: bool = False
    progress: bool = True
    threads: int | None = None  # torch CPU threads (None: torch's default)
    overwrite: bool = False  # replace a finished run in ``out``


#: Seeds are drawn from 0 <= seed < SEED_BOUND (torch generators take 64-bit seeds; the
#: shuffled-label control adds an offset).
SEED_BOUND = 2**62


def is_int(value) -> bool:
    """An ``int`` that is not a ``bool`` (``True`` is an int to Python, not a count to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A finite int or float that is not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_flags(opt: TrainOptions) -> None:
    for name in ("amp", "compile", "shuffle_labels", "bias", "progress", "overwrite"):
        value = getattr(opt, name)
        require(isinstance(value, bool), name, value, "True or False")


def _check_optional_counts(opt: TrainOptions) -> None:
    for name in ("batch_size", "max_steps", "num_test", "eval_every", "threads"):
        value = getattr(opt, name)
        require(value is None or (is_int(value) and value >= 1), name, value, f"{name} >= 1 (an int, or None for the default)")


def check_options(opt: TrainOptions) -> None:
    """Check every field of ``opt`` (type and bound) before any work; ValueError naming the field.

    Raises ``TypeError`` when ``config`` is not an SRHMConfig. Checks nothing that needs
    the data (the data source's shape is checked when it is read).
    """
    if not isinstance(opt.config, SRHMConfig):
        raise TypeError(f"invalid parameter config={opt.config!r}: must be an SRHMConfig (use catalog.resolve(name))")
    cfg = opt.config
    sizes = cfg.split_sizes()
    require(opt.arch in ARCHS, "arch", opt.arch, f"one of {ARCHS}")
    require(is_int(opt.P) and 1 <= opt.P <= sizes["train"], "P", opt.P,
            f"1 <= P <= train size {sizes['train']} of {cfg.name}")
    require(opt.encoding in ("whiten", "onehot"), "encoding", opt.encoding, "one of ('whiten', 'onehot')")
    require(opt.norm in NORMS, "norm", opt.norm, f"one of {NORMS}")
    require(is_int(opt.width) and opt.width >= 1, "width", opt.width, "an int width >= 1")
    require(is_real(opt.momentum) and 0 <= opt.momentum < 1, "momentum", opt.momentum, "0 <= momentum < 1")
    require(opt.lr is None or (is_real(opt.lr) and opt.lr > 0), "lr", opt.lr, "None or a finite lr > 0")
    require(opt.epochs is None or (is_real(opt.epochs) and opt.epochs > 0), "epochs", opt.epochs,
            "None or a finite epochs > 0")
    require(is_int(opt.seed) and 0 <= opt.seed < SEED_BOUND, "seed", opt.seed, "an int 0 <= seed < 2**62")
    require(is_real(opt.loss_threshold) and opt.loss_threshold >= 0, "loss_threshold", opt.loss_threshold,
            "a finite loss_threshold >= 0")
    _check_optional_counts(opt)
    _check_flags(opt)
    for name in ("out", "data"):
        value = getattr(opt, name)
        require(value is None or isinstance(value, (str, os.PathLike)), name, value, "None, a str or a path")
    require(opt.revision is None or isinstance(opt.revision, str), "revision", opt.revision, "None or a str")
    require(sizes["test"] >= 1, "test size", sizes["test"], f">= 1 (data space of {cfg.name} too small)")
    check_data(opt.data)


def check_run_folder(out, overwrite: bool) -> Path:
    """The run folder ``out`` may receive a run: refused (ValueError naming ``out``) when it is the
    current folder or a parent of it, a folder srhm did not write, another kind of srhm folder, a
    finished run without ``overwrite``, or (with ``overwrite``) a run folder holding other files."""
    path = check_output_folder(out, "run", replace=overwrite)
    require(overwrite or not (path / RESULTS_FILE).is_file(), "out", str(out),
            f"a folder without a finished run (it holds {RESULTS_FILE}); choose another --out or pass --overwrite")
    return path


def resolve(opt: TrainOptions) -> TrainOptions:
    """Validate options and fill in the defaults; raises ValueError naming parameter, value, bound."""
    check_options(opt)
    cfg = opt.config
    if opt.out is not None:
        check_run_folder(opt.out, opt.overwrite)
    opt = dataclasses.replace(opt, device=check_device(opt.device))
    if opt.lr is None:
        opt.lr = default_lr(opt.arch, cfg)
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
    ``dataset_info`` is the ``dataset`` object of the results file.
    """
    from ..hashing import rules_hash
    from ..rules import sample_rules

    cfg = opt.config
    info = {
        "source": "generator", "repo_or_dir": None, "revision": None, "resolved_commit": None,
        "config": cfg.name, "catalog_name": catalog_name(cfg), "parameters": cfg.parameters(),
        "rules_hash": rules_hash(sample_rules(cfg)), "train_content_hash": None,
    }
    if opt.data is None:
        from ..generate import generate

        train = generate(cfg, "train", 0, opt.P)
        test = generate(cfg, "test", 0, opt.num_test)
        arrays = {"train_tokens": train["tokens"], "train_label": train["label"],
                  "test_tokens": test["tokens"], "test_label": test["label"]}
        return arrays, info

    info.update(source="release", repo_or_dir=str(opt.data), revision=opt.revision)
    arrays = {}
    for split, n in (("train", opt.P), ("test", opt.num_test)):
        try:
            ds = load_split(str(opt.data), cfg.name, split, revision=opt.revision)
        except OSError as err:  # no such Hub repo, no data files, offline
            raise ValueError(f"invalid parameter data={str(opt.data)!r}: must be a release folder or a reachable "
                             f"Hub dataset repo with config {cfg.name} ({err})") from None
        require(len(ds) >= n, f"{split} rows of {opt.data}", len(ds), f">= {n} requested")
        rows = ds.select(range(n)).with_format("numpy", columns=["tokens", "label"])[:]
        tokens = np.asarray(rows["tokens"])
        tokens = np.stack(list(tokens)) if tokens.dtype == object else tokens
        arrays[f"{split}_tokens"] = tokens.astype(np.uint8 if cfg.v < 255 else np.uint16)
        arrays[f"{split}_label"] = np.asarray(rows["label"], dtype=np.int64)
    require(arrays["train_tokens"].shape[1] == cfg.d, "tokens length", arrays["train_tokens"].shape[1], f"== d = {cfg.d} of {cfg.name}")
    rules = _release_rules(str(opt.data), cfg, opt.revision)
    if rules is not None:
        if rules.get("rules") is not None:
            info["rules_hash"] = rules_hash(rules["rules"])
        info["train_content_hash"] = rules.get("splits", {}).get("train", {}).get("content_hash")
    if not os.path.isdir(opt.data):
        info["resolved_commit"] = _hub_commit(str(opt.data), opt.revision)
    return arrays, info


def _release_rules(data: str, cfg: SRHMConfig, revision: str | None) -> dict | None:
    """``rules/<config>.json`` of a release, or None (with a warning) if it cannot be read."""
    from .. import load_rules

    try:
        return load_rules(data, cfg.name, revision)
    except (OSError, ValueError) as err:  # no rules file, offline Hub, unreadable JSON
        warnings.warn(f"could not read rules/{cfg.name}.json of {data}: {err}")
        return None


def _hub_commit(repo: str, revision: str | None) -> str | None:
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(repo, revision=revision).sha
    except Exception as err:
        warnings.warn(f"could not resolve the commit of {repo}@{revision}: {err}")
        return None


def git_commit() -> str | None:
    """The git commit of the package source, if it is a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except Exception:
        return None


# ---------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------
#: What ``torch.load(weights_only=True)`` raises for a damaged or foreign file.
TORCH_LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError, KeyError)
#: Keys every checkpoint of ``srhm train`` holds besides ``model_state``.
CHECKPOINT_KEYS = ("config", "arch", "width", "norm", "bias")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The dict stored in ``checkpoint.pt`` (or its run folder), on the CPU: ``model_state`` and the metadata.

    Raises FileNotFoundError when there is no such file, ValueError when it is not a
    checkpoint of ``srhm train`` (unreadable, or without ``model_state`` and ``CHECKPOINT_KEYS``).
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"invalid parameter checkpoint={str(path)!r}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except TORCH_LOAD_ERRORS as err:  # a damaged or non-torch file
        raise ValueError(f"invalid checkpoint {str(path)!r}: not readable by torch.load ({err})") from None
    missing = [k for k in ("model_state",) + CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ValueError(f"invalid checkpoint {str(path)!r}: not a srhm train checkpoint (missing {missing})")
    return ckpt


def load_state_checked(model: torch.nn.Module, state: dict, what: str) -> None:
    """``model.load_state_dict(state)``, a ValueError naming ``what`` when the state dict does not fit
    the model (another config's or architecture's parameters: missing keys or other shapes)."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        first = str(err).strip().splitlines()[:3]
        raise ValueError(f"invalid checkpoint {what}: its parameters do not fit the model "
                         f"(another config or architecture?): {' '.join(first)}") from None


def model_from_checkpoint(ckpt: dict, device: str = "cpu"):
    """``(model, cfg, meta)`` from a ``read_checkpoint`` dict (see ``load_checkpoint``).

    ValueError when the stored config is unknown or the parameters do not fit the network
    the metadata describes.
    """
    cfg = SRHMConfig.from_name(ckpt["config"])
    model = build_model(ckpt["arch"], cfg, width=ckpt["width"], norm=ckpt["norm"], bias=ckpt["bias"])
    load_state_checked(model, ckpt["model_state"], f"of config {cfg.name}")
    meta = {k: v for k, v in ckpt.items() if k != "model_state"}
    return model.to(check_device(device)).eval(), cfg, meta


def load_checkpoint(path: str | os.PathLike, device: str = "cpu"):
    """Rebuild a trained model from ``checkpoint.pt`` (or its run folder).

    Returns ``(model, cfg, meta)``: the model in eval mode on ``device``, its SRHMConfig
    and the checkpoint's metadata (arch, width, norm, bias, encoding, seed, P, step, test_error, ...).
    """
    return model_from_checkpoint(read_checkpoint(path), device)


def write_run(out: str | os.PathLike, checkpoint: dict, results: dict) -> None:
    """Write one run's ``checkpoint.pt`` and ``results.json`` into ``out`` as a unit.

    The results are validated first (nothing is written when they fail); the checkpoint
    is written to a temp name, then an old ``results.json`` is removed, the checkpoint
    renamed into place, and the results written atomically. At every moment the folder
    holds a finished run of one training (both files) or no results at all.
    """
    validate_results(results)
    out = Path(out)
    results_path = out / RESULTS_FILE
    mark_owned(out, "run", [CHECKPOINT, RESULTS_FILE])
    atomic_write(out / CHECKPOINT, lambda f: torch.save(checkpoint, f),
                 before_replace=lambda: results_path.unlink(missing_ok=True))
    write_results(results_path, results)


# ---------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------
def train(opt: TrainOptions) -> dict:
    """Train one network; return the results dict (also written to ``opt.out`` on rank 0)."""
    opt = resolve(opt)
    cfg = opt.config
    t_start = time.time()
    if opt.threads is not None:
        torch.set_num_threads(opt.threads)

    # -- distributed set-up ------------------------------------------------------------
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
    rank, world = 0, 1
    device = opt.device  # validated, autodetected when not given (resolve)
    if ddp:
        import torch.distributed as dist

        backend = "nccl" if device.startswith("cuda") else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
        rank, world = dist.get_rank(), dist.get_world_size()
        require(opt.batch_size % world == 0, "batch_size", opt.batch_size, f"a multiple of WORLD_SIZE = {world}")
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            torch.cuda.set_device(device)
    master = rank == 0
    dev_type = torch.device(device).type
    use_amp = bool(opt.amp and dev_type == "cuda")
    use_compile = bool(opt.compile and dev_type == "cuda")
    if opt.amp and not use_amp:
        warnings.warn(f"--amp ignored on device {device} (bf16 autocast is used on CUDA only)")
    if opt.compile and not use_compile:
        warnings.warn(f"--compile ignored on device {device} (torch.compile is used on CUDA only)")
    if dev_type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # -- data: uint8 tokens on the device, encoded per batch ---------------------------
    arrays, dataset_info = load_arrays(opt)
    train_tokens = torch_tokens(arrays["train_tokens"]).to(device)
    train_label = torch_ints(arrays["train_label"]).to(device)
    test_tokens = torch_tokens(arrays["test_tokens"]).to(device)
    test_label = torch_ints(arrays["test_label"]).to(device)
    if opt.shuffle_labels:  # control: labels independent of the inputs (test labels untouched)
        g = torch.Generator().manual_seed(opt.seed + 1_000_003)
        train_label = train_label[torch.randperm(opt.P, generator=g).to(device)]

    # -- model and optimiser -----------------------------------------------------------
    model = build_model(opt.arch, cfg, width=opt.width, seed=opt.seed, norm=opt.norm, bias=opt.bias).to(device)
    raw_model = model
    if use_compile:
        model = torch.compile(model)
    if ddp:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model, device_ids=[torch.device(device).index] if dev_type == "cuda" else None)
    lr_effective = opt.lr * opt.width  # mean-field: learning rate times the width
    optimizer = torch.optim.SGD(model.parameters(), lr=lr_effective, momentum=opt.momentum)

    def forward(tokens: torch.Tensor) -> torch.Tensor:
        x = encode(tokens, cfg.v, opt.encoding)
        with torch.autocast(device_type=dev_type, dtype=torch.bfloat16, enabled=use_amp):
            return model(x).float()

    @torch.no_grad()
    def test_error() -> float:
        model.eval()
        wrong = torch.zeros((), dtype=torch.float64, device=device)
        idx = torch.arange(rank, opt.num_test, world, device=device)
        for chunk in idx.split(EVAL_BATCH):
            wrong += (forward(test_tokens[chunk]).argmax(1) != test_label[chunk]).sum()
        if ddp:
            dist.all_reduce(wrong)
        model.train()
        return float(wrong.item()) / opt.num_test

    def reduce_mean(value: float) -> float:
        if not ddp:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return float(t.item()) / world

    # -- batches: a stream of epoch permutations, identical on all ranks ---------------
    gen = torch.Generator().manual_seed(opt.seed)
    stream, stream_pos = torch.randperm(opt.P, generator=gen), 0

    def next_batch() -> torch.Tensor:
        nonlocal stream, stream_pos
        parts, need = [], opt.batch_size
        while need:
            if stream_pos == len(stream):
                stream, stream_pos = torch.randperm(opt.P, generator=gen), 0
            take = stream[stream_pos : stream_pos + need]
            parts.append(take)
            stream_pos += len(take)
            need -= len(take)
        batch = torch.cat(parts)
        return batch[rank::world].to(device)

    # -- training loop -----------------------------------------------------------------
    curves = {"step": [], "train_loss": [], "test_error": []}
    best_err, best_step, best_state = math.inf, 0, None
    stop_reason, step = "max_steps", 0
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct_sum = torch.zeros((), dtype=torch.float64, device=device)
    n_interval, train_time = 0, 0.0
    progress = None
    if master and opt.progress:
        from tqdm.auto import tqdm

        progress = tqdm(total=opt.max_steps, desc=f"{opt.arch} P={opt.P}", unit="step", leave=False)
    model.train()
    t_train = time.time()
    while step < opt.max_steps:
        idx = next_batch()
        logits = forward(train_tokens[idx])
        loss = F.cross_entropy(logits, train_label[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        loss_sum += loss.detach() * len(idx)
        correct_sum += (logits.detach().argmax(1) == train_label[idx]).sum()
        n_interval += len(idx)
        if step % opt.eval_every and step != opt.max_steps:
            continue
        # evaluation point: interval train loss (mean over the steps since the last one)
        train_time += time.time() - t_train
        train_loss = reduce_mean(loss_sum.item() / n_interval)
        train_acc = reduce_mean(correct_sum.item() / n_interval)
        loss_sum.zero_(), correct_sum.zero_()
        n_interval = 0
        finite = math.isfinite(train_loss)
        err = test_error()
        curves["step"].append(step)
        curves["train_loss"].append(train_loss if finite else None)
        curves["test_error"].append(err)
        if err < best_err:
            best_err, best_step = err, step
            if master:
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in raw_model.state_dict().items()})
        if progress is not None:
            progress.n = step
            progress.set_postfix(loss=f"{train_loss:.3g}", acc=f"{train_acc:.3f}", test_err=f"{err:.3f}")
        if not finite:
            stop_reason = "diverged"
            break
        if train_loss < opt.loss_threshold:
            stop_reason = "loss_threshold"
            break
        t_train = time.time()
    if progress is not None:
        progress.close()
    train_time = max(train_time, 1e-9)

    # -- results -----------------------------------------------------------------------
    results = {
        "format": dict(FORMAT),
        "package": {"name": "srhm-datasets", "version": __version__, "git_commit": git_commit()},
        "dataset": dataset_info,
        "P": opt.P,
        "model": {
            "arch": opt.arch, "width": opt.width, "depth": cfg.L, "n_parameters": count_parameters(raw_model),
            "layer_names": raw_model.layer_names(), "norm": opt.norm, "bias": opt.bias,
        },
        "training": {
            "seed": opt.seed, "lr": opt.lr, "lr_effective": lr_effective, "momentum": opt.momentum,
            "batch_size": opt.batch_size, "max_steps": opt.max_steps, "steps": step,
            "epochs": step * opt.batch_size / opt.P, "encoding": opt.encoding, "device": device,
            "world_size": world, "amp": use_amp, "compile": use_compile, "shuffle_labels": opt.shuffle_labels,
            "loss_threshold": opt.loss_threshold, "num_test": opt.num_test, "eval_every": opt.eval_every,
            "wall_time_s": time.time() - t_start, "samples_per_s": step * opt.batch_size / train_time,
            "stop_reason": stop_reason, "best_step": best_step, "curves": curves,
        },
        "final_test_error": curves["test_error"][-1],
        "best_test_error": best_err,
        "checkpoint": CHECKPOINT if opt.out is not None else None,
    }
    if master and opt.out is not None:
        write_run(opt.out, {
            "format": "srhm-checkpoint-v1", "model_state": best_state, "arch": opt.arch, "width": opt.width,
            "depth": cfg.L, "norm": opt.norm, "bias": opt.bias, "config": cfg.name,
            "catalog_name": dataset_info["catalog_name"], "encoding": opt.encoding, "seed": opt.seed,
            "P": opt.P, "step": best_step, "test_error": best_err, "package_version": __version__,
        }, results)
    if ddp:
        dist.barrier()
        dist.destroy_process_group()
    return results
