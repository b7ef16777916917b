"""A transformer encoder among the reference networks, for every task (format.md §15).

The input is the token ids of a task's inputs (``encoding="tokens"``: ``[B, n]`` int64 codes of
format.md §15.1: symbols ``0..v-1``, blank ``v``, MASK ``v+1``, UNOBSERVED ``v+2``; ``n = d``,
or ``d - 1`` for ``next``). The network::

    h = embed(ids) + position            # [B, n, W]; vocabulary v + 3, n learned positions
    h = blocks.k(h)  for k = 0..depth-1  # pre-norm: h + attn(LN(h)); h + mlp(LN(h))
    h = norm(h)                          # a final LayerNorm
    output = readout(...)                # per task, below

Readout and output shape per task (what the protocol's loss reads):

- ``class``: the mean over positions, then ``Linear(W, nc)``: logits ``[B, nc]``, targets
  the labels ``[B]``.
- ``last``: the hidden state at the MASK position (the module finds it: the one position
  whose id is MASK, format.md §15.2), then ``Linear(W, v)``: logits ``[B, v]``, targets
  ``x_j`` in ``0..v-1`` ``[B]``. So ``class`` and ``last`` share one loss:
  ``cross_entropy(logits, targets)``. (The inputs of ``last`` have exactly one MASK a row; the
  module does not check it, which would cost a device synchronisation: a row without one reads
  position 0.)
- ``mlm``: every position, ``Linear(W, v)``: logits ``[B, d, v]``; targets ``[B, d]`` in
  ``0..v-1`` or -100 (``tasks.IGNORE_INDEX``). Masked positions are informative, so their
  targets are never the blank and the readout has no blank logit.
- ``next``: causal attention (position i attends to 0..i), every position,
  ``Linear(W, v + 1)``: logits ``[B, d-1, v+1]`` (the blank is a target, format.md §15.2),
  targets ``[B, d-1]``.

Per-position logits ``[B, n, C]`` go to the loss flattened, which ``task_loss`` (the one loss of
every network, ``torch_data.tasks.task_loss``) does for every task:
``cross_entropy(logits.reshape(-1, C), targets.reshape(-1), ignore_index=-100)``.

Hidden blocks are the submodules ``blocks.0 .. blocks.{depth-1}``; a forward hook on one
receives its output ``[B, n, W]`` (the residual stream after the block), and
``hidden_layer_names()`` lists them, so ``evaluation.sensitivity`` measures S and D per block
(with ``encoding="tokens"``) as it does per layer of the CNN. ``"output"`` is the logits.

Initialisation (a pure function of ``seed``): linear weights and embeddings N(0, 0.02**2),
biases 0, LayerNorms (1, 0). Defaults (``DEFAULT_WIDTH``, ``DEFAULT_DEPTH``, ``DEFAULT_HEADS``,
``DEFAULT_MLP_RATIO``) and the default optimiser (AdamW, ``DEFAULT_LR``,
``DEFAULT_WEIGHT_DECAY``) come from the study in ``baselines/transformer_study.md``
(docs/guide/transformer.md); they are the protocol's ``TRANSFORMER_*`` facts, which
``srhm train --arch transformer`` uses (format.md §10.2).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..config import ParameterTypeError, SRHMConfig, check_config, require, require_choice, require_int
from ..protocol import TRANSFORMER_DEPTH as DEFAULT_DEPTH
from ..protocol import TRANSFORMER_HEADS as DEFAULT_HEADS
from ..protocol import TRANSFORMER_LR as DEFAULT_LR
from ..protocol import TRANSFORMER_MLP_RATIO as DEFAULT_MLP_RATIO
from ..protocol import TRANSFORMER_WEIGHT_DECAY as DEFAULT_WEIGHT_DECAY
from ..protocol import TRANSFORMER_WIDTH as DEFAULT_WIDTH
from ..protocol import sequence_length, transformer_parameters, vocabulary_size
from ..protocol import target_classes as output_size
from ..tasks import TASKS, mask_id
from ..torch_data.tasks import task_loss

__all__ = [
    "DEFAULT_DEPTH",
    "DEFAULT_HEADS",
    "DEFAULT_LR",
    "DEFAULT_MLP_RATIO",
    "DEFAULT_WEIGHT_DECAY",
    "DEFAULT_WIDTH",
    "Transformer",
    "build_transformer",
    "num_parameters",
    "output_size",
    "sequence_length",
    "task_loss",
    "vocabulary_size",
]

#: Standard deviation of the initial linear weights and embeddings.
INIT_STD = 0.02


class SelfAttention(nn.Module):
    """Multi-head self-attention: x [B, n, W] -> [B, n, W] (causal: position i sees 0..i)."""

    def __init__(self, width: int, heads: int, dropout: float, causal: bool):
        super().__init__()
        self.heads, self.dropout, self.causal = heads, dropout, causal
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, n, W = x.shape
        q, k, v = self.qkv(x).view(B, n, 3, self.heads, W // self.heads).permute(2, 0, 3, 1, 4)  # [B, h, n, W/h]
        p = self.dropout if self.training else 0.0
        z = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=self.causal)
        return self.proj(z.transpose(1, 2).reshape(B, n, W))


class Block(nn.Module):
    """Pre-norm block: ``h + attn(LN(h))`` then ``h + mlp(LN(h))``; [B, n, W] -> [B, n, W]."""

    def __init__(self, width: int, heads: int, mlp_ratio: int, dropout: float, causal: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads, dropout, causal)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width), nn.Dropout(dropout)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.drop(self.attn(self.norm1(h)))
        return h + self.mlp(self.norm2(h))


class Transformer(nn.Module):
    """The encoder of the module docstring: ids [B, n] int64 -> logits (shape per task).

    Built by :func:`build_transformer`, which checks the arguments.
    """

    def __init__(self, cfg: SRHMConfig, task: str, width: int, depth: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.task, self.width, self.depth, self.heads = task, width, depth, heads
        self.v, self.n = cfg.v, sequence_length(cfg, task)
        self.embed = nn.Embedding(vocabulary_size(cfg.v), width)
        self.position = nn.Parameter(torch.zeros(self.n, width))
        self.drop = nn.Dropout(dropout)
        causal = task == "next"
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, dropout, causal) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, output_size(cfg, task))

    def hidden_layer_names(self) -> list[str]:
        """``["blocks.0", ..., "blocks.{depth-1}"]``: modules whose output is the residual stream [B, n, W]."""
        return [f"blocks.{k}" for k in range(self.depth)]

    def layer_names(self) -> list[str]:
        """Hidden block names followed by ``"output"`` (the logits)."""
        return self.hidden_layer_names() + ["output"]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, n] integer codes -> logits [B, C] (class, last) or [B, n, C] (mlm, next)."""
        if ids.dim() != 2 or ids.shape[1] != self.n or ids.dtype.is_floating_point:
            raise ValueError(
                f"invalid input shape {tuple(ids.shape)} dtype {ids.dtype}: expected integer ids [B, n={self.n}]"
            )
        h = self.drop(self.embed(ids.long()) + self.position)
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        if self.task == "class":
            h = h.mean(dim=1)
        elif self.task == "last":
            h = h[torch.arange(len(h), device=h.device), (ids == mask_id(self.v)).int().argmax(dim=1)]
        return self.output(h)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=INIT_STD)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def check_architecture(cfg, task, width, depth, heads, mlp_ratio, dropout) -> None:
    """ValueError (TypeError for a wrong type) naming the first argument of ``build_transformer`` out of bounds."""
    check_config(cfg)
    require_choice("task", task, TASKS)
    width = require_int("width", width, 1)
    require_int("depth", depth, 1)
    heads = require_int("heads", heads, 1, width)
    require(width % heads == 0, "heads", heads, f"a divisor of width={width}")
    require_int("mlp_ratio", mlp_ratio, 1)
    ok = isinstance(dropout, (int, float)) and not isinstance(dropout, bool)
    require(ok, "dropout", dropout, "a real in [0, 1)", ParameterTypeError)
    require(0.0 <= dropout < 1.0, "dropout", dropout, "0 <= dropout < 1")
    require(task != "next" or cfg.d >= 2, "task", task, f"d >= 2 for next (d = {cfg.d})")


def build_transformer(
    cfg: SRHMConfig,
    task: str = "class",
    *,
    width: int = DEFAULT_WIDTH,
    depth: int = DEFAULT_DEPTH,
    heads: int = DEFAULT_HEADS,
    mlp_ratio: int = DEFAULT_MLP_RATIO,
    dropout: float = 0.0,
    seed: int = 0,
) -> Transformer:
    """The transformer encoder for ``cfg`` and ``task`` (module docstring; format.md §15).

    Parameters
    ----------
    cfg : SRHMConfig
        The config (``v``, ``d``, ``nc`` are read).
    task : {"class", "last", "mlm", "next"}
        Sets the readout and, for ``next``, causal attention and ``d - 1`` positions.
    width : int
        W, the residual stream's size, a multiple of ``heads`` (default ``DEFAULT_WIDTH``).
    depth : int
        Number of blocks ``blocks.0 ..`` (default ``DEFAULT_DEPTH``).
    heads : int
        Attention heads per block (default ``DEFAULT_HEADS``).
    mlp_ratio : int
        Hidden size of each block's MLP over W.
    dropout : float
        In [0, 1), after the embeddings, the attention and the MLP (training mode only).
    seed : int
        The initialisation is a pure function of it (the global torch RNG is left as it was).

    Returns
    -------
    Transformer
        On CPU (move it with ``.to(device)``); input ids [B, n] integer, output logits
        [B, nc] (class), [B, v] (last), [B, d, v] (mlm), [B, d-1, v+1] (next).
        ``num_parameters(cfg, task, ...)`` equals its trainable scalars.

    Raises
    ------
    TypeError
        An argument of the wrong type.
    ValueError
        An unknown task, ``width``, ``depth``, ``heads`` or ``mlp_ratio`` below 1, ``heads``
        not dividing ``width``, ``dropout`` outside [0, 1).

    Examples
    --------
    >>> import torch, srhm_datasets as srhm
    >>> cfg = srhm.get_config("demo")  # v = 4, d = 16, nc = 4
    >>> model = build_transformer(cfg, "next", width=16, depth=2, heads=2)
    >>> model(torch.zeros(3, cfg.d - 1, dtype=torch.long)).shape
    torch.Size([3, 15, 5])
    >>> model.hidden_layer_names()
    ['blocks.0', 'blocks.1']
    >>> build_transformer(cfg, width=16, depth=1, heads=2)(torch.zeros(3, cfg.d, dtype=torch.long)).shape
    torch.Size([3, 4])
    """
    check_architecture(cfg, task, width, depth, heads, mlp_ratio, dropout)
    seed = require_int("seed", seed, 0, 2**63 - 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Transformer(cfg, task, int(width), int(depth), int(heads), int(mlp_ratio), float(dropout))
        model.apply(_init_weights)
        nn.init.normal_(model.position, std=INIT_STD)
    return model


def num_parameters(
    cfg: SRHMConfig,
    task: str = "class",
    width: int = DEFAULT_WIDTH,
    depth: int = DEFAULT_DEPTH,
    mlp_ratio: int = DEFAULT_MLP_RATIO,
) -> int:
    """Trainable scalars of ``build_transformer(cfg, task, width=width, depth=depth, mlp_ratio=mlp_ratio)``.

    Checks the arguments as ``build_transformer`` does (ValueError naming one out of bounds), then
    counts by arithmetic: ``protocol.transformer_parameters`` (nothing allocated; ``heads`` does not
    change it).

    Examples
    --------
    >>> import srhm_datasets as srhm
    >>> num_parameters(srhm.get_config("demo"), "class", width=16, depth=2)
    7028
    """
    check_architecture(cfg, task, width, depth, 1, mlp_ratio, 0.0)
    return transformer_parameters(cfg, task, width, depth, mlp_ratio)
