"""``srhm leaderboard --verify``: evaluate again the files that bring their model, and mark them (format.md §12.4).

A file brings its model when it is a ``results.json`` and

- a ``srhm train`` run (``training`` object) whose ``checkpoint`` file lies beside it: it is
  evaluated again by ``evaluate.evaluate_run`` (which first checks the checkpoint belongs
  to the run, ``protocol.CHECKPOINT_MATCH``);
- or a submission (no ``training``) naming its ``model.factory``, whose state dict
  (``evaluation.checkpoint.file``, when not null) lies beside it: evaluated again by
  ``evaluate.evaluate_factory`` with the file's encoding and layers.

The test error is recomputed for the task the file is ranked under (``results.task_fields``:
a run's ``training.task``, a submission's ``task``; format.md §15, the test rows with key 0),
on as many test rows as the file's (``evaluation.num_test``, else ``training.num_test``): a
file whose task was changed by hand is evaluated on that task, and stays ``reported`` when
its model does not take that task's inputs, or is rejected as a mismatch. It matches when
it differs from the file's test error by at most ``TOLERANCE_ROWS`` test row over that
count (a prediction flipped by rounding on another device): the entry is marked
``verified``; otherwise the file is rejected with a reason starting ``mismatch:``. When
the model cannot be evaluated here (a factory that does not import, a checkpoint that does
not fit, a release that cannot be read) the file stays ``reported`` and is listed as not
verified, with the error. Every other file stays
``reported``. torch is imported only here, so only with ``--verify``.
"""

from __future__ import annotations

from pathlib import Path

from ..protocol import RESULTS_FILE
from .board_entries import Entry, Rejection, test_rows

#: Test rows by which a recomputed test error may differ from the file's and still match.
TOLERANCE_ROWS = 1


def brings_model(entry: Entry) -> Path | None:
    """The checkpoint file (or, for a submission evaluated as built, the folder) of a file that brings its
    model; None when it does not (the entry stays ``reported``)."""
    path, results = Path(entry.path), entry.results
    if path.name != RESULTS_FILE:
        return None
    if "training" in results:
        checkpoint = path.parent / (results.get("checkpoint") or "")
        return checkpoint if results.get("checkpoint") and checkpoint.is_file() else None
    if not results["model"].get("factory"):
        return None
    name = ((results.get("evaluation") or {}).get("checkpoint") or {}).get("file")
    if name is None:
        return path.parent
    return path.parent / name if (path.parent / name).is_file() else None


def recompute(entry: Entry, found: Path, rows: int, device: str | None = None) -> float:
    """The test error of ``entry``'s model evaluated again on ``rows`` test rows (nothing written)."""
    from ..baselines.factory import check_source
    from . import evaluate as ev

    folder, results = Path(entry.path).parent, entry.results
    if "training" in results:
        again = ev.evaluate_run(folder, write=False, num_test=rows, device=device)
    else:
        check_source(results["model"]["factory"], results["model"].get("source_sha256"))
        data, revision = ev.results_data(results)
        again = ev.evaluate_factory(
            folder,
            results["model"]["factory"],
            checkpoint=None if found == folder else found,
            encoding=results["evaluation"].get("encoding", "whiten"),
            layers=results["evaluation"]["layers"],
            data=data,
            revision=revision,
            write=False,
            num_test=rows,
            device=device,
        )
    return float(again["evaluation"]["test_error"])


def verify(entries: list[Entry], device: str | None = None) -> tuple[list[Entry], list[Rejection], list[Rejection]]:
    """Evaluate again every entry that brings its model: (kept entries, mismatches rejected, not verified).

    A kept entry that was evaluated again is marked ``verified``; the others keep ``reported``;
    ``not verified`` names the kept entries whose model could not be evaluated, with the error.
    """
    kept, rejected, unverified = [], [], []
    for entry in entries:
        found = brings_model(entry)
        if found is None:
            kept.append(entry)
            continue
        rows = test_rows(entry)
        try:
            again = recompute(entry, found, rows, device)
        except (ValueError, FileNotFoundError, TypeError, ImportError, KeyError, RuntimeError, OSError) as err:
            why = f"the model could not be evaluated again on task {entry.task}: {err}"
            unverified.append(Rejection(entry.path, why))
            kept.append(entry)
            continue
        if abs(again - entry.test_error) > TOLERANCE_ROWS / rows + 1e-12:
            rejected.append(
                Rejection(
                    entry.path,
                    f"mismatch: test error {entry.test_error:.6g} in the file, {again:.6g} evaluated again on "
                    f"{rows} test rows of task {entry.task} (tolerance {TOLERANCE_ROWS} row = "
                    f"{TOLERANCE_ROWS / rows:.3g})",
                )
            )
            continue
        entry.mark = "verified"
        kept.append(entry)
    return kept, rejected, unverified
