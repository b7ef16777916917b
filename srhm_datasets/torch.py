"""torch adapters (SPEC 7, 9): encodings on the tokens' device.

``encode`` is the fast path: uint8 tokens [B, d] go to the training device, and the
[B, v, d] float input is built there.
"""

from __future__ import annotations

import math

import torch

ENCODINGS = ("onehot", "whiten", "tokens")


def encode(tokens: torch.Tensor, v: int, kind: str = "whiten", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Encode integer tokens [B, d] (blank = v) on their own device.

    onehot: [B, v, d], 1 at the symbol's channel, a blank is the zero column.
    whiten: [B, v, d], present 1, absent -1/sqrt(v-1); a blank column is all -1/sqrt(v-1).
    tokens: [B, d] int64 ids (blank = v), for models with an embedding.
    """
    if kind not in ENCODINGS:
        raise ValueError(f"invalid parameter kind={kind!r}: must be one of {ENCODINGS}")
    tokens = torch.as_tensor(tokens)
    if kind == "tokens":
        return tokens.long()
    channels = torch.arange(v, device=tokens.device, dtype=torch.long).view(1, v, 1)
    present = tokens.long().unsqueeze(1) == channels  # [B, v, d]; a blank (= v) matches no channel
    if kind == "onehot":
        return present.to(dtype)
    absent = -1.0 / math.sqrt(v - 1)
    return torch.where(present, 1.0, absent).to(dtype)
