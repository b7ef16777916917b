"""Evaluating a run folder or a user's model: ``evaluate_run`` and ``evaluate_factory`` (format.md §11, §12).

Both measure with ``measure.evaluate_model`` on the model's task (a run's ``training.task``,
a submission's ``task``: ``results.task_fields``) and store its ``evaluation`` object, with the
``checkpoint`` record of the parameters measured: a run's kept checkpoint (the best test
error during training, at ``step``) or a submission's state dict.

- ``evaluate_run``: a run folder of ``srhm train``; its checkpoint must match its results
  (``protocol.CHECKPOINT_MATCH``: config, arch, width, P, seed, ...; format.md §12.3).
- ``evaluate_factory``: a user's ``module:function`` and checkpoint, written to its own
  folder, never into a training run's results (``submission``); a submission evaluated again
  keeps its factory (its source unchanged), task and recorded options (``_as_recorded``).

The parts live in ``probes`` (probe and test points), ``measure`` (``evaluate_model``,
``format_evaluation``) and ``submission``; their public names are re-exported here.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from ..baselines.checkpoint import load_state_dict, model_from_checkpoint, read_checkpoint
from ..baselines.factory import check_source, load_factory
from ..baselines.train import check_causal
from ..catalog import get_config
from ..config import SRHMConfig, require
from ..files import check_output_folder, claim_output, mark_owned, read_marker
from ..hashing import rules_hash
from ..protocol import CHECKPOINT_FILE, CHECKPOINT_MATCH, CHECKPOINT_REQUIRED, RESULTS_FILE
from ..results import get_field, read_results, task_fields, write_results
from ..rules import sample_rules
from ..tasks import Task, make_task
from .board_entries import label_of
from .measure import check_evaluation_options, evaluate_model, format_evaluation
from .probes import PROBE_SOURCES, ProbeSet, generator_probe, load_probe, release_probe
from .sensitivity import default_layers
from .submission import build_user_model, read_submission, submission_P, submission_results

__all__ = [
    "PROBE_SOURCES",
    "ProbeSet",
    "build_user_model",
    "check_checkpoint_matches",
    "check_evaluation_options",
    "evaluate_factory",
    "evaluate_model",
    "evaluate_run",
    "format_evaluation",
    "generator_probe",
    "load_factory",
    "load_probe",
    "load_state_dict",
    "release_probe",
]


def _run_encoding(results: dict) -> str:
    """The input encoding a run was trained with (``training.encoding``; whiten if absent)."""
    return (results.get("training") or {}).get("encoding") or "whiten"


def results_data(results: dict) -> tuple[str | None, str | None]:
    """(release folder or repo, revision) a run was trained on; (None, None) for the generator."""
    ds = results.get("dataset") or {}
    if ds.get("source") != "release" or not ds.get("repo_or_dir"):
        return None, None
    return ds["repo_or_dir"], ds.get("resolved_commit") or ds.get("revision")


def recorded_release(results: dict, data: str | None, revision: str | None) -> tuple[str | None, str | None]:
    """(data, revision) of evaluating ``results`` again: ``data`` if given, else the release it was made on
    (``results_data``; None: the generator), and ``revision`` if given, else that release's when ``data`` is it."""
    made_on, made_revision = results_data(results)
    data = data or made_on
    return data, revision or (made_revision if data == made_on else None)


def _evaluate_into(
    results: dict,
    model: torch.nn.Module,
    cfg: SRHMConfig,
    *,
    checkpoint: dict,
    probe_source: str | None,
    data: str | None,
    revision: str | None,
    **options,
) -> dict:
    """Evaluate ``model`` and store the ``evaluation`` object in ``results`` (returned).

    The part ``evaluate_run`` and ``evaluate_factory`` share: ``probe_source`` defaults to
    "release" when there is a release (``data``), else "generator"; ``options`` (layers,
    encoding, num_test, num_probe, batch_size, device) go to ``evaluate_model``;
    ``checkpoint`` is recorded as ``evaluation.checkpoint``, the encoding as ``evaluation.encoding``
    (so the leaderboard's ``--verify`` can evaluate the model again as it was).
    """
    probe_source = probe_source or ("release" if data else "generator")
    evaluation = evaluate_model(model, cfg, probe=probe_source, data=data, revision=revision, **options)
    results["evaluation"] = {**evaluation, "encoding": options["encoding"], "checkpoint": checkpoint}
    return results


def _why_no_run(run_dir: Path) -> str:
    """Why ``run_dir`` (without ``results.json``) is not a run folder: missing, a file, a learning-curve folder
    (then one of its ``P<P>/`` run folders is named), or a folder without results."""
    if not run_dir.exists():
        return "no such folder"
    if not run_dir.is_dir():
        return "not a folder"
    runs = sorted(run_dir.glob(f"P*/{RESULTS_FILE}")) + sorted(run_dir.glob(f"seed*/P*/{RESULTS_FILE}"))
    if runs or (read_marker(run_dir) or {}).get("kind") == "learning-curve":
        example = runs[0].parent if runs else run_dir / "P<P>"
        return f"a learning-curve folder, not a run: pass one of its P<P>/ run folders, e.g. {example}"
    return f"no {RESULTS_FILE} in it (not a run folder of `srhm train`)"


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
    and evaluates it with the run's input encoding on the run's task (``training.task`` with its
    options, noise included; the test rows with the task's key 0, as training scored them: on
    ``training.num_test`` rows the test error is the run's ``best_test_error``). ``data``/``revision`` default to the
    release the run was trained on (if any); ``probe_source`` defaults to "release" when there
    is a release, else "generator". ``options``: ``num_test``, ``num_probe``, ``batch_size``, ``device`` of
    ``evaluate_model``. With ``write``, the folder is held for the call (``files.claim_output``:
    ``files.FolderInUse`` when another process writes it). Returns the updated results dict.
    """
    run_dir = Path(run_dir)
    if not (run_dir / RESULTS_FILE).is_file():
        raise FileNotFoundError(f"invalid parameter RUN_DIR={str(run_dir)!r}: {_why_no_run(run_dir)}")
    with _claim(run_dir, write):
        return _evaluate_run(run_dir, data, revision, probe_source, write, options)


def _claim(folder: Path, write: bool):
    """The folder held while it is evaluated and written (``files.claim_output``); nothing when not ``write``."""
    return claim_output(folder, "run", replace=False, parameter="RUN_DIR") if write else contextlib.nullcontext()


def _evaluate_run(run_dir: Path, data, revision, probe_source, write: bool, options: dict) -> dict:
    """``evaluate_run``'s work, the folder held when ``write``."""
    results_path = run_dir / RESULTS_FILE
    results = read_results(results_path)
    if "training" not in results:
        raise ValueError(
            f"invalid parameter RUN_DIR={str(run_dir)!r}: its {RESULTS_FILE} is a submission (no training "
            "object), not a srhm train run; re-evaluate it with --factory"
        )
    cfg = _run_config(results, results_path)
    task = task_of(results, cfg, f"{RESULTS_FILE} of RUN_DIR={str(run_dir)!r}")
    data, revision = recorded_release(results, data, revision)
    check_evaluation_options(cfg, task=task, probe=probe_source, data=data, revision=revision, **options)
    model, checkpoint = _run_model(results, cfg, run_dir)
    _evaluate_into(
        results,
        model,
        cfg,
        checkpoint=checkpoint,
        probe_source=probe_source,
        data=data,
        revision=revision,
        task=task,
        encoding=_run_encoding(results),
        **options,
    )
    factory = results["model"].get("factory")  # after the evaluation, which refuses a model of another task
    name, value = ("factory", factory) if factory else ("arch", results["model"]["arch"])
    check_causal(model, cfg, task.name, _run_encoding(results), name, value)
    if write:
        _write_into(run_dir, results)
    return results


def task_of(results: dict, cfg: SRHMConfig, where: str) -> Task:
    """The task a results file names (``results.task_fields``, format.md §12.2) with key 0, the task its model
    is evaluated on; ValueError naming ``where`` when the task does not fit ``cfg`` (``tasks.make_task``)."""
    try:
        return fields_task(cfg, task_fields(results))
    except ValueError as err:
        raise ValueError(f"invalid task in the {where}: {err}") from None


def fields_task(cfg: SRHMConfig, fields: dict) -> Task:
    """The ``tasks.Task`` (key 0) of ``{"name", "context", "mask_rate", "noise"}`` (a results file's ``task``,
    ``results.task_fields``; only ``name`` required, None where not given); ValueError naming a key that is
    not one of those, or a value ``tasks.make_task`` refuses."""
    unknown = sorted(set(fields) - {"name", "context", "mask_rate", "noise"})
    require(not unknown, "task", fields, "keys among name, context, mask_rate, noise")
    options = {"context": fields.get("context"), "mask_rate": fields.get("mask_rate"), "noise": fields.get("noise")}
    return make_task(cfg, fields.get("name", "class"), **{**options, "noise": options["noise"] or 0.0})


def _run_config(results: dict, results_path: Path) -> SRHMConfig:
    """The run's config; ValueError when the results' rules hash (if any) is not the config's."""
    cfg = get_config(results["dataset"]["config"])
    expected = rules_hash(sample_rules(cfg))
    if results["dataset"].get("rules_hash") not in (None, expected):
        raise ValueError(
            f"invalid results {str(results_path)!r}: dataset.rules_hash={results['dataset']['rules_hash']!r} "
            f"differs from the config's {expected!r}"
        )
    return cfg


def _write_into(folder: Path, results: dict) -> None:
    """``folder/results.json``, after recording it in the folder's marker as srhm's (a run folder)."""
    mark_owned(folder, "run", [RESULTS_FILE])
    write_results(folder / RESULTS_FILE, results)


def check_checkpoint_matches(meta: dict, results: dict, path: Path) -> None:
    """ValueError naming every field where the checkpoint's metadata and the run's results disagree
    (``protocol.CHECKPOINT_MATCH``; results with a ``training.run_id`` need a checkpoint of that run)."""
    diffs = []
    for key, field in CHECKPOINT_MATCH.items():
        expected = get_field(results, field)
        if expected is not None and (key in meta or key in CHECKPOINT_REQUIRED) and meta.get(key) != expected:
            diffs.append(f"{key}={meta.get(key)!r} in the checkpoint, {field}={expected!r} in {RESULTS_FILE}")
    if diffs:
        raise ValueError(
            f"invalid checkpoint {str(path)!r}: it is not the checkpoint of this run's {RESULTS_FILE} "
            f"({'; '.join(diffs)}); retrain the run or restore its checkpoint"
        )


def _run_model(results: dict, cfg: SRHMConfig, run_dir: Path) -> tuple[torch.nn.Module, dict]:
    """The run's network with its checkpoint loaded, after checking the checkpoint belongs to the results,
    and the ``evaluation.checkpoint`` record (file, selection "best", step)."""
    path = run_dir / (results.get("checkpoint") or CHECKPOINT_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"invalid parameter RUN_DIR={str(run_dir)!r}: checkpoint {path.name} not found in it")
    ckpt = read_checkpoint(path)
    check_checkpoint_matches({k: v for k, v in ckpt.items() if k != "model_state"}, results, path)
    if ckpt.get("factory") is not None:
        check_source(ckpt["factory"], results["model"].get("source_sha256"))
    model, ckpt_cfg, meta = model_from_checkpoint(ckpt, device="cpu")
    if ckpt_cfg != cfg:
        raise ValueError(
            f"invalid checkpoint {str(path)!r}: config {ckpt_cfg.name} differs from the results' {cfg.name}"
        )
    step = meta.get("step")
    return model, {"file": path.name, "selection": "best", "step": step if isinstance(step, int) else None}


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
    task: dict | None = None,
    write: bool = True,
    **options,
) -> dict:
    """Evaluate a user's model ``factory(cfg)`` or ``factory(cfg, task)`` (+ ``checkpoint``) and write
    ``out_dir/results.json``.

    If ``out_dir/results.json`` exists and is a submission, its config and task are used and only its
    ``evaluation`` is replaced: ``factory`` must be the submission's (and its source the recorded one,
    ``baselines.factory.check_source``), and the options not given are the evaluation's recorded ones
    (``_as_recorded``: its state dict beside it, encoding, layers, release); a ``srhm train`` run folder
    (results with a ``training`` object) is refused: a submission goes to its own folder. Otherwise a new results
    object (a submission: no ``training`` object, see ``srhm_datasets.results``) is made
    from ``config`` and ``P`` (both required then), ``name``, ``arch`` (default
    "custom") and ``task``. ``task``: ``{"name", "context", "mask_rate", "noise"}`` (``tasks.make_task``'s
    arguments, only ``name`` required; None: the submission's task, else ``class``): the task the test
    error is measured on (format.md §15, key 0), recorded as the results' ``task``; it must be the
    submission's when the folder holds one. ``options``: ``num_test``, ``num_probe``, ``batch_size``,
    ``device`` of ``evaluate_model``. With ``write``, the folder is held for the call (``files.claim_output``).
    """
    out_dir = Path(out_dir)
    if write:  # before anything: the folder must be new, empty, or a run folder srhm wrote
        check_output_folder(out_dir, "run", replace=False, parameter="RUN_DIR")
    with _claim(out_dir, write):
        results, cfg = _submission_or_config(out_dir, config, P, name)
        task = _submission_task(results, cfg, task, out_dir)
        given = {"checkpoint": checkpoint, "encoding": encoding, "layers": layers, "data": data, "revision": revision}
        checkpoint, encoding, layers, data, revision = _as_recorded(results, out_dir, factory, given).values()
        check_evaluation_options(
            cfg,
            task=task,
            probe=probe_source,
            data=data,
            revision=revision,
            encoding=encoding,
            layers=layers,
            **options,
        )
        if results is None:
            submission_P(cfg, P)
        model = build_user_model(factory, cfg, checkpoint, task.name)
        check_causal(model, cfg, task.name, encoding, "factory", factory)
        layers = list(layers) if layers else default_layers(model)
        if results is None:
            results = submission_results(
                cfg,
                P,
                model,
                name=name,
                arch=arch or "custom",
                factory=factory,
                layers=layers,
                data=data,
                revision=revision,
                task=task,
            )
        record = {"file": Path(checkpoint).name if checkpoint is not None else None, "selection": "user", "step": None}
        _evaluate_into(
            results,
            model,
            cfg,
            checkpoint=record,
            probe_source=probe_source,
            data=data,
            revision=revision,
            task=task,
            layers=layers,
            encoding=encoding,
            **options,
        )
        results.setdefault("final_test_error", results["evaluation"]["test_error"])
        results.setdefault("best_test_error", results["evaluation"]["test_error"])
        if write:
            _write_into(out_dir, results)
        return results


def _as_recorded(results: dict | None, out_dir: Path, factory: str, given: dict) -> dict:
    """The options of evaluating ``factory``'s model into ``out_dir``: those ``given`` (checkpoint, encoding,
    layers, data, revision; None where not given), else, for the submission ``results`` already there, the
    ones its evaluation recorded, so that it is measured as it was: the state dict named by
    ``evaluation.checkpoint.file`` in ``out_dir``, its ``evaluation.encoding`` and ``layers``, its release
    (``results_data``); the encoding whiten when neither says. ValueError naming ``factory`` when the
    submission is another factory's or the factory's source changed, and ``checkpoint`` when the recorded
    state dict is not in ``out_dir``."""
    if results is None:
        return {**given, "encoding": given["encoding"] or "whiten"}
    recorded = results["model"].get("factory")
    require(
        recorded is None or recorded == factory,
        "factory",
        factory,
        f"the factory of the submission in {str(out_dir)!r} ({recorded}): evaluate another model in its own folder",
    )
    check_source(factory, results["model"].get("source_sha256"))
    ev = results.get("evaluation") or {}
    out = dict(given)
    name = (ev.get("checkpoint") or {}).get("file")
    if out["checkpoint"] is None and name is not None:
        require(
            (out_dir / name).is_file(),
            "checkpoint",
            None,
            f"a state dict: the submission was evaluated with {name} (evaluation.checkpoint.file), which is not in "
            f"{str(out_dir)!r}; give it with --checkpoint",
        )
        out["checkpoint"] = out_dir / name
    out["encoding"] = out["encoding"] or ev.get("encoding") or "whiten"
    out["layers"] = out["layers"] or ev.get("layers")
    out["data"], out["revision"] = recorded_release(results, out["data"], out["revision"])
    return out


def _submission_task(results: dict | None, cfg: SRHMConfig, task: dict | None, out_dir: Path) -> Task:
    """The task of a submission: the one in ``results`` (the submission in ``out_dir``), which ``task``, when
    given, must equal, else ``task`` (default ``class``); ValueError naming ``task`` otherwise."""
    given = None if task is None else fields_task(cfg, task)
    if results is None:
        return given or make_task(cfg)
    found = task_of(results, cfg, f"submission {str(out_dir / RESULTS_FILE)!r}")
    if given is not None and given != found:
        raise ValueError(
            f"invalid parameter task={label_of(given)}: {out_dir / RESULTS_FILE} is a submission of task "
            f"{label_of(found)}; evaluate another task's model in its own folder"
        )
    return found


def _submission_or_config(
    out_dir: Path, config: str | None, P: int | None, name: str | None
) -> tuple[dict | None, SRHMConfig]:
    """``(results, cfg)`` of the submission already in ``out_dir`` (``read_submission``), else
    ``(None, config resolved)``; ValueError when there is neither."""
    path = out_dir / RESULTS_FILE
    if path.is_file():
        return read_submission(out_dir, config, P, name)
    if config is None:
        raise ValueError(f"invalid parameter config=None: {path} does not exist, so --config is needed")
    return None, get_config(config)
