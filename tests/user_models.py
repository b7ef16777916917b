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
    MASK (``last``), [B, d, v] per position (``mlm``) or [B, d-1, v+1] (``next``: blanks are targets too)."""

    def __init__(self, cfg, task, width: int = 32):
        super().__init__()
        self.task, self.v = task, cfg.v
        n = cfg.d - 1 if task == "next" else cfg.d
        self.embed = nn.Embedding(unobserved_id(cfg.v) + 1, width)
        self.position = nn.Parameter(torch.zeros(n, width))
        self.mix = nn.Sequential(nn.Flatten(), nn.Linear(n * width, width), nn.ReLU())
        out = {"class": cfg.nc, "next": cfg.v + 1}.get(task, cfg.v)  # next predicts blanks too
        self.output = nn.Linear(2 * width, out)

    def forward(self, tokens):
        h = self.embed(tokens) + self.position  # [B, n, w]
        context = self.mix(h)  # [B, w]
        if self.task == "class":
            return self.output(torch.cat([context, h.mean(1)], -1))
        per_position = self.output(torch.cat([context[:, None].expand_as(h), h], -1))  # [B, n, v]
        if self.task == "last":
            at_mask = (tokens == mask_id(self.v)).float().argmax(1)
            return per_position[torch.arange(len(tokens)), at_mask]
        return per_position


def token_net(cfg, task):
    """A token model for any task (a factory of the config and the task's name)."""
    return TokenNet(cfg, task)


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
