"""Shared checks for the torch adapter tests."""

import numpy as np
import torch
from click.testing import CliRunner

from srhm_datasets.catalog import CATALOG
from srhm_datasets.cli import main

#: The columns of a batch, in the order ``as_rows`` lays them out.
COLS = ("tokens", "label", "latents", "synonyms", "placements")


def assert_one_sgd_step_learns(x: torch.Tensor, y: torch.Tensor) -> None:
    """A linear model on flattened x [B, v, d] takes one SGD step that changes it and lowers its loss."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x.shape[1] * x.shape[2], int(y.max()) + 1))
    before = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    with torch.no_grad():  # one plain SGD step (torch.optim's first use costs seconds of imports)
        for p in model.parameters():
            p -= 0.5 * p.grad
    assert torch.isfinite(loss)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with torch.no_grad():
        assert torch.nn.functional.cross_entropy(model(x), y) < loss  # the step helped on its batch


def train_run(tmp_path, cfg, P=64, arch="cnn", name="run", *options: str, factory: str | None = None):
    """A tiny real ``srhm train`` run folder (``options``: more options of ``srhm train``, a later one
    overriding a default; ``factory``: a user's model in place of ``arch``)."""
    out = tmp_path / name
    model = ["--arch", arch, "--width", "8"] if factory is None else ["--factory", factory]
    args = [
        "train",
        "--config",
        cfg.name,
        "--P",
        str(P),
        *model,
        "--max-steps",
        "6",
        "--eval-every",
        "3",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(out),
        *options,
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out


def as_rows(batches) -> np.ndarray:
    """Batch dicts (or one generate() dict) -> one int64 row per sample, all columns."""
    if isinstance(batches, dict):
        batches = [batches]
    parts = [
        np.concatenate([np.asarray(b[k]).reshape(len(b["label"]), -1).astype(np.int64) for k in COLS], 1)
        for b in batches
    ]
    return (
        np.concatenate(parts)
        if parts
        else np.zeros((0, 1 + CATALOG["demo"].d + 3 * CATALOG["demo"].num_nodes), np.int64)
    )
