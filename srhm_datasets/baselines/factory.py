"""A user's model: ``module:function`` loaded, called with the config (and task), and traced (format.md §10.5).

``load_factory`` imports the function; ``build_factory_model`` calls it with the config, and the task
when the function takes two arguments, and checks that it returns a ``torch.nn.Module``;
``factory_record`` is what ``results.json`` records so that a result can be traced to the code
that made it: the factory, a model name (``model_name``), the parameter count and the SHA-256 of the
source of the function's module (``source_sha256``, part of a run's identity: ``protocol.RUN_SETTINGS``).
A factory that cannot be imported, raises, or returns no module is refused with a ``ValueError`` naming
``factory`` (``config.ParameterTypeError``, also a ``TypeError``, for a result that is no module).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys

import torch

from ..config import ParameterTypeError, SRHMConfig, require, require_choice
from ..tasks import TASKS


def load_factory(spec: str):
    """The callable named by ``module:function`` (module importable; the working dir is on the path).

    Raises ValueError naming ``factory`` when ``spec`` has no colon, the module or the function cannot
    be imported (an error raised while importing the module included: its type and message are named),
    or the object is not callable.

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
    except Exception as err:  # noqa: BLE001 (the user's module raised while it was imported: named in one line)
        raise ValueError(f"invalid parameter factory={spec!r}: importing {module} raised {error_line(err)}") from err
    if not callable(obj):
        raise ValueError(f"invalid parameter factory={spec!r}: {attr} is not callable")  # noqa: TRY004 (a bad option)
    return obj


def error_line(err: BaseException) -> str:
    """``Type: first line of the message`` of an exception.

    Examples
    --------
    >>> error_line(RuntimeError("mat1 and mat2 shapes cannot be multiplied\\nmore"))
    'RuntimeError: mat1 and mat2 shapes cannot be multiplied'
    """
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


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
    ``last`` and ``mlm``). Raises ValueError naming ``factory`` (``load_factory``; the function raised,
    with the error's type and message; an unknown task), or ``config.ParameterTypeError`` (a TypeError
    and a ValueError) naming ``factory`` when it does not return a ``torch.nn.Module``.

    Examples
    --------
    >>> import srhm_datasets as srhm
    >>> model = build_factory_model("torch.nn:Identity", srhm.get_config("demo"))
    >>> type(model).__name__
    'Identity'
    """
    require_choice("task", task, TASKS)
    function = load_factory(factory)
    try:
        model = function(cfg, task) if _takes_task(function) else function(cfg)
    except Exception as err:  # noqa: BLE001 (the user's function raised: named in one line)
        raise ValueError(f"invalid parameter factory={factory!r}: calling it raised {error_line(err)}") from err
    require(
        isinstance(model, torch.nn.Module),
        "factory",
        factory,
        f"a function returning a torch.nn.Module (it returned {type(model).__name__})",
        ParameterTypeError,
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


def model_name(opt) -> str:
    """The name of a run's model (resolved or not ``TrainOptions``): ``--name``, else the function's name, for a
    user's model (``factory``); the reference network's ``arch`` otherwise.

    Examples
    --------
    >>> from srhm_datasets import get_config
    >>> from srhm_datasets.protocol import TrainOptions
    >>> model_name(TrainOptions(config=get_config("demo"), P=10, factory="tests.user_models:tiny_mlp"))
    'tiny_mlp'
    >>> model_name(TrainOptions(config=get_config("demo"), P=10, arch="transformer"))
    'transformer'
    """
    return opt.arch if opt.factory is None else opt.name or factory_name(opt.factory)


def source_sha256(factory: str) -> str | None:
    """SHA-256 (hex) of ``inspect.getsource`` of the module of the factory's function, as the file reads
    now; None when its source is not available (a builtin, a module without a file, an interactive
    ``__main__``). Part of a run's identity (``protocol.RUN_SETTINGS``, format.md §10.5): it covers that
    module only, not the modules it imports. ValueError naming ``factory`` when it cannot be imported.

    Examples
    --------
    >>> len(source_sha256("torch.nn:Linear")), source_sha256("math:hypot")
    (64, None)
    """
    function = load_factory(factory)
    try:
        source = inspect.getsource(inspect.getmodule(function))
    except (OSError, TypeError):  # a builtin or a module without a file
        return None
    return hashlib.sha256(source.encode()).hexdigest()


def check_source(factory: str, recorded: str | None) -> None:
    """The factory's module still reads as when ``recorded`` (its ``source_sha256``) was taken: a model
    rebuilt from other code would be evaluated as if it were the recorded one. ValueError naming
    ``factory`` otherwise; nothing to check when ``recorded`` is None (the source was not available).

    Examples
    --------
    >>> check_source("torch.nn:Linear", source_sha256("torch.nn:Linear"))
    >>> check_source("torch.nn:Linear", "0" * 64)
    Traceback (most recent call last):
    ...
    ValueError: invalid parameter factory='torch.nn:Linear': must satisfy the code the model was made with ...
    """
    now = source_sha256(factory)
    require(
        recorded is None or now == recorded,
        "factory",
        factory,
        f"the code the model was made with (the source_sha256 of its module was {recorded[:12]}..., it is "
        f"{now[:12] + '...' if now else 'not available'} now): restore that code, or train the model again",
    )


def factory_record(factory: str, model: torch.nn.Module, name: str | None = None) -> dict:
    """The ``model`` fields of ``results.json`` tracing a user's model (format.md §12.2): ``factory``,
    ``name`` (default: the function's name), ``n_parameters`` (trainable scalars) and ``source_sha256``
    (``source_sha256``: of the function's module; None when its source is not available).

    Examples
    --------
    >>> import torch
    >>> record = factory_record("torch.nn:Linear", torch.nn.Linear(2, 3))
    >>> record["name"], record["n_parameters"], len(record["source_sha256"])
    ('Linear', 9, 64)
    """
    return {
        "factory": factory,
        "name": name or factory_name(factory),
        "n_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "source_sha256": source_sha256(factory),
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
