"""A user's model as a leaderboard submission (``srhm evaluate --factory``; format.md §12.1).

``build_user_model`` calls a ``module:function`` (``baselines.factory``) with the config
and loads a checkpoint's state dict; ``submission_results`` makes the results object of a
model evaluated outside ``srhm train`` (no ``training`` object); ``read_submission`` reads
back an earlier submission, refusing a ``srhm train`` run folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..baselines.checkpoint import load_state_checked, load_state_dict
from ..baselines.factory import build_factory_model, factory_record
from ..catalog import get_config
from ..config import SRHMConfig, is_int, require
from ..protocol import RESULTS_FILE
from ..provenance import dataset_info, package_info
from ..results import FORMAT, read_results
from ..tasks import Task
from .measure import ModelMismatch, task_record


def build_user_model(
    factory: str, cfg: SRHMConfig, checkpoint: str | os.PathLike | None = None, task: str = "class"
) -> torch.nn.Module:
    """``factory(cfg)`` or ``factory(cfg, task)`` (``baselines.factory.build_factory_model``; ``task`` the
    task's name), with ``checkpoint``'s state dict loaded if given; ``measure.ModelMismatch`` (a ValueError)
    when the state dict does not fit that model."""
    model = build_factory_model(factory, cfg, task)
    if checkpoint is not None:
        state = load_state_dict(checkpoint)
        try:
            load_state_checked(model, state, f"{str(checkpoint)!r} for factory {factory!r} on {cfg.name} ({task})")
        except ValueError as err:
            raise ModelMismatch(str(err)) from None
    return model


def submission_P(cfg: SRHMConfig, P) -> None:
    """ValueError unless ``P`` (a submission's training-set size) is an int 1 <= P <= train size."""
    train_size = cfg.split_sizes()["train"]
    require(
        is_int(P) and 1 <= P <= train_size,
        "P",
        P,
        f"1 <= P <= {train_size} (train split size of {cfg.name}); a submission needs its training-set size (--P)",
    )


def submission_results(
    cfg: SRHMConfig,
    P: int,
    model: torch.nn.Module,
    *,
    name: str | None,
    arch: str,
    factory: str,
    layers: list[str],
    data: str | None,
    revision: str | None,
    task: Task | None = None,
) -> dict:
    """A new results object for a model evaluated outside ``srhm train`` (a leaderboard submission).

    Holds what is known without a training log: format, package, dataset provenance, P,
    the model's name/arch/factory/parameter count/layers (``width`` and ``depth`` from
    the module's attributes of those names when it has them), the SHA-256 of the factory's
    source (``baselines.factory.factory_record``) and, for a task other than ``class``
    without noise, the ``task`` (format.md §12.2). ``final_test_error`` and
    ``best_test_error`` are set from the evaluation by the caller.
    """
    submission_P(cfg, P)
    attr = lambda key: getattr(model, key) if isinstance(getattr(model, key, None), int) else None
    results = {
        "format": dict(FORMAT),
        "package": package_info(None),
        "dataset": dataset_info(cfg, data, revision),
        "P": P,
        "model": {
            "arch": arch,
            "name": name or factory,
            "factory": factory,
            "width": attr("width"),
            "depth": attr("depth"),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "layer_names": list(layers),
            "source_sha256": factory_record(factory, model)["source_sha256"],
        },
        "checkpoint": None,
    }
    if task is not None and not task.plain:
        results["task"] = task_record(task)
    return results


def read_submission(out_dir: Path, config: str | None, P: int | None, name: str | None) -> tuple[dict, SRHMConfig]:
    """``(results, cfg)`` of the submission in ``out_dir/results.json``, renamed to ``name`` if given.

    ValueError when the file is a ``srhm train`` run (a submission goes to its own folder) or
    ``config`` / ``P``, when given, differ from the file's.
    """
    path = out_dir / RESULTS_FILE
    results = read_results(path)
    if "training" in results:
        raise ValueError(
            f"invalid parameter RUN_DIR={str(out_dir)!r}: it holds a srhm train run ({RESULTS_FILE} has a training "
            "object) and --factory would file another model's evaluation under it; give your model its own folder "
            "(with --config and --P), or run `srhm evaluate RUN_DIR` without --factory to evaluate the run"
        )
    cfg = get_config(results["dataset"]["config"])
    if config is not None and get_config(config) != cfg:
        raise ValueError(f"invalid parameter config={config!r}: {path} is for config {cfg.name}")
    if P is not None and P != results.get("P"):
        raise ValueError(f"invalid parameter P={P}: {path} has P={results.get('P')}")
    if name:
        results["model"]["name"] = name
    return results, cfg
