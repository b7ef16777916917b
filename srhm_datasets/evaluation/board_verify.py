"""``srhm leaderboard --verify``: evaluate again the files that bring their model, and mark them (format.md §12.4).

A file brings its model when it is a ``results.json`` and

- a ``srhm train`` run (``training`` object) whose ``checkpoint`` file lies beside it: it is
  evaluated again by ``evaluate.evaluate_run`` (which first checks the checkpoint belongs
  to the run, ``protocol.CHECKPOINT_MATCH``);
- or a submission (no ``training``) naming its ``model.factory``, whose state dict
  (``evaluation.checkpoint.file``, when not null) lies beside it: evaluated again by
  ``evaluate.evaluate_factory`` with the options its evaluation recorded (encoding, layers, release).

The test error is recomputed for the task the file is ranked under (``results.task_fields``:
a run's ``training.task``, a submission's ``task``; format.md §15, the test rows with key 0),
on as many test rows as the file's (``board_entries.test_rows``). It matches when it differs
from the file's test error by at most ``TOLERANCE_ROWS`` test row over that count (a prediction
flipped by rounding on another device): the entry is marked ``verified``; otherwise the file is
rejected with a reason starting ``mismatch:``. A file whose model is not one of the task it is
filed under (``measure.ModelMismatch``: the model does not take that task's inputs or give its
outputs, or its state dict does not fit the model its factory builds for that task) is rejected:
its evaluation cannot have been made on that task (a task changed by hand), when the model's
code is pinned (a reference network, or a factory whose ``model.source_sha256`` was recorded and
still matches, ``baselines.factory.check_source``). When the model cannot be evaluated here (a
factory that does not import or whose source changed, a checkpoint that does not fit, a release
that cannot be read) the file stays ``reported`` and is listed as not verified, with the error;
so is every file that does not bring its model, with the reason (``brings_model``: not a
``results.json``, no checkpoint named, the checkpoint file missing beside it, no factory).
torch is imported only here, so only with ``--verify``.
"""

from __future__ import annotations

from pathlib import Path

from ..protocol import RESULTS_FILE
from .board_entries import Entry, Rejection, test_rows

#: Test rows by which a recomputed test error may differ from the file's and still match.
TOLERANCE_ROWS = 1


def brings_model(entry: Entry) -> tuple[Path | None, str | None]:
    """``(found, None)`` for a file that brings its model: ``found`` its checkpoint file (or, for a submission
    evaluated as built, its folder); else ``(None, why)``, why it cannot be evaluated again (the entry stays
    ``reported`` and is listed as not verified)."""
    path, results = Path(entry.path), entry.results
    if path.name != RESULTS_FILE:
        return None, f"not a {RESULTS_FILE} of a run or submission folder, so its model is not beside it"
    if "training" in results:
        name = results.get("checkpoint")
        if not name:
            return None, "the run names no checkpoint file (checkpoint is null)"
        found = path.parent / name
        return (found, None) if found.is_file() else (None, f"checkpoint file missing: no {name} beside {path.name}")
    if not results["model"].get("factory"):
        return None, "the submission names no model.factory to build its model with"
    name = ((results.get("evaluation") or {}).get("checkpoint") or {}).get("file")
    if name is None:
        return path.parent, None
    if (path.parent / name).is_file():
        return path.parent / name, None
    return None, (
        f"checkpoint file missing: no {name} beside {path.name} (evaluation.checkpoint.file: the state dict the "
        "submission was evaluated with; copy it into the submission's folder)"
    )


def pinned(results: dict) -> bool:
    """Whether the model's code is the one the file was made with: a reference network (no factory), or a
    factory whose ``model.source_sha256`` was recorded (``recompute`` checks it still matches)."""
    model = results["model"]
    return model.get("factory") is None or model.get("source_sha256") is not None


def recompute(entry: Entry, found: Path, rows: int, device: str | None = None) -> float:
    """The test error of ``entry``'s model evaluated again on ``rows`` test rows (nothing written): a run by
    ``evaluate.evaluate_run``, a submission by ``evaluate.evaluate_factory`` with the options its evaluation
    recorded (its factory, whose source must be the recorded one, its state dict ``found`` or none when
    ``found`` is its folder, encoding, layers and release)."""
    from . import evaluate as ev

    folder, results = Path(entry.path).parent, entry.results
    if "training" in results:
        again = ev.evaluate_run(folder, write=False, num_test=rows, device=device)
    else:
        checkpoint = None if found == folder else found
        again = ev.evaluate_factory(
            folder, results["model"]["factory"], checkpoint=checkpoint, write=False, num_test=rows, device=device
        )
    return float(again["evaluation"]["test_error"])


#: Errors that leave a file reported and not verified: its model cannot be evaluated here.
NOT_EVALUATED = (ValueError, FileNotFoundError, TypeError, ImportError, KeyError, RuntimeError, OSError)


def check_again(entry: Entry, device: str | None = None) -> tuple[str, str | None]:
    """``("verified", None)``, ``("rejected", why)`` or ``("not verified", why)`` for one entry (see
    ``verify``)."""
    from .measure import ModelMismatch

    found, why = brings_model(entry)
    if found is None:
        return "not verified", why
    rows = test_rows(entry)
    try:
        again = recompute(entry, found, rows, device)
    except NOT_EVALUATED as err:
        if isinstance(err, ModelMismatch) and pinned(entry.results):
            return "rejected", (
                f"the model is not one of task {entry.task}: {err}; the file's evaluation cannot have been made "
                "on the task it is filed under (its task changed by hand?)"
            )
        return "not verified", f"the model could not be evaluated again on task {entry.task}: {err}"
    if abs(again - entry.test_error) > TOLERANCE_ROWS / rows + 1e-12:
        return "rejected", (
            f"mismatch: test error {entry.test_error:.6g} in the file, {again:.6g} evaluated again on "
            f"{rows} test rows of task {entry.task} (tolerance {TOLERANCE_ROWS} row = {TOLERANCE_ROWS / rows:.3g})"
        )
    return "verified", None


def verify(entries: list[Entry], device: str | None = None) -> tuple[list[Entry], list[Rejection], list[Rejection]]:
    """Evaluate again every entry that brings its model: (kept entries, rejected, not verified).

    A kept entry that was evaluated again is marked ``verified``; the others keep ``reported``
    and are listed as not verified, with why (no model beside it, or the error evaluating it).
    Rejected: a test error that is not the model's (``mismatch:``), a model that is not one of
    the file's task (``measure.ModelMismatch``, its code pinned).
    """
    kept, rejected, unverified = [], [], []
    for entry in entries:
        outcome, why = check_again(entry, device)
        if outcome == "rejected":
            rejected.append(Rejection(entry.path, why))
            continue
        if outcome == "verified":
            entry.mark = "verified"
        else:
            unverified.append(Rejection(entry.path, why))
        kept.append(entry)
    return kept, rejected, unverified
