"""Results files for the leaderboard tests: schema-valid results objects, Bayes-optimal limit files, the
example RESULTS_DIR of the ``example_dir`` fixture, and the board's record of one (config, task)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from srhm_datasets import SRHMConfig, sample_rules
from srhm_datasets.catalog import get_config
from srhm_datasets.evaluation.kinds import undefined_kinds
from srhm_datasets.hashing import rules_hash
from srhm_datasets.protocol import default_lr, target_classes
from srhm_datasets.results import validate_results

DEMO = get_config("demo")  # L = 2
NO_SYNONYMS = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=1)


def make_results(
    cfg,
    P,
    arch="cnn",
    test_error=0.2,
    s_out=0.3,
    d_out=0.2,
    *,
    width=64,
    revision=None,
    rules=None,
    name=None,
    evaluation=True,
    training=True,
    task=None,
    **training_fields,
) -> dict:
    """A schema-valid results object, as ``srhm train`` (protocol defaults, lr = default_lr) + ``srhm evaluate``
    write it.

    training=False: an outside submission as ``srhm evaluate --factory`` writes it (no
    training log, width/depth null, the factory named, no checkpoint). task: the top-level ``task``
    (a name or an object; absent when None); a task other than class has an evaluation without a probe
    nor S and D, as ``srhm evaluate`` writes it.
    """
    name_of_task = (task if isinstance(task, str) else task["name"]) if task else "class"
    undefined = undefined_kinds(cfg, name_of_task)
    layers = ["layer1", "layer2", "output"]

    def table(kind, out_value):
        if undefined[kind]:
            return {layer: [None] * cfg.L for layer in layers}
        return {"layer1": [0.9, 0.95], "layer2": [0.6, 0.8], "output": [out_value, out_value + 0.1]}

    obj = {
        "format": {"name": "srhm-results", "version": 1},
        "package": {"name": "srhm-datasets", "version": "0.1.0", "git_commit": None},
        "dataset": {
            "source": "release" if revision else "generator",
            "repo_or_dir": "org/srhm" if revision else None,
            "revision": revision,
            "resolved_commit": None,
            "config": cfg.name,
            "catalog_name": None,
            "parameters": cfg.parameters(),
            "rules_hash": rules or rules_hash(sample_rules(cfg)),
            "train_content_hash": None,
        },
        "P": P,
        "model": {"arch": arch, "width": width, "depth": cfg.L, "n_parameters": 1000, "layer_names": layers},
        "training": {
            "seed": 0,
            "lr": default_lr(arch, cfg) if arch in ("cnn", "lcn", "fcn") else 0.1,
            "momentum": 0.9,
            "batch_size": 16,
            "max_steps": 100,
            "encoding": "whiten",
            "device": "cpu",
            "amp": False,
            "wall_time_s": 1.0,
            "samples_per_s": 100.0,
            "stop_reason": "loss_threshold",
            "curves": {
                "step": [50, 100],
                "train_loss": [0.5, 0.0005],
                "test_error": [min(1.0, test_error + 0.1), test_error],
            },
            **training_fields,
        },
        "final_test_error": test_error,
        "best_test_error": test_error,
        "checkpoint": "checkpoint.pt",
    }
    if name:
        obj["model"]["name"] = name
    if not training:
        del obj["training"]
        obj["model"].update(width=None, depth=None, factory="bobmodels:make")
        obj["checkpoint"] = None
    if task is not None:
        obj["task"] = task
    if evaluation:
        probe = {"source": "generator", "num_points": cfg.split_sizes()["probe"]} if name_of_task == "class" else None
        obj["evaluation"] = {
            "test_error": test_error,
            "num_test": cfg.split_sizes()["test"],
            "probe": probe,
            "layers": layers,
            "sensitivity": {"synonym": table("synonym", s_out), "diffeo": table("diffeo", d_out)},
            "undefined": undefined,
        }
    validate_results(obj)
    return obj


def write(root: Path, rel: str, obj) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return path


def board(summary, cfg=DEMO, task="class") -> dict:
    """The ``leaderboard.json`` record of one (config, task)."""
    return summary["configs"][cfg.name]["tasks"][task]


def optimal_file(cfg, task="class", expected=0.2, empirical=0.21, rows=1000, **options):
    """A ``srhm optimal --json`` object (format.md §16.3) of ``task`` (class or last: one target per row), its
    cross-entropies those of posteriors whose largest probability is 1 - ``expected``, the rest spread evenly
    over the other classes (Fano's bound: the most entropy that error allows)."""
    head = {"config": cfg.name, "task": task, "split": "test", "context": None, "mask_rate": None, "noise": 0.0}
    figures = {"rows": rows, "scored": rows, "expected_error": expected, "empirical_error": empirical}
    classes = target_classes(cfg, task)
    entropy = 0.5
    if 0 <= expected <= 1 - 1 / classes:
        entropy = -sum(p * math.log(p) for p in (expected, 1 - expected) if p > 0) + expected * math.log(classes - 1)
    return {**head, **options, **figures, "expected_cross_entropy": entropy, "empirical_cross_entropy": entropy}


def write_example(root: Path) -> Path:
    """A RESULTS_DIR of accepted, rejected and ignored files under ``root`` (the ``example_dir`` fixture)."""
    # demo: three architectures at three P; lcn and cnn tie at P=100 and are split by S_out
    for P, errs in (
        (100, {"cnn": 0.5, "lcn": 0.5, "fcn": 0.7}),
        (300, {"cnn": 0.2, "lcn": 0.3}),
        (1000, {"cnn": 0.05, "lcn": 0.08, "fcn": 0.6}),
    ):
        for arch, err in errs.items():
            s_out = {"cnn": 0.4, "lcn": 0.2, "fcn": 0.5}[arch]
            write(root, f"{arch}/P{P}/results.json", make_results(DEMO, P, arch, err, s_out=s_out))
    # a srhm train run sent without srhm evaluate: no evaluation object (ranked by best_test_error, S/D blank)
    write(
        root,
        "submissions/alice.json",
        make_results(DEMO, 1000, "cnn", 0.07, width=128, name="alice-cnn", evaluation=False),
    )
    # an outside submission (srhm evaluate --factory): no training log, its own arch label and name
    write(
        root,
        "submissions/bob/results.json",
        make_results(DEMO, 300, "transformer", 0.25, s_out=0.1, name="bob-transformer", training=False),
    )
    # m = 1: the synonym sensitivity is undefined
    write(root, "m1/results.json", make_results(NO_SYNONYMS, 100, "cnn", 0.1))
    # rejected: rules hash of another instance, another revision, schema failure, undefined mismatch, bad JSON
    write(root, "bad/hash.json", make_results(DEMO, 300, "cnn", 0.01, rules="sha256:" + "0" * 64))
    write(root, "bad/revision.json", make_results(DEMO, 300, "cnn", 0.01, revision="v0.9.0"))
    broken = make_results(DEMO, 300, "cnn", 0.01)
    del broken["P"]
    write(root, "bad/schema.json", broken)
    liar = make_results(DEMO, 100, "cnn", 0.01)  # P within the m = 1 config's train split (154)
    liar["dataset"]["config"] = NO_SYNONYMS.name
    liar["dataset"]["rules_hash"] = rules_hash(sample_rules(NO_SYNONYMS))
    liar["dataset"]["parameters"] = NO_SYNONYMS.parameters()
    write(root, "bad/undefined.json", liar)
    write(root, "bad/results.json", "{not json")
    mute = make_results(DEMO, 300, "transformer", 0.01, training=False)
    del mute["evaluation"]  # a submission without training log nor evaluation says nothing
    write(root, "bad/no_evaluation.json", mute)
    # not a results file: ignored, not rejected
    write(root, "cnn/summary.json", {"format": {"name": "srhm-learning-curve", "version": 1}, "runs": []})
    # a srhm optimal --json file among the inputs: the limit row of (demo, class)
    write(root, "optimal/demo.json", optimal_file(DEMO, expected=0.0, empirical=0.0))
    return root
