"""A user's model: ``module:function`` loaded, called with the config (and task), and traced (format.md §10.5).

``load_factory`` imports the function; ``build_factory_model`` calls it with the config, and the task
when the function takes two arguments, and checks that it returns a ``torch.nn.Module``;
``factory_record`` is what ``results.json`` records so that a result can be traced to the code
that made it: the factory, a model name, the parameter count and the SHA-256 of the source of the
function's module.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys

import torch

from ..config import SRHMConfig, require_choice
from ..tasks import TASKS


def load_factory(spec: str):
    """The callable named by ``module:function`` (module importable; the working dir is on the path).

    Raises ValueError naming ``factory`` when ``spec`` has no colon, the module or the function cannot
    be imported, or the object is not callable.

    Examples
    --------
    >>> load_factory("math:hypot")(3, 4)
    5.0
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"invalid parameter factory={spec!r}: expected 'module:function'")
    module, attr = spec.split(":", 1)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"invalid parameter factory={spec!r}: {err}") from None
    if not callable(obj):
        raise ValueError(f"invalid parameter factory={spec!r}: {attr} is not callable")  # noqa: TRY004 (a bad option)
    return obj


def _takes_task(function) -> bool:
    """True when ``function`` accepts two positional arguments (config, task)."""
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: called with the config alone
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def build_factory_model(factory: str, cfg: SRHMConfig, task: str = "class") -> torch.nn.Module:
    """``function(cfg, task)`` when the factory's function takes two arguments, else ``function(cfg)``.

    ``task``: the task's name (``tasks.TASKS``; its parameters are in the inputs: the MASK codes of
    ``last`` and ``mlm``). Raises ValueError (``load_factory``, an unknown task) or TypeError naming
    ``factory`` when it does not return a ``torch.nn.Module``.

    Examples
    --------
    >>> import srhm_datasets as srhm
    >>> model = build_factory_model("torch.nn:Identity", srhm.get_config("demo"))
    >>> type(model).__name__
    'Identity'
    """
    require_choice("task", task, TASKS)
    function = load_factory(factory)
    model = function(cfg, task) if _takes_task(function) else function(cfg)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"invalid parameter factory={factory!r}: returned {type(model).__name__}, expected torch.nn.Module"
        )
    return model


def factory_name(factory: str) -> str:
    """The default model name of a factory ``module:function``: the function's name.

    Examples
    --------
    >>> factory_name("tests.user_models:tiny_mlp")
    'tiny_mlp'
    """
    return factory.split(":", 1)[1].split(".")[-1]


def factory_record(factory: str, model: torch.nn.Module, name: str | None = None) -> dict:
    """The ``model`` fields of ``results.json`` tracing a user's model (format.md §12.2): ``factory``,
    ``name`` (default: the function's name), ``n_parameters`` (trainable scalars) and ``source_sha256``
    (SHA-256 of ``inspect.getsource`` of the function's module; None when its source is not available).

    Examples
    --------
    >>> import torch
    >>> record = factory_record("torch.nn:Linear", torch.nn.Linear(2, 3))
    >>> record["name"], record["n_parameters"], len(record["source_sha256"])
    ('Linear', 9, 64)
    """
    function = load_factory(factory)
    try:
        source = inspect.getsource(inspect.getmodule(function))
    except (OSError, TypeError):  # a builtin or a module without a file
        source = None
    return {
        "factory": factory,
        "name": name or factory_name(factory),
        "n_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "source_sha256": hashlib.sha256(source.encode()).hexdigest() if source is not None else None,
    }


#: Name of the readout module whose output (the logits) the sensitivities are measured on last.
OUTPUT = "output"


def default_layers(model: torch.nn.Module) -> list[str]:
    """``model.hidden_layer_names()`` (when the model has it) followed by ``"output"``: the modules whose
    outputs the sensitivities S and D are measured on (format.md §11), found by name.

    Examples
    --------
    >>> import torch
    >>> default_layers(torch.nn.Sequential())
    ['output']
    """
    names = list(model.hidden_layer_names()) if hasattr(model, "hidden_layer_names") else []
    return [n for n in names if n != OUTPUT] + [OUTPUT]
