"""Checkpoints of ``srhm train`` (format.md §10.3): write a run folder, read a checkpoint back.

A checkpoint is a ``torch.save`` dict: ``format`` (``CHECKPOINT_FORMAT``), ``model_state``
(the parameters with the lowest test error) and the metadata that rebuilds the network
(``CHECKPOINT_KEYS``, plus encoding, seed, P, step, test error, package version).
``write_run`` writes it together with the run's ``results.json``; ``read_checkpoint`` /
``model_from_checkpoint`` / ``load_checkpoint`` read it back; ``load_state_dict`` reads
the state dict of any checkpoint (a user's submission too).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from ..config import SRHMConfig
from ..files import atomic_write, mark_owned
from ..protocol import CHECKPOINT_FILE, CHECKPOINT_FORMAT, CUSTOM_ARCH, RESULTS_FILE
from ..results import validate_results, write_results
from ..torch_data.encoding import check_device
from ..version import __version__
from .factory import build_factory_model
from .models import build_model
from .transformer import build_transformer

#: What ``torch.load(weights_only=True)`` raises for a damaged or foreign file.
TORCH_LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError, KeyError)
#: Keys every checkpoint of ``srhm train`` holds besides ``model_state``.
CHECKPOINT_KEYS = ("config", "arch", "width", "norm", "bias")
#: Keys under which a checkpoint dict may hold the state dict, in order of preference.
STATE_KEYS = ("model_state", "model_state_dict", "state_dict", "model", "best_state_dict")


def run_checkpoint(
    opt, model_state: dict, step: int, test_error: float, catalog_name: str | None, run: str, model: dict | None = None
) -> dict:
    """The ``checkpoint.pt`` dict of the run ``run`` (``protocol.run_id``, also in its results) with resolved
    options ``opt`` (a ``TrainOptions``): its kept ``model_state`` (CPU tensors), taken at ``step`` with
    ``test_error``. A user's model (``opt.factory``) records its ``factory`` and ``task`` (what rebuilds it),
    arch ``custom`` and the ``width`` and ``depth`` of ``model`` (the results' ``model`` object); the
    transformer records its ``task`` (what sets its readout) and ``depth`` (its blocks)."""
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "run_id": run,
        "model_state": model_state,
        "arch": opt.arch,
        "width": opt.width,
        "depth": (model or {}).get("depth", opt.config.L),
        "norm": opt.norm,
        "bias": opt.bias,
        "config": opt.config.name,
        "catalog_name": catalog_name,
        "encoding": opt.encoding,
        "seed": opt.seed,
        "P": opt.P,
        "step": step,
        "test_error": test_error,
        "package_version": __version__,
    }
    task = {"name": opt.task, "context": opt.context, "mask_rate": opt.mask_rate, "noise": opt.noise}
    if opt.factory is None:
        return {**checkpoint, "task": task} if opt.arch == "transformer" else checkpoint
    sizes = {key: (model or {}).get(key) for key in ("width", "depth")}
    return {**checkpoint, "arch": CUSTOM_ARCH, **sizes, "factory": opt.factory, "task": task}


def write_run(out: str | os.PathLike, checkpoint: dict, results: dict) -> None:
    """Write one run's ``checkpoint.pt`` and ``results.json`` into ``out`` as a unit.

    The results are validated first (nothing is written when they fail; ValueError); the
    checkpoint is written to a temp name, then an old ``results.json`` is removed, the
    checkpoint renamed into place, and the results written atomically. At every moment the
    folder holds a finished run of one training (both files) or no results at all.
    """
    validate_results(results)
    out = Path(out)
    results_path = out / RESULTS_FILE
    mark_owned(out, "run", [CHECKPOINT_FILE, RESULTS_FILE])
    atomic_write(
        out / CHECKPOINT_FILE,
        lambda f: torch.save(checkpoint, f),
        before_replace=lambda: results_path.unlink(missing_ok=True),
    )
    write_results(results_path, results)


def _torch_load(path: Path):
    """``torch.load(path)`` on the CPU, weights only; ValueError for a damaged or non-torch file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except TORCH_LOAD_ERRORS as err:
        raise ValueError(f"invalid checkpoint {str(path)!r}: not readable by torch.load ({err})") from None


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The dict stored in ``checkpoint.pt`` (or its run folder), on the CPU: ``model_state`` and the metadata.

    Raises FileNotFoundError when there is no such file, ValueError when it is not a
    checkpoint of ``srhm train`` (unreadable, or without ``model_state`` and ``CHECKPOINT_KEYS``).
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"invalid parameter checkpoint={str(path)!r}: no such file")
    ckpt = _torch_load(path)
    missing = [k for k in ("model_state",) + CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ValueError(f"invalid checkpoint {str(path)!r}: not a srhm train checkpoint (missing {missing})")
    return ckpt


def load_state_dict(checkpoint: str | os.PathLike) -> dict:
    """The model ``state_dict`` in a checkpoint file, on the CPU: a bare state dict, or a dict holding one
    under one of ``STATE_KEYS`` (the first present). FileNotFoundError, or ValueError when none is found."""
    obj = _torch_load(Path(checkpoint))
    if isinstance(obj, dict):
        for key in STATE_KEYS:
            if isinstance(obj.get(key), dict):
                return obj[key]
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise ValueError(f"invalid checkpoint {str(checkpoint)!r}: no model state dict found")


def load_state_checked(model: torch.nn.Module, state: dict, what: str) -> None:
    """``model.load_state_dict(state)``, a ValueError naming ``what`` when the state dict does not fit
    the model (another config's or architecture's parameters: missing keys or other shapes)."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        first = str(err).strip().splitlines()[:3]
        raise ValueError(
            f"invalid checkpoint {what}: its parameters do not fit the model "
            f"(another config or architecture?): {' '.join(first)}"
        ) from None


def model_from_checkpoint(ckpt: dict, device: str = "cpu"):
    """``(model, cfg, meta)`` from a ``read_checkpoint`` dict (see ``load_checkpoint``): a reference network
    rebuilt from its metadata, or a user's model from its ``factory`` and ``task`` (importable again).

    ValueError when the stored config is unknown or the parameters do not fit the network
    the metadata describes.
    """
    cfg = SRHMConfig.from_name(ckpt["config"])
    if ckpt.get("factory") is not None:  # a user's model: rebuilt by its factory
        model = build_factory_model(ckpt["factory"], cfg, (ckpt.get("task") or {}).get("name", "class"))
    elif ckpt["arch"] == "transformer":
        task = (ckpt.get("task") or {}).get("name", "class")
        model = build_transformer(cfg, task, width=ckpt["width"], depth=ckpt["depth"])
    else:
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
