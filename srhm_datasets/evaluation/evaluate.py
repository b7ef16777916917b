"""Test error and sensitivity tables of a model, as the ``evaluation`` object of a results file.

The ``evaluation`` object (agreed with the results schema, ``srhm_datasets/results_schema.json``)::

    {"test_error": float, "num_test": int,
     "probe": {"source": "release" | "generator", "num_points": int,
               "perturbation": {"force": true, "key": 0}},
     "layers": [layer names],
     "sensitivity": {"synonym": {layer: [S_{k,1}, ..., S_{k,L}]},
                     "diffeo":  {layer: [D_{k,1}, ..., D_{k,L}]}},   # null where undefined
     "undefined": {"synonym": bool, "diffeo": bool},
     "checkpoint": {"file": str | null, "selection": "best" | "user", "step": int | null}}

``checkpoint`` (written by ``evaluate_run`` and ``evaluate_factory``, not by
``evaluate_model``) says which parameters were measured: a run's kept checkpoint (the
best test error during training, at ``step``) or a submission's state dict.

Probe points come from a release's ``probe`` split (``synonym_tokens`` / ``diffeo_tokens``
columns, the forced perturbations with key 0) or are generated afresh with
``generate(cfg, "probe")`` and ``perturb(..., force=True, key=0)``: both give the same
tokens, hence the same numbers. The test error is measured on the whole ``test`` split
(or its first ``num_test`` rows).

Entry points: ``evaluate_model`` (any module and config), ``evaluate_run`` (a run folder
of ``srhm train``; its checkpoint must match its results: config, arch, width, P, seed,
...), ``evaluate_factory`` (a user's ``module:function`` and checkpoint, written to its
own folder, never into a training run's results).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from pathlib import Path

import numpy as np
import torch

from ..config import SRHMConfig, require
from ..files import check_output_folder, mark_owned
from ..generate import generate
from ..probe import PROBE_FORCE, PROBE_KEY, make_block, probe_defined
from ..release.load import load_split
from ..results import get_field, read_results, write_results
from ..torch import encode
from ..torch_data.encoding import check_device, check_encoding
from .sensitivity import ActivationRecorder, as_tensor, check_batch_size, compute_sensitivities, default_layers

PROBE_SOURCES = ("release", "generator")
RESULTS_FILE = "results.json"
CHECKPOINT_FILE = "checkpoint.pt"
#: Options of ``perturb`` that made the probe's perturbed copies: the release builder's own.
PROBE_PERTURBATION = {"force": PROBE_FORCE, "key": PROBE_KEY}


# ---- probe and test points ----------------------------------------------------------------


@dataclasses.dataclass
class ProbeSet:
    """Base probe points and their perturbed copies.

    tokens [n, d], label [n]; synonym / diffeo [n, L, d] (index l-1 = level l), or None
    where the quantity is undefined for the config (m = 1, K = 1). ``source`` is
    "release" or "generator".
    """

    tokens: np.ndarray
    label: np.ndarray
    synonym: np.ndarray | None
    diffeo: np.ndarray | None
    source: str

    @property
    def num_points(self) -> int:
        return int(self.tokens.shape[0])

    def head(self, n: int | None) -> ProbeSet:
        """The first n points (all when n is None); 2 <= n <= num_points, else ValueError."""
        if n is None:
            return self
        check_num_probe(n, self.num_points, "probe points available")
        cut = lambda a: None if a is None else a[:n]  # noqa: E731
        return ProbeSet(self.tokens[:n], self.label[:n], cut(self.synonym), cut(self.diffeo), self.source)

    def perturbed(self) -> dict:
        """``{"synonym": [n, L, d] or None, "diffeo": ...}`` for ``compute_sensitivities``."""
        return {"synonym": self.synonym, "diffeo": self.diffeo}


def check_num_probe(n, size: int, what: str) -> None:
    """ValueError unless n is an int with 2 <= n <= size (a denominator needs two points)."""
    require(isinstance(n, int) and not isinstance(n, bool) and 2 <= n <= size, "num_probe", n,
            f"2 <= num_probe <= {size} ({what})")


def _probe_size(cfg: SRHMConfig, num_points: int | None) -> int:
    """``num_points`` checked against the config's probe split (its size when None)."""
    size = cfg.split_sizes()["probe"]
    if num_points is not None:
        check_num_probe(num_points, size, f"probe split size of {cfg.name}")
    return size if num_points is None else num_points


def _probe_set(cfg: SRHMConfig, cols: dict[str, np.ndarray], source: str) -> ProbeSet:
    """The ``ProbeSet`` of probe-split columns (tokens [n, d], label [n], synonym_tokens /
    diffeo_tokens [n, L, d]); a copy column whose forced change is impossible becomes None."""
    defined = probe_defined(cfg)
    copy = lambda column: cols[column] if defined[column] else None  # noqa: E731
    return ProbeSet(cols["tokens"], cols["label"], copy("synonym_tokens"), copy("diffeo_tokens"), source)


def generator_probe(cfg: SRHMConfig, num_points: int | None = None) -> ProbeSet:
    """Probe points from the generator: the rows the release builder writes (``release.build.make_block``:
    ``generate(cfg, "probe")`` and its forced key-0 perturbations)."""
    return _probe_set(cfg, make_block(cfg, "probe", 0, _probe_size(cfg, num_points)), "generator")


def _columns(dataset, names: list[str]) -> dict[str, np.ndarray]:
    """Numpy columns [n, ...] of a ``datasets.Dataset`` (fixed-length lists -> extra axes), via Arrow."""
    from ..release.features import from_arrow

    missing = [name for name in names if name not in dataset.column_names]
    if missing:
        raise ValueError(f"invalid dataset: columns {missing} missing (has {dataset.column_names})")
    table = dataset.select_columns(names).with_format("arrow")[:]
    return from_arrow(table)


def release_probe(data: str, cfg: SRHMConfig, revision: str | None = None, num_points: int | None = None) -> ProbeSet:
    """Probe points from a release folder or Hub repo (``probe`` split, format.md §6)."""
    _probe_size(cfg, num_points)  # the same bound as the generator's, before any download
    ds = load_split(data, cfg.name, "probe", revision=revision)
    cols = _columns(ds, ["tokens", "label", "synonym_tokens", "diffeo_tokens"])
    for name in ("synonym_tokens", "diffeo_tokens"):
        if cols[name].shape[1:] != (cfg.L, cfg.d):
            raise ValueError(f"invalid probe column {name} shape {cols[name].shape}: expected [n, L={cfg.L}, d={cfg.d}]")
    return _probe_set(cfg, cols, "release").head(num_points)


def load_probe(cfg: SRHMConfig, source: str = "generator", data: str | None = None, revision: str | None = None,
               num_points: int | None = None) -> ProbeSet:
    """The probe set from ``source`` ("release" needs ``data``, a folder or Hub repo id)."""
    if source not in PROBE_SOURCES:
        raise ValueError(f"invalid parameter probe_source={source!r}: must be one of {PROBE_SOURCES}")
    if source == "release":
        if not data:
            raise ValueError("invalid parameter data=None: probe_source='release' needs a release folder or repo (--data)")
        return release_probe(data, cfg, revision, num_points)
    return generator_probe(cfg, num_points)


def load_test(cfg: SRHMConfig, data: str | None = None, revision: str | None = None,
              num_test: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Tokens [n, d] and labels [n] of the ``test`` split (release when ``data``, else generator)."""
    size = cfg.split_sizes()["test"]
    n = size if num_test is None else num_test
    require(isinstance(n, int) and 1 <= n <= size, "num_test", num_test, f"1 <= num_test <= {size} (test split size)")
    if data:
        ds = load_split(data, cfg.name, "test", revision=revision)
        if n < len(ds):
            ds = ds.select(range(n))
        cols = _columns(ds, ["tokens", "label"])
        return cols["tokens"], cols["label"]
    batch = generate(cfg, "test", 0, n)
    return batch["tokens"], batch["label"]


@torch.inference_mode()
def test_error(model: torch.nn.Module, tokens, labels, v: int, encoding: str = "whiten", batch_size: int = 4096,
               device: torch.device | str | None = None) -> float:
    """Classification error of ``argmax model(encode(tokens))`` against labels [n] (eval mode)."""
    device = torch.device(check_device(device))
    check_batch_size(batch_size)
    tokens = as_tensor(tokens)
    labels = as_tensor(labels).long()
    if len(tokens) == 0:
        raise ValueError("invalid parameter tokens: empty test set")
    was_training = model.training
    model.eval().to(device)
    wrong = torch.zeros((), dtype=torch.long, device=device)
    try:
        for a in range(0, len(tokens), batch_size):
            x = encode(tokens[a : a + batch_size].to(device), v, encoding)
            pred = model(x).argmax(dim=-1)
            wrong += (pred != labels[a : a + batch_size].to(device)).sum()
    finally:
        model.train(was_training)
    return int(wrong) / len(tokens)


# ---- the evaluation object ----------------------------------------------------------------


def check_evaluation_options(cfg: SRHMConfig, *, probe=None, data=None, revision=None, encoding: str = "whiten",
                             layers=None, num_test=None, num_probe=None, batch_size=4096, device=None) -> str:
    """Check the options of an evaluation on ``cfg`` before any data is read or generated.

    ValueError naming the parameter, its value and the bound: ``probe`` (a ProbeSet of
    ``cfg``'s input length, or a source in ``PROBE_SOURCES``; "release" needs ``data``),
    ``data`` / ``revision`` (None or str / path), ``encoding``, ``layers`` (None or a
    non-empty list of names), ``num_test`` (1..test size), ``num_probe`` (2..probe size),
    ``batch_size`` (>= 1), ``device`` (an available device). Returns the device string.
    """
    if not isinstance(cfg, SRHMConfig):
        raise TypeError(f"invalid parameter cfg={cfg!r}: must be an SRHMConfig")
    if isinstance(probe, ProbeSet):
        require(probe.tokens.ndim == 2 and probe.tokens.shape[1] == cfg.d, "probe", f"ProbeSet {probe.tokens.shape}",
                f"probe tokens [n, d={cfg.d}] of {cfg.name}")
    else:
        require(probe is None or probe in PROBE_SOURCES, "probe_source", probe, f"one of {PROBE_SOURCES}")
        require(probe != "release" or bool(data), "data", data, "a release folder or repo when probe_source='release'")
    require(data is None or isinstance(data, (str, os.PathLike)), "data", data, "None, a folder or a Hub repo id")
    require(revision is None or isinstance(revision, str), "revision", revision, "None or a str")
    check_encoding(encoding, "encoding")
    require(layers is None or (isinstance(layers, (list, tuple)) and len(layers) > 0
                               and all(isinstance(x, str) and x for x in layers)),
            "layers", layers, "None or a non-empty list of layer names")
    test_size = cfg.split_sizes()["test"]
    require(num_test is None or (_is_int(num_test) and 1 <= num_test <= test_size), "num_test", num_test,
            f"1 <= num_test <= {test_size} (test split size)")
    if not isinstance(probe, ProbeSet):
        _probe_size(cfg, num_probe)
    elif num_probe is not None:
        check_num_probe(num_probe, probe.num_points, "probe points available")
    check_batch_size(batch_size)
    return check_device(device)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_model_fits(model, cfg: SRHMConfig, encoding: str, device) -> None:
    """``model`` maps two encoded test rows of ``cfg`` to logits [2, nc]; else a ValueError saying it
    was built for another config (other v, d or nc) instead of a wrong number later."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"invalid parameter model={type(model).__name__}: must be a torch.nn.Module")
    rows = generate(cfg, "test", 0, min(2, cfg.split_sizes()["test"]), workers=1)["tokens"]
    x = encode(torch.from_numpy(rows).to(device), cfg.v, encoding)
    was_training = model.training
    try:
        with torch.inference_mode():
            out = model.eval().to(device)(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        raise ValueError(f"invalid parameter model: it does not accept inputs of {cfg.name} "
                         f"(encoded [B, v={cfg.v}, d={cfg.d}], encoding {encoding!r}): {err}") from None
    finally:
        model.train(was_training)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    require(shape == (len(x), cfg.nc), "model", f"output {shape}",
            f"logits [B, nc={cfg.nc}] for {cfg.name} (a model of another config?)")


def evaluate_model(
    model: torch.nn.Module,
    cfg: SRHMConfig,
    *,
    layers: list[str] | None = None,
    encoding: str = "whiten",
    probe: ProbeSet | str = "generator",
    data: str | None = None,
    revision: str | None = None,
    num_test: int | None = None,
    num_probe: int | None = None,
    batch_size: int = 4096,
    device: torch.device | str | None = None,
) -> dict:
    """The ``evaluation`` object of any module on a config.

    model: maps ``encode(tokens, cfg.v, encoding)`` ([B, v, d], or [B, d] ids) to logits
    [B, nc]. layers: module names (forward hooks) plus "output"/"input"; default the
    model's ``hidden_layer_names()`` (if any) and "output". probe: a ``ProbeSet`` or a
    source name ("generator", or "release" with ``data``). data/revision: a release
    folder or Hub repo for the test split (and the probe when probe="release"); without
    it the test split is generated. Returns a JSON-ready dict (see the module docstring).

    Every option is checked first (``check_evaluation_options``), then that the model
    fits the config (``check_model_fits``: logits [B, nc]) and that the layers exist,
    before the test split is read: ValueError naming what does not fit.
    """
    device = torch.device(check_evaluation_options(
        cfg, probe=probe, data=data, revision=revision, encoding=encoding, layers=layers, num_test=num_test,
        num_probe=num_probe, batch_size=batch_size, device=device))
    check_model_fits(model, cfg, encoding, device)
    layers = list(layers) if layers else default_layers(model)
    ActivationRecorder(model, layers)  # unknown layer names: ValueError now, not after the test error
    if isinstance(probe, str):
        probe = load_probe(cfg, probe, data, revision, num_probe)
    else:
        probe = probe.head(num_probe)
    tokens, labels = load_test(cfg, data, revision, num_test)
    err = test_error(model, tokens, labels, cfg.v, encoding, batch_size, device)
    table = compute_sensitivities(
        model, probe.tokens, probe.perturbed(), cfg.v, layers=layers, encoding=encoding,
        batch_size=batch_size, device=device, levels=cfg.L,
    )
    return {
        "test_error": err,
        "num_test": int(len(labels)),
        "probe": {"source": probe.source, "num_points": probe.num_points, "perturbation": dict(PROBE_PERTURBATION)},
        "layers": list(layers),
        "sensitivity": table.to_json(),
        "undefined": dict(table.undefined),
    }


def format_evaluation(evaluation: dict, title: str | None = None) -> str:
    """A readable text table: test error, then S and D per layer x level ("undefined" where so)."""
    lines = [title] if title else []
    lines.append(f"test error {evaluation['test_error']:.4f} on {evaluation['num_test']} test points; "
                 f"probe: {evaluation['probe']['num_points']} points ({evaluation['probe']['source']})")
    ckpt = evaluation.get("checkpoint")
    if ckpt and ckpt.get("file"):
        step = f", step {ckpt['step']}" if ckpt.get("step") is not None else ""
        lines.append(f"checkpoint: {ckpt['file']} ({ckpt['selection']}{step})")
    layers = evaluation["layers"]
    width = max([len("layer")] + [len(x) for x in layers])
    for kind, letter in (("synonym", "S"), ("diffeo", "D")):
        table = evaluation["sensitivity"][kind]
        L = max((len(v) for v in table.values()), default=0)
        lines.append("")
        if evaluation["undefined"][kind]:
            why = "m = 1: no synonym to exchange" if kind == "synonym" else "K = 1: no other placement"
            lines.append(f"{letter}_(k,l) {kind} sensitivity: undefined ({why})")
            continue
        lines.append(f"{letter}_(k,l) {kind} sensitivity")
        lines.append(f"{'layer':<{width}}  " + "  ".join(f"{'l=' + str(l):>9}" for l in range(1, L + 1)))
        for layer in layers:
            cells = ["undefined" if x is None else f"{x:9.4f}" for x in table[layer]]
            lines.append(f"{layer:<{width}}  " + "  ".join(f"{c:>9}" for c in cells))
    return "\n".join(lines)


# ---- results files ------------------------------------------------------------------------


def load_state_dict(checkpoint: str | os.PathLike, map_location="cpu") -> dict:
    """The model ``state_dict`` in a checkpoint: a bare state dict, or a dict holding one under
    ``model_state`` (``srhm train``) / ``model_state_dict`` / ``state_dict`` / ``model`` / ``best_state_dict``
    (the first present)."""
    from ..baselines.train import TORCH_LOAD_ERRORS

    try:
        obj = torch.load(checkpoint, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except TORCH_LOAD_ERRORS as err:  # a damaged or non-torch file
        raise ValueError(f"invalid checkpoint {str(checkpoint)!r}: not readable by torch.load ({err})") from None
    if isinstance(obj, dict):
        for key in ("model_state", "model_state_dict", "state_dict", "model", "best_state_dict"):
            if isinstance(obj.get(key), dict):
                return obj[key]
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
    raise ValueError(f"invalid checkpoint {str(checkpoint)!r}: no model state dict found")


def _run_encoding(results: dict) -> str:
    """The input encoding a run was trained with (``training.encoding``; whiten if absent)."""
    return (results.get("training") or {}).get("encoding") or "whiten"


def _run_data(results: dict) -> tuple[str | None, str | None]:
    """(release folder or repo, revision) a run was trained on; (None, None) for the generator."""
    ds = results.get("dataset") or {}
    if ds.get("source") != "release" or not ds.get("repo_or_dir"):
        return None, None
    return ds["repo_or_dir"], ds.get("resolved_commit") or ds.get("revision")


def _evaluate_into(results: dict, model: torch.nn.Module, cfg: SRHMConfig, *, checkpoint: dict,
                   probe_source: str | None, data: str | None, revision: str | None, **options) -> dict:
    """Evaluate ``model`` and store the ``evaluation`` object in ``results`` (returned).

    The part ``evaluate_run`` and ``evaluate_factory`` share: ``probe_source`` defaults to
    "release" when there is a release (``data``), else "generator"; ``options`` (layers,
    encoding, num_test, num_probe, batch_size, device) go to ``evaluate_model``;
    ``checkpoint`` is recorded as ``evaluation.checkpoint``.
    """
    probe_source = probe_source or ("release" if data else "generator")
    evaluation = evaluate_model(model, cfg, probe=probe_source, data=data, revision=revision, **options)
    results["evaluation"] = {**evaluation, "checkpoint": checkpoint}
    return results


def evaluate_run(
    run_dir: str | os.PathLike,
    *,
    data: str | None = None,
    revision: str | None = None,
    probe_source: str | None = None,
    write: bool = True,
    **options,
) -> dict:
    """Evaluate a ``srhm train`` run folder and (``write``) store the ``evaluation`` in its results.

    Rebuilds the network from the results' ``checkpoint`` (``baselines.train.load_checkpoint``:
    the best-test-error parameters), checks the results' rules hash against the config's,
    and evaluates it with the run's input encoding. ``data``/``revision`` default to the release the run was trained on (if
    any); ``probe_source`` defaults to "release" when there is a release, else
    "generator". ``options``: ``num_test``, ``num_probe``, ``batch_size``, ``device`` of
    ``evaluate_model``. Returns the updated results dict.
    """
    from ..catalog import resolve
    from ..hashing import rules_hash
    from ..rules import sample_rules

    run_dir = Path(run_dir)
    results_path = run_dir / RESULTS_FILE
    if not results_path.is_file():
        raise FileNotFoundError(f"invalid parameter RUN_DIR={str(run_dir)!r}: no {RESULTS_FILE} in it")
    results = read_results(results_path)
    if "training" not in results:
        raise ValueError(f"invalid parameter RUN_DIR={str(run_dir)!r}: its {RESULTS_FILE} is a submission (no training "
                         "object), not a srhm train run; re-evaluate it with --factory")
    cfg = resolve(results["dataset"]["config"])
    expected = rules_hash(sample_rules(cfg))
    if results["dataset"].get("rules_hash") not in (None, expected):
        raise ValueError(
            f"invalid results {str(results_path)!r}: dataset.rules_hash={results['dataset']['rules_hash']!r} "
            f"differs from the config's {expected!r}"
        )
    run_data, run_revision = _run_data(results)
    data = data or run_data
    revision = revision or (run_revision if data == run_data else None)
    check_evaluation_options(cfg, probe=probe_source, data=data, revision=revision, **options)
    if write:
        check_output_folder(run_dir, "run", replace=False, parameter="RUN_DIR")
    model, checkpoint = _run_model(results, cfg, run_dir)
    _evaluate_into(results, model, cfg, checkpoint=checkpoint, probe_source=probe_source, data=data,
                   revision=revision, encoding=_run_encoding(results), **options)
    if write:
        _write_into(run_dir, results)
    return results


def _write_into(folder: Path, results: dict) -> None:
    """``folder/results.json``, after recording it in the folder's marker as srhm's (a run folder)."""
    mark_owned(folder, "run", [RESULTS_FILE])
    write_results(folder / RESULTS_FILE, results)


#: What a run's checkpoint records and its results must agree on: checkpoint key -> field
#: of results.json. Keys absent on either side are skipped.
CHECKPOINT_MATCH = {
    "config": "dataset.config", "arch": "model.arch", "width": "model.width", "P": "P", "seed": "training.seed",
    "norm": "model.norm", "bias": "model.bias", "encoding": "training.encoding", "step": "training.best_step",
}


def check_checkpoint_matches(meta: dict, results: dict, path: Path) -> None:
    """ValueError naming every field where the checkpoint's metadata and the run's results disagree."""
    diffs = []
    for key, field in CHECKPOINT_MATCH.items():
        expected = get_field(results, field)
        if key in meta and expected is not None and meta[key] != expected:
            diffs.append(f"{key}={meta[key]!r} in the checkpoint, {field}={expected!r} in {RESULTS_FILE}")
    if diffs:
        raise ValueError(f"invalid checkpoint {str(path)!r}: it is not the checkpoint of this run's {RESULTS_FILE} "
                         f"({'; '.join(diffs)}); retrain the run or restore its checkpoint")


def _run_model(results: dict, cfg: SRHMConfig, run_dir: Path) -> tuple[torch.nn.Module, dict]:
    """The run's network with its checkpoint loaded, after checking the checkpoint belongs to the results,
    and the ``evaluation.checkpoint`` record (file, selection "best", step)."""
    from ..baselines.train import model_from_checkpoint, read_checkpoint

    path = run_dir / (results.get("checkpoint") or CHECKPOINT_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"invalid parameter RUN_DIR={str(run_dir)!r}: checkpoint {path.name} not found in it")
    ckpt = read_checkpoint(path)
    check_checkpoint_matches({k: v for k, v in ckpt.items() if k != "model_state"}, results, path)
    model, ckpt_cfg, meta = model_from_checkpoint(ckpt, device="cpu")
    if ckpt_cfg != cfg:
        raise ValueError(f"invalid checkpoint {str(path)!r}: config {ckpt_cfg.name} differs from the results' {cfg.name}")
    step = meta.get("step")
    return model, {"file": path.name, "selection": "best", "step": step if isinstance(step, int) else None}


# ---- a user's model -----------------------------------------------------------------------


def load_factory(spec: str):
    """The callable named by ``module:function`` (module importable; the working dir is on the path)."""
    if ":" not in spec:
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
        raise ValueError(f"invalid parameter factory={spec!r}: {attr} is not callable")
    return obj


def build_user_model(factory: str, cfg: SRHMConfig, checkpoint: str | os.PathLike | None = None) -> torch.nn.Module:
    """``factory(cfg)`` (must return an nn.Module), with ``checkpoint``'s state dict loaded if given."""
    model = load_factory(factory)(cfg)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"invalid parameter factory={factory!r}: returned {type(model).__name__}, expected torch.nn.Module")
    if checkpoint is not None:
        from ..baselines.train import load_state_checked

        load_state_checked(model, load_state_dict(checkpoint), f"{str(checkpoint)!r} for factory {factory!r} on {cfg.name}")
    return model


def submission_P(cfg: SRHMConfig, P) -> None:
    """ValueError unless ``P`` (a submission's training-set size) is an int 1 <= P <= train size."""
    train_size = cfg.split_sizes()["train"]
    require(_is_int(P) and 1 <= P <= train_size, "P", P,
            f"1 <= P <= {train_size} (train split size of {cfg.name}); a submission needs its training-set size (--P)")


def submission_results(cfg: SRHMConfig, P: int, model: torch.nn.Module, *, name: str | None, arch: str,
                       factory: str, layers: list[str], data: str | None, revision: str | None) -> dict:
    """A new results object for a model evaluated outside ``srhm train`` (a leaderboard submission).

    Holds what is known without a training log: format, package, dataset provenance, P,
    the model's name/arch/factory/parameter count/layers (``width`` and ``depth`` from
    the module's attributes of those names when it has them). ``final_test_error`` and
    ``best_test_error`` are set from the evaluation by the caller.
    """
    from .. import __version__
    from ..catalog import catalog_name
    from ..hashing import rules_hash
    from ..results import FORMAT
    from ..rules import sample_rules

    submission_P(cfg, P)
    attr = lambda key: getattr(model, key) if isinstance(getattr(model, key, None), int) else None  # noqa: E731
    return {
        "format": dict(FORMAT),
        "package": {"name": "srhm-datasets", "version": __version__, "git_commit": None},
        "dataset": {
            "source": "release" if data else "generator",
            "repo_or_dir": data,
            "revision": revision,
            "resolved_commit": None,
            "config": cfg.name,
            "catalog_name": catalog_name(cfg),
            "parameters": cfg.parameters(),
            "rules_hash": rules_hash(sample_rules(cfg)),
            "train_content_hash": None,
        },
        "P": P,
        "model": {
            "arch": arch,
            "name": name or factory,
            "factory": factory,
            "width": attr("width"),
            "depth": attr("depth"),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "layer_names": list(layers),
        },
        "checkpoint": None,
    }


def evaluate_factory(
    out_dir: str | os.PathLike,
    factory: str,
    *,
    checkpoint: str | os.PathLike | None = None,
    config: str | None = None,
    P: int | None = None,
    name: str | None = None,
    arch: str | None = None,
    encoding: str | None = None,
    layers: list[str] | None = None,
    data: str | None = None,
    revision: str | None = None,
    probe_source: str | None = None,
    write: bool = True,
    **options,
) -> dict:
    """Evaluate a user's model ``factory(cfg)`` (+ ``checkpoint``) and write ``out_dir/results.json``.

    If ``out_dir/results.json`` exists and is a submission, its config is used and only its
    ``evaluation`` is replaced; a ``srhm train`` run folder (results with a ``training``
    object) is refused: a submission goes to its own folder. Otherwise a new results
    object (a submission: no ``training`` object, see ``srhm_datasets.results``) is made
    from ``config`` and ``P`` (both required then), ``name`` and ``arch`` (default
    "custom"). ``options``: ``num_test``, ``num_probe``, ``batch_size``, ``device`` of
    ``evaluate_model``.
    """
    from ..catalog import resolve

    out_dir = Path(out_dir)
    if write:  # before anything: the folder must be new, empty, or a run folder srhm wrote
        check_output_folder(out_dir, "run", replace=False, parameter="RUN_DIR")
    path = out_dir / RESULTS_FILE
    if path.is_file():
        results = read_results(path)
        if "training" in results:
            raise ValueError(
                f"invalid parameter RUN_DIR={str(out_dir)!r}: it holds a srhm train run ({RESULTS_FILE} has a training "
                "object) and --factory would file another model's evaluation under it; give your model its own folder "
                "(with --config and --P), or run `srhm evaluate RUN_DIR` without --factory to evaluate the run"
            )
        cfg = resolve(results["dataset"]["config"])
        if config is not None and resolve(config) != cfg:
            raise ValueError(f"invalid parameter config={config!r}: {path} is for config {cfg.name}")
        if P is not None and P != results.get("P"):
            raise ValueError(f"invalid parameter P={P}: {path} has P={results.get('P')}")
        if name:
            results["model"]["name"] = name
    else:
        if config is None:
            raise ValueError(f"invalid parameter config=None: {path} does not exist, so --config is needed")
        cfg = resolve(config)
        results = None
    check_evaluation_options(cfg, probe=probe_source, data=data, revision=revision, encoding=encoding or "whiten",
                             layers=layers, **options)
    if results is None:
        submission_P(cfg, P)
    model = build_user_model(factory, cfg, checkpoint)
    layers = list(layers) if layers else default_layers(model)
    if results is None:
        results = submission_results(cfg, P, model, name=name, arch=arch or "custom", factory=factory,
                                     layers=layers, data=data, revision=revision)
    record = {"file": Path(checkpoint).name if checkpoint is not None else None, "selection": "user", "step": None}
    _evaluate_into(results, model, cfg, checkpoint=record, probe_source=probe_source, data=data, revision=revision,
                   layers=layers, encoding=encoding or "whiten", **options)
    results.setdefault("final_test_error", results["evaluation"]["test_error"])
    results.setdefault("best_test_error", results["evaluation"]["test_error"])
    if write:
        _write_into(out_dir, results)
    return results
