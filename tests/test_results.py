"""Results files (format srhm-results v1): schema validation and atomic writing."""

import copy
import json
import re

import pytest

from srhm_datasets.results import FORMAT, load_schema, read_results, validate_results, write_results

VALID = {
    "format": {"name": "srhm-results", "version": 1},
    "package": {"name": "srhm-datasets", "version": "0.1.0", "git_commit": None},
    "dataset": {
        "source": "generator",
        "repo_or_dir": None,
        "revision": None,
        "resolved_commit": None,
        "config": "A_L2_s2_s0-1_v4_nc4_m4_seed0",
        "catalog_name": "demo",
        "parameters": {"L": 2, "s": 2, "s0": 1, "v": 4, "nc": 4, "m": 4, "sparsity": "A", "seed": 0},
        "rules_hash": "sha256:" + "0" * 64,
        "train_content_hash": None,
    },
    "P": 100,
    "model": {
        "arch": "cnn",
        "width": 8,
        "depth": 2,
        "n_parameters": 200,
        "layer_names": ["layer1", "layer2", "output"],
    },
    "training": {
        "seed": 0,
        "lr": 0.1,
        "momentum": 0.9,
        "batch_size": 16,
        "max_steps": 10,
        "encoding": "whiten",
        "device": "cpu",
        "amp": False,
        "wall_time_s": 1.0,
        "samples_per_s": 100.0,
        "stop_reason": "max_steps",
        "curves": {"step": [5, 10], "train_loss": [1.2, 0.9], "test_error": [0.6, 0.5]},
    },
    "final_test_error": 0.5,
    "best_test_error": 0.5,
    "checkpoint": "checkpoint.pt",
}

EVALUATION = {
    "test_error": 0.5,
    "num_test": 1000,
    "probe": {"source": "generator", "num_points": 400},
    "layers": ["layer1", "layer2", "output"],
    "sensitivity": {
        "synonym": {"layer1": [0.9, 0.8], "layer2": [0.3, 0.5], "output": [0.1, None]},
        "diffeo": {"layer1": [0.7, 0.6], "layer2": [0.2, 0.4], "output": [0.1, 0.2]},
    },
    "undefined": {"synonym": False, "diffeo": False},
}


def test_schema_is_versioned():
    schema = load_schema()
    assert schema["properties"]["format"]["properties"]["name"]["const"] == FORMAT["name"]
    assert schema["properties"]["format"]["properties"]["version"]["const"] == FORMAT["version"] == 1


def test_valid_results_pass_with_and_without_evaluation():
    validate_results(VALID)
    with_eval = copy.deepcopy(VALID)
    with_eval["evaluation"] = copy.deepcopy(EVALUATION)
    validate_results(with_eval)


def _broken(mutate):
    obj = copy.deepcopy(VALID)
    obj["evaluation"] = copy.deepcopy(EVALUATION)
    mutate(obj)
    return obj


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda o: o.pop("best_test_error"), "best_test_error"),
        (lambda o: o["format"].update(version=2), "format.version"),
        (lambda o: o["dataset"].update(source="pickle"), "dataset.source"),
        (lambda o: o["dataset"].update(rules_hash="md5:abc"), "dataset.rules_hash"),
        (lambda o: o["model"].update(arch="resnet"), "model.arch"),
        (lambda o: o.update(P=0), "P"),
        (lambda o: o.update(final_test_error=1.5), "final_test_error"),
        (lambda o: o["training"].update(stop_reason="bored"), "training.stop_reason"),
        (lambda o: o["training"]["curves"]["test_error"].append(0.4), "training.curves.test_error"),
        (lambda o: o.update(best_test_error=0.1), "best_test_error"),
        (lambda o: o["model"].update(depth=3), "model.depth"),
        (lambda o: o["evaluation"].update(extra=1), "evaluation"),
        (lambda o: o["evaluation"]["probe"].update(source="disk"), "evaluation.probe.source"),
        (
            lambda o: o["evaluation"]["sensitivity"]["synonym"].update(layer1=["high", 0.1]),
            "evaluation.sensitivity.synonym.layer1[0]",
        ),
        (
            lambda o: o["evaluation"]["sensitivity"]["diffeo"].update(layer1=[0.1]),
            "evaluation.sensitivity.diffeo.layer1",
        ),
        (
            lambda o: o["evaluation"]["sensitivity"]["diffeo"].update(layer9=[0.1, 0.2]),
            "evaluation.sensitivity.diffeo.layer9",
        ),
        (lambda o: o["evaluation"]["undefined"].pop("diffeo"), "evaluation.undefined"),
    ],
)
def test_broken_results_are_rejected_naming_the_field(mutate, field):
    with pytest.raises(ValueError) as err:
        validate_results(_broken(mutate))
    assert f"invalid results field {field}" in str(err.value)


def test_write_is_validated_and_atomic(tmp_path):
    path = write_results(tmp_path / "run" / "results.json", VALID)
    assert read_results(tmp_path / "run") == VALID
    broken = copy.deepcopy(VALID)
    broken["P"] = -1
    with pytest.raises(ValueError, match="field P"):
        write_results(path, broken)
    assert json.loads(path.read_text()) == VALID  # the old file is untouched
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]  # no temp files left


def submission() -> dict:
    """An outside submission as ``srhm evaluate --factory`` writes it: no training log, an evaluation."""
    obj = copy.deepcopy(VALID)
    del obj["training"]
    obj["model"] = {
        "arch": "resnet",
        "name": "my resnet",
        "factory": "mymodels:make",
        "width": None,
        "depth": 18,
        "n_parameters": 0,
        "layer_names": ["output"],
    }
    obj["checkpoint"] = None
    obj["evaluation"] = copy.deepcopy(EVALUATION)
    return obj


def test_outside_submission_is_accepted():
    validate_results(submission())  # any arch label, width null, depth != L, no parameters, one layer
    bare = submission()
    for key in ("name", "factory"):
        del bare["model"][key]
    bare["model"].update(arch="transformer", depth=None)
    validate_results(bare)


def test_submission_without_evaluation_is_rejected():
    obj = submission()
    del obj["evaluation"]
    with pytest.raises(
        ValueError, match=r"invalid results field evaluation: 'evaluation' is a required property"
    ) as err:
        validate_results(obj)
    assert "without a training object" in str(err.value)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda o: o["model"].update(factory="mymodels.make"), "model.factory"),
        (lambda o: o["model"].update(arch=""), "model.arch"),
        (lambda o: o["model"].update(width=0), "model.width"),
        (lambda o: o.update(checkpoint="/abs/path.pt"), "checkpoint"),
        (
            lambda o: o["evaluation"]["sensitivity"]["synonym"].update(layer2=[0.1, 0.2, 0.3]),
            "evaluation.sensitivity.synonym.layer2",
        ),
    ],
)
def test_broken_submissions_are_rejected(mutate, field):
    obj = submission()
    mutate(obj)
    with pytest.raises(ValueError, match=f"invalid results field {field}:"):
        validate_results(obj)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda o: o["model"].update(arch="resnet"), "model.arch"),
        (lambda o: o["model"].update(width=None), "model.width"),
        (lambda o: o["model"].update(depth=None), "model.depth"),
        (lambda o: o["model"].update(n_parameters=0), "model.n_parameters"),
        (lambda o: o["model"].update(layer_names=["output"]), "model.layer_names"),
    ],
)
def test_baseline_rules_hold_for_files_with_training(mutate, field):
    """What a submission may do, a file with a training object (a ``srhm train`` run) may not."""
    obj = copy.deepcopy(VALID)
    mutate(obj)
    with pytest.raises(ValueError, match=f"invalid results field {field}:") as err:
        validate_results(obj)
    assert "a file with a training object is a run of srhm train" in str(err.value)
    del obj["training"]  # the same model, submitted with an evaluation instead of a training log
    obj["evaluation"] = copy.deepcopy(EVALUATION)
    validate_results(obj)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda o: o["training"].update(wall_time_s=float("nan")), "training.wall_time_s"),
        (lambda o: o["training"]["curves"]["train_loss"].__setitem__(0, float("inf")), "training.curves.train_loss[0]"),
        (
            lambda o: o["evaluation"]["sensitivity"]["synonym"]["layer1"].__setitem__(1, float("nan")),
            "evaluation.sensitivity.synonym.layer1[1]",
        ),
        (
            lambda o: o["evaluation"]["sensitivity"]["diffeo"]["output"].__setitem__(0, -float("inf")),
            "evaluation.sensitivity.diffeo.output[0]",
        ),
        (
            lambda o: o["evaluation"]["sensitivity"]["diffeo"]["layer2"].__setitem__(0, -0.1),
            "evaluation.sensitivity.diffeo.layer2[0]",
        ),
        (lambda o: o["evaluation"].update(test_error=1.01), "evaluation.test_error"),
        (lambda o: o["training"]["curves"]["test_error"].__setitem__(0, -0.1), "training.curves.test_error[0]"),
        (lambda o: o["evaluation"]["sensitivity"]["diffeo"].pop("layer2"), "evaluation.sensitivity.diffeo"),
        (lambda o: o["evaluation"]["sensitivity"]["synonym"].pop("output"), "evaluation.sensitivity.synonym"),
    ],
)
def test_non_finite_negative_and_missing_values_are_rejected(mutate, field):
    """NaN/inf anywhere, negative sensitivities, errors outside [0, 1], a layer without both tables."""
    with pytest.raises(ValueError) as err:
        validate_results(_broken(mutate))
    assert f"invalid results field {field}:" in str(err.value)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_reading_refuses_non_finite_json_constants(tmp_path, literal):
    text = json.dumps(VALID).replace('"wall_time_s": 1.0', f'"wall_time_s": {literal}')
    assert literal in text and json.loads(text)["training"]["wall_time_s"] != 1.0  # plain json.loads accepts it
    (tmp_path / "results.json").write_text(text)
    with pytest.raises(ValueError, match=f"non-finite number {literal}"):
        read_results(tmp_path)


def test_evaluation_records_probe_perturbation_and_checkpoint():
    obj = _broken(lambda o: None)
    obj["evaluation"]["probe"]["perturbation"] = {"force": True, "key": 0}
    obj["evaluation"]["checkpoint"] = {"file": "checkpoint.pt", "selection": "best", "step": 10}
    validate_results(obj)
    for mutate, field in (
        (lambda o: o["evaluation"]["probe"]["perturbation"].update(key=-1), "evaluation.probe.perturbation.key"),
        (lambda o: o["evaluation"]["checkpoint"].update(selection="latest"), "evaluation.checkpoint.selection"),
        (lambda o: o["evaluation"]["checkpoint"].pop("file"), "evaluation.checkpoint.file"),
    ):
        broken = copy.deepcopy(obj)
        mutate(broken)
        with pytest.raises(ValueError, match=f"invalid results field {field}:"):
            validate_results(broken)


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    from srhm_datasets.files import atomic_write

    path = atomic_write(tmp_path / "f.bin", b"old")
    retired = []

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail, before_replace=lambda: retired.append(1))
    assert path.read_bytes() == b"old" and retired == []  # nothing retired before the content was complete
    atomic_write(path, lambda f: f.write(b"new"), before_replace=lambda: retired.append(1))
    assert path.read_bytes() == b"new" and retired == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def _grouped(size=3, index=1, members=({"P": 50, "seed": 0}, {"P": 100, "seed": 0}, {"P": 100, "seed": 1})):
    obj = copy.deepcopy(VALID)
    obj["training"]["group"] = {"size": size, "index": index, "members": [dict(m) for m in members]}
    return obj


@pytest.mark.parametrize(
    "group, field, named",
    [
        ({"index": 3}, "training.group.index", "3 is not below training.group.size = 3"),
        ({"size": 2}, "training.group.members", "has 3 entries, expected training.group.size = 2"),
        ({"index": 0}, "training.group.members[0]", "is not this run (P = 100, training.seed = 0)"),
        ({"index": 2}, "training.group.members[2]", "is not this run (P = 100, training.seed = 0)"),
    ],
)
def test_group_of_a_run_must_describe_the_run(group, field, named):
    """Beyond the schema: the index lies in the group, the members are size many, and member index is this run."""
    validate_results(_grouped())  # member 1 is P=100, seed 0: this run
    with pytest.raises(ValueError, match=re.escape(f"invalid results field {field}:")) as err:
        validate_results(_grouped(**group))
    assert named in str(err.value)
