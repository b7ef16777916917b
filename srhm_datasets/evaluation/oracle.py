"""A rules oracle: a module that parses SRHM inputs bottom-up with the true rules.

``RulesParser(cfg)`` maps an encoded input to class logits that are exactly right on
every valid input: its test error is 0 and its output sensitivities S_{out,l} and
D_{out,l} are 0 at every level, since both perturbations keep the label. It is the
reference point of the scale ("a perfect model") and a check of the evaluation
pipeline; ``build(cfg)`` is a ``--factory`` for ``srhm evaluate``.

Hidden "layers" (``hidden_layer_names()``): ``levels.j`` (j = 0..L-2) is the one-hot
[v+1, S**(L-1-j)] of the symbol string at depth L-1-j (blank = channel v), obtained
after j+1 parsing steps. It is invariant to synonym exchanges and diffeomorphisms at
levels l <= j+1 and changes with those at levels above.
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import SRHMConfig
from ..rules import sample_rules


class RulesParser(torch.nn.Module):
    """Exact classifier of a config's inputs; no trainable parameters.

    forward(x): x is [B, v, d] (``onehot`` or ``whiten`` encoding: a present symbol is
    the channel at 1, a blank column has no channel above 0.5) or [B, d] integer ids
    (``tokens``). Returns logits [B, nc]: ``scale`` at the parsed class, 0 elsewhere;
    all zeros for an input that no rule derives.
    """

    def __init__(self, cfg: SRHMConfig, scale: float = 10.0) -> None:
        super().__init__()
        self.cfg = cfg
        self.scale = scale
        powers = cfg.v ** np.arange(cfg.s - 1, -1, -1, dtype=np.int64)
        for k, table in enumerate(sample_rules(cfg)):  # table [n_k, m, s]
            codes = (table.astype(np.int64) * powers).sum(-1).reshape(-1)  # tuple code per (parent, r)
            parents = np.repeat(np.arange(table.shape[0], dtype=np.int64), table.shape[1])
            order = np.argsort(codes)
            self.register_buffer(f"codes{k}", torch.as_tensor(codes[order]), persistent=False)
            self.register_buffer(f"parents{k}", torch.as_tensor(parents[order]), persistent=False)
        self.register_buffer("powers", torch.as_tensor(powers), persistent=False)
        self.levels = torch.nn.ModuleList(torch.nn.Identity() for _ in range(cfg.L - 1))

    def hidden_layer_names(self) -> list[str]:
        """Names of the per-level symbol one-hots, bottom level first."""
        return [f"levels.{j}" for j in range(self.cfg.L - 1)]

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Integer tokens [B, d] (blank = v) from an encoded input."""
        if x.ndim == 2:
            return x.long()
        best, idx = x.max(dim=1)
        return torch.where(best > 0.5, idx, torch.full_like(idx, self.cfg.v))

    def parse_step(self, seq: torch.Tensor, k: int) -> torch.Tensor:
        """Symbols [B, S**k] at depth k (blank v, invalid -1) from those [B, S**(k+1)] below."""
        cfg = self.cfg
        B = seq.shape[0]
        patches = seq.reshape(B, cfg.S**k, cfg.S)
        informative = (patches != cfg.v) & (patches >= 0)
        count = informative.sum(-1)
        # order-preserving gather of the informative slots: they sort first, by position
        key = (~informative).long() * cfg.S + torch.arange(cfg.S, device=seq.device)
        first = key.argsort(dim=-1)[..., : cfg.s]
        children = patches.gather(-1, first).clamp(min=0, max=cfg.v - 1)
        code = (children * self.powers).sum(-1)
        codes, parents = getattr(self, f"codes{k}"), getattr(self, f"parents{k}")
        at = torch.searchsorted(codes, code).clamp(max=codes.numel() - 1)
        found = codes[at] == code
        parent = torch.where(found, parents[at], torch.full_like(code, -1))
        parent = torch.where(count == cfg.s, parent, torch.full_like(parent, -1))
        parent = torch.where(count == 0, torch.full_like(parent, cfg.v), parent)
        return torch.where((patches == -1).any(-1), torch.full_like(parent, -1), parent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        seq = self.tokens(x)
        for j, k in enumerate(range(cfg.L - 1, -1, -1)):
            seq = self.parse_step(seq, k)
            if k > 0:  # expose the depth-k string as a [B, v+1, S**k] one-hot (invalid -> zeros)
                onehot = torch.nn.functional.one_hot(seq.clamp(min=0), cfg.v + 1).float()
                onehot = onehot * (seq >= 0).unsqueeze(-1)
                self.levels[j](onehot.transpose(1, 2))  # a hook point: [B, v+1, S**k]
        label = seq[:, 0]
        logits = torch.nn.functional.one_hot(label.clamp(min=0, max=cfg.nc - 1), cfg.nc).float() * self.scale
        return logits * ((label >= 0) & (label < cfg.nc)).unsqueeze(-1)


def build(cfg: SRHMConfig) -> RulesParser:
    """``--factory srhm_datasets.evaluation.oracle:build``: the rules oracle of a config."""
    return RulesParser(cfg)
