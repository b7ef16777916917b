"""The training protocol's facts, shared by ``baselines`` and ``evaluation`` (format.md §10, §12).

Python and numpy only (no torch, pyarrow or matplotlib), so that ``srhm leaderboard`` can label
a learning-rate variant and estimate P* without importing torch. One definition each of:

- the networks (``ARCHS``, ``HIERARCHICAL_ARCHS``, ``NORMS``), the input encodings (``ENCODINGS``,
  ``TRAIN_ENCODINGS``, ``arch_encodings``), the networks' size (``num_parameters``,
  ``transformer_parameters``, bounded by ``MAX_PARAMETERS``) and the transformer's shapes
  (``vocabulary_size``, ``sequence_length``, ``target_classes``) and defaults (``TRANSFORMER_*``);
- the protocol defaults (format.md §10.2): ``default_lr``, ``default_batch_size``, the defaults per
  network ``ARCH_DEFAULTS`` (``arch_defaults``), ``DEFAULT_WIDTH``, ``DEFAULT_MOMENTUM``,
  ``DEFAULT_LOSS_THRESHOLD``, ``DEFAULT_MAX_STEPS``, ``MAX_TEST``;
- the run folder (format.md §10.3): ``CHECKPOINT_FILE``, ``RESULTS_FILE``, ``SUMMARY_FILE``,
  ``PLOT_FILE``, ``CHECKPOINT_FORMAT``, ``SUMMARY_FORMAT``, what a reusable run must agree on
  (``RUN_SETTINGS``) and what a checkpoint must share with its results (``CHECKPOINT_MATCH``,
  format.md §12.3);
- P* and the paper's laws (format.md §10.3): ``EPSILON_STAR``, ``log_spaced_P``,
  ``estimate_p_star``, ``p_star_spread``, ``chance_error``, ``CURVE_SETTINGS``, ``LAW_NAMES``, ``law_x``;
- controls (format.md §12.4): ``CONTROL``, ``is_control``;
- the rows of an evaluation's forward pass, bounded in bytes: ``FORWARD_BYTES``, ``forward_rows``;
- the options of a run, each declared once (``Option``, ``OPTIONS``), and ``TrainOptions`` made from them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
import secrets
from collections.abc import Callable

import numpy as np

from .catalog import release_name
from .config import SRHMConfig, is_int, is_real, require

#: Most bytes of encoded input in one evaluation forward pass (float32 [B, v, d], or int64 [B, d]
#: ids): ``batch_size`` rows at most, fewer at large v * d, so a pass's memory does not grow with d.
FORWARD_BYTES = 64 << 20

#: Reference networks (format.md §10.1): the paper's hierarchical networks (``HIERARCHICAL_ARCHS``,
#: ``baselines.models``) and a transformer encoder (``baselines.transformer``); the hierarchical
#: networks' pre-activation scales.
HIERARCHICAL_ARCHS = ("cnn", "lcn", "fcn")
ARCHS = (*HIERARCHICAL_ARCHS, "transformer")
NORMS = ("fan_in", "channels")
#: Input encodings (format.md §7): the kinds of ``srhm_datasets.torch.encode``.
ENCODINGS = ("onehot", "whiten", "tokens")
#: The encodings a hierarchical network trains on (float inputs [B, v, d], format.md §10.1).
TRAIN_ENCODINGS = ("whiten", "onehot")

#: Protocol defaults (format.md §10.2); those that depend on the network: ``arch_defaults``.
DEFAULT_WIDTH = 512
DEFAULT_MOMENTUM = 0.9
DEFAULT_LOSS_THRESHOLD = 1e-3
DEFAULT_MAX_STEPS = 20000
#: Most test rows a run evaluates (the first ``min(test size, MAX_TEST)``).
MAX_TEST = 20000

#: Files of a run folder and of a learning-curve folder (format.md §10.3).
CHECKPOINT_FILE = "checkpoint.pt"
RESULTS_FILE = "results.json"
SUMMARY_FILE = "summary.json"
PLOT_FILE = "learning_curve.png"
#: ``format`` of a checkpoint of ``srhm train`` and of a learning curve's ``summary.json``.
CHECKPOINT_FORMAT = "srhm-checkpoint-v1"
SUMMARY_FORMAT = {"name": "srhm-learning-curve", "version": 1}

#: Threshold defining P*: absolute test error (paper section 4.1, Fig. 4A; format.md §10.3).
EPSILON_STAR = 0.10
#: Most P values of one learning curve (each is a training run).
MAX_POINTS = 100

#: The settings that make one learning curve (format.md §10.3, §12.4): runs of one model name on one
#: config and task share a curve when these ``RUN_SETTINGS`` agree. Left out: ``P`` and ``seed``
#: (a curve's axis and its replicas), ``batch_size``, ``max_steps``, ``eval_every``, ``num_test``
#: (resolved per P from the protocol's defaults), ``config``, ``data``, ``revision`` (the leaderboard
#: groups by config and holds one revision and training content per config).
CURVE_SETTINGS = (
    "arch",
    "width",
    "lr",
    "momentum",
    "encoding",
    "norm",
    "bias",
    "shuffle_labels",
    "loss_threshold",
    "optimizer",
    "weight_decay",
    "lr_scaling",
)

#: What a run's checkpoint records and its results must agree on (format.md §12.3): checkpoint
#: key -> field of results.json. Keys absent on either side are skipped, except those of
#: ``CHECKPOINT_REQUIRED``: results holding the field need a checkpoint holding the same value.
CHECKPOINT_MATCH = {
    "run_id": "training.run_id",
    "config": "dataset.config",
    "arch": "model.arch",
    "width": "model.width",
    "P": "P",
    "seed": "training.seed",
    "norm": "model.norm",
    "bias": "model.bias",
    "encoding": "training.encoding",
    "factory": "model.factory",
    "step": "training.best_step",
}
#: Checkpoint keys that results holding their field require (the run's identifier, ``run_id``).
CHECKPOINT_REQUIRED = ("run_id",)

#: The paper's laws for P*, as text (see ``law_x``).
LAW_NAMES = {"cnn": "(s0+1)^2 nc m^L", "lcn": "s^(L/2) (s0+1)^L nc m^L"}

#: Label appended to the model of a run trained on shuffled labels (a control, format.md §12.4).
CONTROL = "(shuffled labels)"


#: Optimisers of a run (format.md §10.2): SGD with momentum (the paper's), Adam and AdamW.
OPTIMIZERS = ("sgd", "adam", "adamw")
#: Learning-rate scalings: ``width`` multiplies the base lr by the width (mean-field networks), ``none`` not.
LR_SCALINGS = ("width", "none")
#: Base learning rate of a user's model (``factory``) when none is given (Adam's usual 1e-3).
DEFAULT_FACTORY_LR = 1e-3
#: Architecture label recorded for a user's model (``factory``).
CUSTOM_ARCH = "custom"
#: The tasks a network trains on (format.md §15); the reference CNN/LCN/FCN train on ``class`` only.
TRAIN_TASKS = ("class", "last", "mlm", "next")

#: The transformer's architecture defaults and its optimiser (baselines/transformer_study.md,
#: docs/guide/transformer.md): width W, blocks, heads, MLP hidden size over W; AdamW at a constant lr.
TRANSFORMER_WIDTH = 64
TRANSFORMER_DEPTH = 2
TRANSFORMER_HEADS = 4
TRANSFORMER_MLP_RATIO = 4
TRANSFORMER_LR = 1e-3
TRANSFORMER_WEIGHT_DECAY = 0.01

#: The protocol defaults that depend on the network (format.md §10.2): a hierarchical network
#: (the paper's SGD at the mean-field lr on whitened one-hot inputs), the transformer, a user's model
#: (``factory``; key ``CUSTOM_ARCH``). The lr: ``default_lr``.
ARCH_DEFAULTS = {
    **dict.fromkeys(
        HIERARCHICAL_ARCHS,
        {"width": DEFAULT_WIDTH, "encoding": "whiten", "optimizer": "sgd", "weight_decay": 0.0, "lr_scaling": "width"},
    ),
    "transformer": {
        "width": TRANSFORMER_WIDTH,
        "encoding": "tokens",
        "optimizer": "adamw",
        "weight_decay": TRANSFORMER_WEIGHT_DECAY,
        "lr_scaling": "none",
    },
    CUSTOM_ARCH: {
        "encoding": "whiten",
        "optimizer": "sgd",
        "weight_decay": 0.0,
        "lr_scaling": "none",
    },
}


def arch_defaults(arch: str, factory: str | None = None) -> dict:
    """The defaults of ``ARCH_DEFAULTS`` for a run of ``arch`` (or of a user's model when ``factory``).

    Examples
    --------
    >>> arch_defaults("transformer")["optimizer"], arch_defaults("cnn", "m:f")["lr_scaling"]
    ('adamw', 'none')
    """
    return ARCH_DEFAULTS[CUSTOM_ARCH if factory is not None else arch]


def arch_encodings(arch: str) -> tuple:
    """The encodings a reference network ``arch`` trains on: ids for the transformer, floats else."""
    return ("tokens",) if arch == "transformer" else TRAIN_ENCODINGS


def arch_inputs(arch: str) -> str:
    """Why a reference network ``arch`` takes the encodings of ``arch_encodings`` (format.md §10.1), in words.

    Examples
    --------
    >>> arch_inputs("transformer")
    'the transformer embeds token ids [B, d] (an embedding table of v + 3 rows)'
    """
    if arch == "transformer":
        return "the transformer embeds token ids [B, d] (an embedding table of v + 3 rows)"
    return f"{arch} multiplies its weights with [B, v, d] floats (one channel per symbol)"


def vocabulary_size(v: int) -> int:
    """Ids a transformer embeds: symbols, blank, MASK and UNOBSERVED (``v + 3``, format.md §15.1)."""
    return v + 3


def sequence_length(cfg, task: str) -> int:
    """Input positions of a task's rows: ``d``, or ``d - 1`` for ``next`` (format.md §15.2)."""
    return cfg.d - 1 if task == "next" else cfg.d


def target_classes(cfg, task: str) -> int:
    """Classes a prediction of ``task`` ranges over: ``nc`` (class), ``v`` (last, mlm: informative
    tokens), ``v + 1`` (next: the blank is a target; format.md §15.2)."""
    return {"class": cfg.nc, "next": cfg.v + 1}.get(task, cfg.v)


def chance_error(cfg, task: str) -> float:
    """The error of a uniform guess over the ``target_classes`` C of ``task``, 1 - 1/C (format.md §10.3): a
    constant predictor's error on balanced targets, the level at which P* is no longer defined (§12.4).

    Examples
    --------
    >>> from srhm_datasets import get_config
    >>> chance_error(get_config("demo"), "class"), chance_error(get_config("demo"), "next")
    (0.75, 0.8)
    """
    return 1.0 - 1.0 / target_classes(cfg, task)


def check_threshold(threshold, cfg, task: str, name: str = "threshold") -> None:
    """A P* threshold (a test error) lies in 0 < threshold < ``chance_error(cfg, task)``: at or above the
    chance error a constant predictor crosses it and P* is undefined (format.md §10.3, §12.4). ValueError
    naming ``name``, the value and the bound otherwise.

    Examples
    --------
    >>> from srhm_datasets import get_config
    >>> check_threshold(0.1, get_config("demo"), "last")
    >>> check_threshold(0.8, get_config("demo"), "last")
    Traceback (most recent call last):
    ...
    ValueError: invalid parameter threshold=0.8: must satisfy 0 < threshold < 0.75, the chance error of task 'last' ...
    """
    chance = chance_error(cfg, task)
    require(
        is_real(threshold) and 0 < threshold < chance,
        name,
        threshold,
        f"0 < threshold < {chance:g}, the chance error of task {task!r} on {release_name(cfg)} (1 - 1/C, C = "
        f"{target_classes(cfg, task)} classes): at or above it a constant predictor crosses the threshold and "
        "P* is undefined (format.md §10.3)",
    )


def transformer_parameters(
    cfg,
    task: str = "class",
    width: int = TRANSFORMER_WIDTH,
    depth: int = TRANSFORMER_DEPTH,
    mlp_ratio: int = TRANSFORMER_MLP_RATIO,
) -> int:
    """Trainable scalars of ``baselines.transformer.build_transformer(cfg, task, width=width, depth=depth,
    mlp_ratio=mlp_ratio)``, by arithmetic (no torch; ``heads`` does not change it). With W = width,
    r = mlp_ratio, n = ``sequence_length(cfg, task)``, C = ``target_classes(cfg, task)``::

        vocabulary_size(v) W + n W              # embeddings, positions
        + depth ((4 + 2 r) W**2 + (9 + r) W)    # per block: 2 LayerNorms, qkv, proj, MLP
        + 2 W + (W + 1) C                       # final LayerNorm, readout

    Examples
    --------
    >>> from srhm_datasets import get_config
    >>> transformer_parameters(get_config("demo"), "class", width=16, depth=2)
    7028
    """
    W, r = width, mlp_ratio
    block = (4 + 2 * r) * W * W + (9 + r) * W
    embed = (vocabulary_size(cfg.v) + sequence_length(cfg, task)) * W
    return embed + depth * block + 2 * W + (W + 1) * target_classes(cfg, task)


def _finite(x) -> bool:
    return math.isfinite(x)


#: The runs an option applies to (``Option.applies``), on options resolved by ``train.resolve``: a key names
#: the runs in words and holds the test of a run.
SCOPES = {
    "a reference network (not --factory)": lambda o: o.factory is None,
    "the hierarchical networks cnn, lcn, fcn (not the transformer or --factory)": (
        lambda o: o.factory is None and o.arch in HIERARCHICAL_ARCHS
    ),
    "--optimizer sgd": lambda o: o.optimizer == "sgd",
    "--compile": lambda o: o.compile,
    "--data (a release)": lambda o: o.data is not None,
    "--task mlm or --noise > 0 (runs whose inputs are drawn)": lambda o: o.task == "mlm" or o.noise > 0,
}


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a run, declared once (format.md §10.2): the dataclass ``TrainOptions``, the click
    options of ``srhm train`` / ``srhm learning-curve``, the checks of ``check_option``, the sweep file's
    ``train`` section and ``RUN_SETTINGS`` are all derived from ``OPTIONS``.

    ``kind``: int, float, bool or str; ``default`` (None: the protocol default, filled in when the run is
    resolved; None is then also an accepted value); ``bound`` (words) and ``ok`` (value -> bool) the bound
    beyond the type; ``choices`` for a str; ``field``: its field in ``results.json`` when it is part of the
    run's identity (``RUN_SETTINGS``) and ``recorded_default`` the value a results file without that field
    was made with; ``cli``: ``"option"``, ``"pair"`` (``--x/--no-x``), ``"flag"`` or None (not a command
    line option); ``flag``: its name on the command line (default ``--`` + name with dashes); ``sweep``: a
    field of a sweep file's ``train`` section; ``applies``: the runs it applies to (a key of ``SCOPES``;
    None: every run); on any other run it must keep its default (``ValueError`` naming it otherwise).
    """

    name: str
    kind: type
    default: object = None
    help: str | None = None
    bound: str | None = None
    ok: Callable | None = None
    choices: tuple | None = None
    field: str | None = None
    recorded_default: object = None
    cli: str | None = "option"
    flag: str | None = None
    sweep: bool = True
    applies: str | None = None

    @property
    def optional(self) -> bool:
        """None is accepted (the protocol default)."""
        return self.default is None

    def type_text(self) -> str:
        text = {int: "an int", float: "a number", bool: "True or False", str: "a str"}[self.kind]
        return f"{text} or None" if self.optional else text

    def type_ok(self, value) -> bool:
        """``value`` has the option's type (a bool is no number; None where optional)."""
        if value is None:
            return self.optional
        if self.kind is bool:
            return isinstance(value, bool)
        if isinstance(value, bool):
            return False
        return isinstance(value, (int, float) if self.kind is float else self.kind)

    def bound_text(self) -> str:
        """The bound in words (choices, else ``bound``, else the type)."""
        if self.choices is not None:
            return f"one of {self.choices}" + (" or None" if self.optional else "")
        return self.bound or self.type_text()

    def accepts(self, value) -> bool:
        """``value`` has the option's type and satisfies its bound."""
        if not self.type_ok(value):
            return False
        if value is None:
            return True
        if self.choices is not None:
            return value in self.choices
        return self.ok is None or bool(self.ok(value))


def _count(name: str, help: str | None, **kw) -> Option:
    """An optional int >= 1 (None: the protocol default)."""
    return Option(name, int, None, help, f"{name} >= 1 (an int, or None for the default)", lambda x: x >= 1, **kw)


#: Every option of a run but its config and P, in the order of ``srhm train --help`` (format.md §10.2).
OPTIONS = (
    Option(
        "arch",
        str,
        "cnn",
        "Reference network (format.md §10.1).",
        choices=ARCHS,
        field="model.arch",
        applies="a reference network (not --factory)",
    ),
    Option(
        "data", str, None, "Release folder or Hub dataset repo (default: the generator).", field="dataset.repo_or_dir"
    ),
    Option(
        "revision",
        str,
        None,
        "Hub revision (tag, branch or commit) of --data.",
        field="dataset.revision",
        applies="--data (a release)",
    ),
    Option(
        "width",
        int,
        None,
        "Channels per hidden layer (H), the transformer's W [default: by arch, format.md §10.2].",
        "None or an int width >= 1",
        lambda x: x >= 1,
        field="model.width",
        recorded_default=DEFAULT_WIDTH,
        applies="a reference network (not --factory)",
    ),
    Option(
        "lr",
        float,
        None,
        "Base learning rate, times the width with --lr-scaling width [default: by arch, s, s0 and L, format.md §10.2].",
        "None or a finite lr > 0",
        lambda x: _finite(x) and x > 0,
        field="training.lr",
    ),
    Option(
        "momentum",
        float,
        DEFAULT_MOMENTUM,
        "Momentum of SGD.",
        "0 <= momentum < 1",
        lambda x: 0 <= x < 1,
        field="training.momentum",
        applies="--optimizer sgd",
    ),
    _count("batch_size", "Rows per SGD step [default: 4*nc, at most P].", field="training.batch_size"),
    _count("max_steps", f"Step budget [default: {DEFAULT_MAX_STEPS}, or from --epochs].", field="training.max_steps"),
    Option(
        "epochs",
        float,
        None,
        "Budget in passes over train[:P] (the smaller budget wins).",
        "None or a finite epochs > 0",
        lambda x: _finite(x) and x > 0,
    ),
    Option(
        "seed",
        int,
        0,
        "Seed of the initialisation and batch order.",
        "an int 0 <= seed < 2**62",
        lambda x: 0 <= x < 2**62,
        field="training.seed",
    ),
    Option("device", str, None, "cuda, cuda:N, mps or cpu [default: autodetect]."),
    Option(
        "encoding",
        str,
        None,
        "Input encoding: whiten or onehot [v, d] floats (cnn, lcn, fcn), or tokens (ids [d]: the transformer, "
        "a --factory model) [default: tokens for the transformer, else whiten].",
        choices=ENCODINGS,
        field="training.encoding",
        recorded_default="whiten",
    ),
    Option(
        "amp",
        bool,
        False,
        "Autocast: bf16 (CPU; CUDA where supported, else fp16 with a gradient scaler).",
        cli="pair",
        field="training.amp",
        recorded_default=False,
    ),
    Option("compile", bool, False, "torch.compile the model.", cli="pair"),
    Option(
        "compile_backend",
        str,
        None,
        "torch.compile backend [default: torch's, inductor]; aot_eager or eager compile without a C compiler.",
        applies="--compile",
    ),
    _count(
        "num_test",
        f"Test rows evaluated, at most the test split [default: min(test size, {MAX_TEST})].",
        field="training.num_test",
    ),
    _count("eval_every", "Steps between evaluations [default: >= one epoch].", field="training.eval_every"),
    Option(
        "loss_threshold",
        float,
        DEFAULT_LOSS_THRESHOLD,
        "Stop when the train loss falls below.",
        "a finite loss_threshold >= 0",
        lambda x: _finite(x) and x >= 0,
        field="training.loss_threshold",
    ),
    Option(
        "norm",
        str,
        "fan_in",
        "Pre-activation scale 1/sqrt(C_in*S) (fan_in) or 1/sqrt(C_in) (the authors' code).",
        choices=NORMS,
        field="model.norm",
        applies="the hierarchical networks cnn, lcn, fcn (not the transformer or --factory)",
    ),
    Option(
        "bias",
        bool,
        False,
        "Biases in the hidden layers (reference networks).",
        cli="pair",
        field="model.bias",
        applies="the hierarchical networks cnn, lcn, fcn (not the transformer or --factory)",
    ),
    Option(
        "shuffle_labels",
        bool,
        False,
        "Control: train on permuted labels.",
        cli="flag",
        field="training.shuffle_labels",
        recorded_default=False,
    ),
    _count("threads", "torch CPU threads [default: torch's]; 1 is fastest on a busy machine."),
    Option("progress", bool, True, "A progress bar.", cli="pair", sweep=False),
    Option(
        "task",
        str,
        "class",
        "What is predicted (format.md §15): class (the root label), last, mlm or next (the transformer, "
        "a --factory model).",
        choices=TRAIN_TASKS,
        field="training.task",
        recorded_default="class",
    ),
    Option(
        "context",
        int,
        None,
        "Task last: the window of t positions ending at the masked one, j-t+1..j (t-1 tokens visible "
        "before it) [default: the whole row].",
        "None or an int context >= 1",
        lambda x: x >= 1,
        field="training.context",
    ),
    Option(
        "mask_rate",
        float,
        None,
        "Task mlm: probability that an informative position is masked [default: 0.15].",
        "None or a number 0 < mask_rate <= 1",
        lambda x: 0 < x <= 1,
        field="training.mask_rate",
    ),
    Option(
        "noise",
        float,
        0.0,
        "Probability that an informative input token is replaced by another symbol.",
        "a number 0 <= noise < 1",
        lambda x: 0 <= x < 1,
        field="training.noise",
        recorded_default=0.0,
    ),
    Option(
        "redraw",
        bool,
        True,
        "Draw the train rows' masks (mlm) and noise afresh every epoch (task key = epoch; the test rows "
        "keep key 0), as dynamic masking does; --no-redraw keeps epoch 0's draws.",
        cli="pair",
        field="training.redraw",
        recorded_default=False,
        applies="--task mlm or --noise > 0 (runs whose inputs are drawn)",
    ),
    Option(
        "optimizer",
        str,
        None,
        "sgd (with --momentum; the paper's), adam or adamw [default: adamw for the transformer, else sgd].",
        choices=OPTIMIZERS,
        field="training.optimizer",
        recorded_default="sgd",
    ),
    Option(
        "weight_decay",
        float,
        None,
        f"Weight decay of the optimiser [default: {TRANSFORMER_WEIGHT_DECAY} for the transformer, else 0].",
        "None or a finite weight_decay >= 0",
        lambda x: _finite(x) and x >= 0,
        field="training.weight_decay",
        recorded_default=0.0,
    ),
    Option(
        "lr_scaling",
        str,
        None,
        "width: the optimiser's lr is --lr times the width (mean-field networks); none: "
        "--lr itself [default: width for cnn/lcn/fcn, none for the transformer and with --factory].",
        choices=LR_SCALINGS,
        field="training.lr_scaling",
        recorded_default="width",
    ),
    Option(
        "factory",
        str,
        None,
        "A user's model: module:function of (config, task) or (config) returning a torch.nn.Module (replaces --arch).",
        "None or 'module:function'",
        lambda x: re.fullmatch(r"[^:\s]+:[^:\s]+", x) is not None,
        field="model.factory",
    ),
    Option(
        "name",
        str,
        None,
        "With --factory: the model's name [default: the function's name].",
        "None or a non-empty name",
        lambda x: x.strip() != "",
    ),
)
OPTION = {o.name: o for o in OPTIONS}


def option_applies(opt, name: str) -> bool:
    """Whether the setting ``name`` applies to the run of the resolved options ``opt`` (``Option.applies``,
    ``SCOPES``; a setting that is no option of ``OPTIONS`` always does): e.g. ``momentum`` does not with
    AdamW, ``redraw`` not on a run whose inputs are not drawn.

    Examples
    --------
    >>> from srhm_datasets import get_config
    >>> opt = TrainOptions(config=get_config("demo"), P=10, optimizer="adamw")
    >>> option_applies(opt, "momentum"), option_applies(opt, "lr")
    (False, True)
    """
    scope = OPTION[name].applies if name in OPTION else None
    return scope is None or SCOPES[scope](opt)


#: The setting of a run's identity that is no option: the code of a user's model, the SHA-256 of the source
#: of its factory's module (``baselines.factory.source_sha256``; null when it has none, and then no finished
#: run of it is reused: format.md §10.5).
SOURCE_SETTING = "source_sha256"

#: What must agree between a finished run and the requested one for the run to be reused: setting
#: (a TrainOptions field, or ``SOURCE_SETTING``) -> its field in the results file (derived from ``OPTIONS``).
RUN_SETTINGS = {
    "config": "dataset.config",
    "P": "P",
    **{o.name: o.field for o in OPTIONS if o.field is not None},
    SOURCE_SETTING: "model.source_sha256",
}

TrainOptions = dataclasses.make_dataclass(
    "TrainOptions",
    [
        ("config", SRHMConfig),
        ("P", int),
        ("out", "str | None", dataclasses.field(default=None)),
        *[
            (o.name, f"{o.kind.__name__} | None" if o.optional else o.kind, dataclasses.field(default=o.default))
            for o in OPTIONS
        ],
        ("overwrite", bool, dataclasses.field(default=False)),
    ],
)
TrainOptions.__module__ = __name__
TrainOptions.__doc__ = """Everything that defines a run (format.md §10.2): ``config``, ``P``, ``out`` (run folder; None:
nothing is written), every option of ``OPTIONS`` and ``overwrite`` (replace a finished run in ``out``).
``None`` means the protocol default (``baselines.train.resolve`` fills it in)."""


#: Options left out of a run's identifier (``run_id``): where the run is written and how it reports.
RUN_ID_IGNORED = ("out", "progress", "overwrite", "threads", "name")


def run_id(opt: TrainOptions) -> str:
    """A new identifier of one run of the resolved options ``opt`` (format.md §12.3): 16 hex digits of
    the SHA-256 of every option but ``RUN_ID_IGNORED`` (config, P, lr, momentum, budget, seed, data,
    ...), a dash, and 16 random hex digits, so two runs never share it, even with equal options.
    Written in both the checkpoint (``run_id``) and the results (``training.run_id``).

    Examples
    --------
    >>> from srhm_datasets import get_config
    >>> a = run_id(TrainOptions(config=get_config("demo"), P=10, lr=0.1))
    >>> b = run_id(TrainOptions(config=get_config("demo"), P=10, lr=0.1))
    >>> a[:16] == b[:16] and a != b and len(a) == 33
    True
    """
    settings = {f.name: getattr(opt, f.name) for f in dataclasses.fields(opt) if f.name not in RUN_ID_IGNORED}
    settings["config"] = opt.config.name
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
    return f"{digest[:16]}-{secrets.token_hex(8)}"


def default_lr(arch: str, cfg) -> float:
    """Base learning rate of a reference network: the authors' scripts' (``choice_lr``; format.md §10.2),
    which the optimiser uses times the width, and the transformer's. ``cfg``: an SRHMConfig (``s``,
    ``s0``, ``L`` are read). This function is the one definition of the table:

    CNN, s=2, L<=2: 0.01 at s0=0, 0.1 for 1<=s0<4, 0.03 for 4<=s0<6, 0.01 for s0>=6.
    CNN, s=2, L>=3: 0.01 for s0<4, 0.003 for 4<=s0<6, 0.001 for s0>=6.
    CNN, s>=3: 0.01 for s0<4, 0.003 for 4<=s0<6, 0.0003 for s0>=6.
    LCN: 0.01 for s=2 and s0<4, else 0.003.
    FCN: 0.01 for L<=2, 0.003 for L>=3.
    Transformer: ``TRANSFORMER_LR`` (1e-3, AdamW without width scaling; baselines/transformer_study.md).
    Raises ValueError for an ``arch`` not in ``ARCHS``.
    """
    s, s0, L = cfg.s, cfg.s0, cfg.L
    if arch == "transformer":
        return TRANSFORMER_LR
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


#: Most trainable parameters of a reference network (``num_parameters``; ``width`` is bounded by it):
#: 2**31 float32 weights are 8 GiB, before their gradients and the optimiser's momentum.
MAX_PARAMETERS = 2**31


def num_parameters(arch: str, cfg, width: int, bias: bool = False, task: str = "class") -> int:
    """Trainable scalars of the reference network ``arch`` at ``width``, by arithmetic (no torch, nothing
    allocated; exact for any width): ``baselines.models.build_model(arch, cfg, width, bias=bias)``, or for
    the transformer ``transformer_parameters(cfg, task, width)`` (its default depth; ``bias`` unused).
    ``cfg``: an SRHMConfig (``L``, ``v``, ``d``, ``S``, ``nc`` are read). Network shapes: format.md §10.1.

    CNN layer k: ``width * c_in * S`` weights (``c_in`` = v for k = 1, else width); LCN: that
    times the ``d / S**k`` patch positions; FCN: ``width * v * d`` for k = 1, else ``width**2``;
    ``bias`` adds one per output channel (and position, LCN); readout: ``width * nc``.
    Raises ValueError for an ``arch`` not in ``ARCHS``.
    """
    require(arch in ARCHS, "arch", arch, f"one of {ARCHS}")
    if arch == "transformer":
        return transformer_parameters(cfg, task, width)
    total = width * cfg.nc
    for k in range(1, cfg.L + 1):
        c_in = cfg.v if k == 1 else width
        if arch == "fcn":
            weights, biases = width * (cfg.v * cfg.d if k == 1 else width), width
        else:
            positions = cfg.d // cfg.S**k if arch == "lcn" else 1
            weights, biases = positions * width * c_in * cfg.S, positions * width
        total += weights + (biases if bias else 0)
    return total


def default_batch_size(cfg, P: int) -> int:
    """4 rows per class (``cfg.nc``), as one stored file of the authors' pipeline (at most P; format.md §10.2)."""
    return max(1, min(P, 4 * cfg.nc))


def law_x(arch: str, L: int, s: int, s0: int, nc: int, m: int) -> float | None:
    """The paper's predicted scale x of P* for an architecture (None for FCN: no law; format.md §10.3).

    CNN: (s0+1)**2 nc m**L (Eq. 4). LCN: s**(L/2) (s0+1)**L nc m**L (Eq. 3).
    """
    if arch == "cnn":
        return float((s0 + 1) ** 2 * nc * m**L)
    if arch == "lcn":
        return float(s ** (L / 2) * (s0 + 1) ** L * nc * m**L)
    return None


def log_spaced_P(P_min: int, P_max: int, points: int) -> list[int]:
    """``points`` distinct integers from P_min to P_max, evenly spaced in log P (sorted, ascending).

    ValueError naming the argument unless 1 <= P_min <= P_max and 1 <= points <= ``MAX_POINTS``, and
    points >= 2 unless P_min = P_max (one point is one P: which of the range would be arbitrary).

    Examples
    --------
    >>> log_spaced_P(10, 1000, 3), log_spaced_P(50, 50, 1)
    ([10, 100, 1000], [50])
    """
    for key, value in (("P_min", P_min), ("P_max", P_max), ("points", points)):
        require(is_int(value) and value >= 1, key, value, f"an int {key} >= 1")
    require(P_min <= P_max, "P_min", P_min, f"P_min <= P_max = {P_max}")
    require(points <= MAX_POINTS, "points", points, f"points <= {MAX_POINTS} (one training run each)")
    require(
        points >= 2 or P_min == P_max,
        "points",
        points,
        f"points >= 2, or P_min = P_max for one point (P_min = {P_min} < P_max = {P_max}: one point would "
        "train one P of the range)",
    )
    if points == 1:
        return [P_max]
    grid = np.exp(np.linspace(math.log(P_min), math.log(P_max), points))
    return sorted({int(round(p)) for p in grid})  # noqa: RUF046 (numpy < 2 rounds to a float)


def estimate_p_star(Ps, errors, threshold: float = EPSILON_STAR) -> dict:
    """P* where ``errors`` (test error at sizes ``Ps``) first falls to ``threshold`` (format.md §10.3).

    Returns ``{"P_star": float | None, "bracket": [P_lo, P_hi] | None, "status": ...}``:
    status ``interpolated`` (crossing between two points, log-P interpolation),
    ``below_range`` (already <= threshold at the smallest P: P* <= P_min),
    ``above_range`` (never reached: P* > P_max), or ``no_data``.
    """
    pairs = sorted(zip(Ps, errors))
    if not pairs:
        return {"P_star": None, "bracket": None, "status": "no_data"}
    if pairs[0][1] <= threshold:
        return {"P_star": None, "bracket": [None, pairs[0][0]], "status": "below_range"}
    for (p0, e0), (p1, e1) in itertools.pairwise(pairs):
        if e0 > threshold >= e1:
            t = (e0 - threshold) / (e0 - e1)
            P_star = math.exp(math.log(p0) + t * (math.log(p1) - math.log(p0)))
            return {"P_star": P_star, "bracket": [p0, p1], "status": "interpolated"}
    return {"P_star": None, "bracket": [pairs[-1][0], None], "status": "above_range"}


def p_star_spread(values: list[float | None]) -> dict:
    """Over the P* of several seeds (None: no crossing): how many crossed, their geometric mean, min
    and max (None when none crossed).

    Examples
    --------
    >>> spread = p_star_spread([100.0, None, 400.0])
    >>> spread["crossed"], round(spread["geomean"]), spread["min"], spread["max"]
    (2, 200, 100.0, 400.0)
    """
    crossed = [v for v in values if v is not None]
    mean = math.exp(sum(map(math.log, crossed)) / len(crossed)) if crossed else None
    return {
        "crossed": len(crossed),
        "geomean": mean,
        "min": min(crossed, default=None),
        "max": max(crossed, default=None),
    }


def is_control(results: dict) -> bool:
    """True for the results of a ``srhm train --shuffle-labels`` run (a control)."""
    return bool((results.get("training") or {}).get("shuffle_labels"))


def forward_rows(batch_size: int, v: int, d: int, encoding: str) -> int:
    """Rows per forward pass: ``batch_size``, or fewer so that the encoded input of a pass
    (``encode``: float32 [B, v, d], int64 [B, d] for ``encoding="tokens"``) holds at most
    ``FORWARD_BYTES``; one row at the least.

    Examples
    --------
    >>> forward_rows(4096, v=10, d=36, encoding="whiten")
    4096
    >>> forward_rows(4096, v=4, d=9261, encoding="whiten") * 4 * 4 * 9261 <= FORWARD_BYTES
    True
    """
    per_row = 8 * d if encoding == "tokens" else 4 * v * d
    return max(1, min(batch_size, FORWARD_BYTES // max(1, per_row)))


def options_table() -> str:
    """The Markdown table of ``OPTIONS`` in docs/format.md §10.2: flag, default (``auto``: the protocol
    default, filled in when the run is resolved), bound, results field when part of the run's identity
    (``RUN_SETTINGS``), and the help of the command line.

    Examples
    --------
    >>> options_table().splitlines()[2].startswith("| `--arch` | `cnn` |")
    True
    """
    rows = [
        "| option | default | allowed | results field (run identity) | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for o in OPTIONS:
        flag = o.flag or "--" + o.name.replace("_", "-")
        default = "auto" if o.default is None else f"`{o.default}`"
        allowed = o.bound_text().replace("|", "\\|")
        field = f"`{o.field}`" if o.field else "-"
        meaning = (o.help or "") + (f" Only for {o.applies}." if o.applies else "")
        rows.append(f"| `{flag}` | {default} | {allowed} | {field} | {meaning.replace('|', '/')} |")
    return "\n".join(rows) + "\n"
