"""Models the package has never seen, built by factory functions (``--factory tests.user_models:NAME``)."""

import torch
from torch import nn

from srhm_datasets.tasks import mask_id, unobserved_id


class TinyMLP(nn.Module):
    """Flattened [B, v, d] floats -> one hidden ReLU layer (``hidden``) -> logits [B, nc] (``output``)."""

    def __init__(self, cfg, width: int = 32):
        super().__init__()
        self.width = width
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(cfg.v * cfg.d, width), nn.ReLU())
        self.output = nn.Linear(width, cfg.nc)

    def hidden_layer_names(self):
        return ["hidden"]

    def forward(self, x):
        return self.output(self.hidden(x))


def tiny_mlp(cfg):
    """A one-hidden-layer MLP on the whiten/onehot encoding (a factory of the config alone)."""
    return TinyMLP(cfg)


class TokenNet(nn.Module):
    """Token ids [B, n] -> embedding -> per-position MLP: logits [B, nc] pooled (``class``), [B, v] at the
    MASK (``last``), [B, d, v] per position (``mlm``) or [B, d-1, v+1] (``next``: blanks are targets too).
    Each position's context is a mix of the whole row, or for ``next`` (``causal``) the mean of the positions
    up to it; ``causal=False`` mixes the whole row for ``next`` too, so position i sees its target, input i+1.
    """

    def __init__(self, cfg, task, width: int = 32, causal: bool = True):
        super().__init__()
        self.task, self.v, self.causal = task, cfg.v, causal and task == "next"
        n = cfg.d - 1 if task == "next" else cfg.d
        self.embed = nn.Embedding(unobserved_id(cfg.v) + 1, width)
        self.position = nn.Parameter(torch.zeros(n, width))
        self.mix = nn.Sequential(nn.Flatten(), nn.Linear(n * width, width), nn.ReLU())
        out = {"class": cfg.nc, "next": cfg.v + 1}.get(task, cfg.v)  # next predicts blanks too
        self.output = nn.Linear(2 * width, out)

    def forward(self, tokens):
        h = self.embed(tokens) + self.position  # [B, n, w]
        if self.causal:  # position i: the mean of positions 0..i
            seen = torch.arange(1, h.shape[1] + 1, device=h.device, dtype=h.dtype)[:, None]
            return self.output(torch.cat([h.cumsum(1) / seen, h], -1))
        context = self.mix(h)  # [B, w]
        if self.task == "class":
            return self.output(torch.cat([context, h.mean(1)], -1))
        per_position = self.output(torch.cat([context[:, None].expand_as(h), h], -1))  # [B, n, v]
        if self.task == "last":
            at_mask = (tokens == mask_id(self.v)).float().argmax(1)
            return per_position[torch.arange(len(tokens)), at_mask]
        return per_position


def token_net(cfg, task):
    """A token model for any task (a factory of the config and the task's name); causal for ``next``."""
    return TokenNet(cfg, task)


def sees_the_future(cfg, task):
    """A token model whose output at position i of ``next`` depends on every input, its target included."""
    return TokenNet(cfg, task, causal=False)


class SamePaddingConv(nn.Module):
    """Token ids [B, n] -> embedding -> a convolution of kernel 3 with 'same' padding -> [B, n, v+1]: position
    i reads the inputs at i - 1, i and i + 1 (for ``next``, its target)."""

    def __init__(self, cfg, width: int = 16):
        super().__init__()
        self.embed = nn.Embedding(unobserved_id(cfg.v) + 1, width)
        self.conv = nn.Conv1d(width, width, 3, padding=1)
        self.output = nn.Linear(width, cfg.v + 1)

    def forward(self, tokens):
        h = self.conv(self.embed(tokens).transpose(1, 2)).relu().transpose(1, 2)
        return self.output(h)


def same_padding_conv(cfg, task):
    """A ``next`` model that sees one position ahead (a centred convolution)."""
    return SamePaddingConv(cfg)


def two_outputs(cfg):
    """Two logits: fewer than the nc classes of the class task."""
    return nn.Sequential(nn.Flatten(), nn.Linear(cfg.v * cfg.d, 2))


def class_token_net(cfg, task):
    """A class model whatever the task (its output [B, nc] does not fit mlm's [B, d, v])."""
    return TokenNet(cfg, "class")


def not_a_module(cfg):
    return "not a module"


def frozen_mlp(cfg):
    """A model without a trainable parameter: its loss does not backpropagate."""
    return TinyMLP(cfg).requires_grad_(False)


def reads_a_missing_setting(cfg):
    """A factory that raises: it reads a setting the config does not have."""
    return TinyMLP(cfg, width=cfg.hidden_width)


class Peek(nn.Module):
    """A next-token model that reads what it predicts (not causal): its logits at input position i are the
    one-hot of input i + 1, the token it is asked for; at the last position, a copy of the last input."""

    def __init__(self, cfg):
        super().__init__()
        self.v = cfg.v
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, tokens):  # [B, d-1] ids
        ahead = torch.cat([tokens[:, 1:], tokens[:, -1:]], 1).clamp(max=self.v)
        return self.scale * nn.functional.one_hot(ahead, self.v + 1).float()  # [B, d-1, v+1]


def peek(cfg, task):
    """A model of ``next`` that sees the future (a factory of the config and the task's name)."""
    return Peek(cfg)
