"""Sweep files: every kind of bad field is one clear error before anything runs; jobs, ids, fingerprints."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from srhm_datasets.baselines.learning_curve import curve_summary
from srhm_datasets.baselines.train import resolve
from srhm_datasets.evaluation.board_render import fmt_p
from srhm_datasets.protocol import DEFAULT_WIDTH, TRANSFORMER_WIDTH
from srhm_datasets.sweep.cli import sweep
from srhm_datasets.sweep.plan import evaluation_matches, expand, finished_run, job_id
from srhm_datasets.sweep.run import pstar_markdown, pstar_summary
from srhm_datasets.sweep.spec import SweepFileError, executor_options, load_sweep, parse_sweep

EXAMPLES = Path(__file__).resolve().parents[1] / "srhm_datasets" / "sweep" / "examples"
GOOD = "configs: [demo]\nP: {min: 100, max: 400, points: 2}\n"

# (what is wrong, sweep file text, the field the single error names, a fragment of its bound)
BAD = [
    ("not YAML", "configs: [demo\n", "FILE=", "valid YAML"),
    ("not a mapping", "- demo\n", "<sweep file>='list'", "a YAML mapping"),
    ("unknown field", GOOD + "seed: 3\n", "seed=3", "a known field of the sweep file"),
    ("unknown nested field", GOOD + "train: {max_step: 10}\n", "train.max_step=10", "a known field of train"),
    ("key given twice", GOOD + "archs: [cnn]\narchs: [lcn]\n", "FILE=", "key 'archs' given twice"),
    ("configs missing", "P: {min: 1, max: 2, points: 2}\n", "configs=None", "(required)"),
    ("configs empty", "configs: []\nP: {min: 1, max: 2, points: 2}\n", "configs=[]", "a non-empty list"),
    ("unknown config", "configs: [nosuch]\nP: {min: 1, max: 2, points: 2}\n", "config='nosuch'", "a catalog name"),
    (
        "config listed twice",
        "configs: [demo, grid_L2_s0-1_v4, demo]\nP: {min: 1, max: 2, points: 2}\n",
        "configs[2]='demo'",
        "repeats configs[0]",
    ),
    ("wrong type", GOOD + "widths: 512\n", "widths=512", "a non-empty list"),
    ("not a choice", GOOD + "archs: [cnn, cnx]\n", "archs[1]='cnx'", "one of ('cnn', 'lcn', 'fcn', 'transformer')"),
    ("out of bound", GOOD + "widths: [0]\n", "widths[0]=0", "an int >= 1"),
    ("repeated item", GOOD + "seeds: [0, 1, 0]\n", "seeds[2]=0", "distinct items"),
    ("number written as text", GOOD + "train: {loss_threshold: 1e-3}\n", "train.loss_threshold='1e-3'", "write 1.0e-3"),
    ("boolean expected", GOOD + "train: {bias: 1}\n", "train.bias=1", "true or false"),
    ("bad lr", GOOD + "lrs: [null, -0.1]\n", "lrs[1]=-0.1", "lr > 0"),
    ("P missing", "configs: [demo]\n", "configs[0].P=None", "here or at the top level"),
    ("P incomplete", "configs: [demo]\nP: {min: 10, max: 20}\n", "P.points=None", "(required)"),
    ("P min above max", "configs: [demo]\nP: {min: 500, max: 100, points: 3}\n", "P.min=500", "P_min <= P_max = 100"),
    ("P too many points", "configs: [demo]\nP: {min: 10, max: 400, points: 500}\n", "P.points=500", "points <= 100"),
    (
        "config's P too many points",
        "configs: [{name: demo, P: {min: 10, max: 400, points: 101}}]\n",
        "configs[0].P.points=101",
        "points <= 100",
    ),
    (
        "P above the train size",
        "configs: [demo]\nP: {min: 100, max: 99999, points: 3}\n",
        "P.max=99999",
        "train size 12708 of demo",
    ),
    (
        "grid unknown parameter",
        ("configs: [{grid: {L: 2, s: 2, s0: 1, v: 4, nc: v, m: v, q: 1}}]\nP: {min: 1, max: 2, points: 2}\n"),
        "configs[0].grid.q=1",
        "a known field",
    ),
    (
        "grid parameter missing",
        "configs: [{grid: {L: 2, s: 2, s0: 1, v: 4, nc: v}}]\nP: {min: 1, max: 2, points: 2}\n",
        "configs[0].grid.m=None",
        "(required)",
    ),
    (
        "grid bad tie",
        "configs: [{grid: {L: 2, s: 2, s0: 1, v: 4, nc: v, m: w}}]\nP: {min: 1, max: 2, points: 2}\n",
        "configs[0].grid.m='w'",
        "'v' / 'v^k'",
    ),
    (
        "grid impossible config",
        ("configs: [{grid: {L: 2, s: 2, s0: 1, v: 3, nc: v, m: v^2}}]\nP: {min: 1, max: 2, points: 2}\n"),
        "nc*m=27",
        "nc*m <= v**s = 9",
    ),
    ("entry of no known shape", "configs: [{P: {min: 1, max: 2, points: 2}}]\n", "configs[0]=", "'name' or 'grid'"),
    (
        "evaluation beyond the split",
        GOOD + "evaluate: {num_probe: 100000}\n",
        "num_probe=100000",
        "2 <= num_probe <= 400",
    ),
    ("bad executor option", GOOD + "executor: {slurm: {time_min: 0}}\n", "executor.slurm.time_min=0", "an int >= 1"),
    ("unknown executor", GOOD + "executor: {pbs: {}}\n", "executor.pbs={}", "one of ('local', 'slurm')"),
    ("bad sbatch options", GOOD + "executor: {slurm: {sbatch: [qos]}}\n", "executor.slurm.sbatch=['qos']", "a mapping"),
    # a job's options together (baselines.train.check_options), told of their field in the file
    (
        "the same job twice",
        GOOD + "archs: [cnn, transformer]\nwidths: [null, 64]\n",
        "widths=[None, 64]",
        "distinct jobs: widths[0]=null and widths[1]=64 both give job demo-transformer-w64-lrdefault-seed0",
    ),
    ("option of sgd with adamw", GOOD + "train: {momentum: 0.5, optimizer: adamw}\n", "train.momentum=0.5", "sgd"),
    (
        "option written at its default where it does not apply",
        GOOD + "train: {momentum: 0.9, optimizer: adamw}\n",
        "train.momentum=0.9",
        "not given: it applies only to --optimizer sgd",
    ),
    (
        "lr scaling width with a factory",
        GOOD + "factory: tests.user_models:tiny_mlp\ntrain: {lr_scaling: width}\n",
        "train.lr_scaling='width'",
        "with a factory",
    ),
    ("norm of the transformer", GOOD + "archs: [transformer]\ntrain: {norm: fan_in}\n", "train.norm='fan_in'", "cnn"),
    (
        "mask rate of task last",
        GOOD + "archs: [transformer]\ntask: last\ntrain: {mask_rate: 0.2}\n",
        "train.mask_rate=0.2",
        "unless task='mlm'",
    ),
    ("width the heads do not divide", GOOD + "archs: [transformer]\nwidths: [30]\n", "widths[0]=30", "4 heads"),
    ("task the cnn cannot train", GOOD + "archs: [cnn]\ntask: last\n", "task='last'", "the reference network cnn"),
    (
        "encoding of another network",
        GOOD + "archs: [transformer]\ntrain: {encoding: whiten}\n",
        "train.encoding='whiten'",
        "the transformer embeds token ids",
    ),
    ("no such data", GOOD + "train: {data: /no/such/release}\n", "train.data='/no/such/release'", "no such folder"),
    (
        "threshold at chance",
        GOOD + "archs: [transformer]\ntask: last\ncurve: {threshold: 0.75}\n",
        "curve.threshold=0.75",
        "0 < threshold < 0.75, the chance error of task 'last' on demo",
    ),
    (
        "one point over a range",
        "configs: [demo]\nP: {min: 100, max: 400, points: 1}\n",
        "P.points=1",
        "points >= 2, or P_min = P_max for one point (P_min = 100 < P_max = 400",
    ),
]


@pytest.mark.parametrize("what,text,field,bound", BAD, ids=[b[0] for b in BAD])
def test_bad_sweep_file_is_one_clear_error(tmp_path, what, text, field, bound):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    with pytest.raises(SweepFileError) as info:
        load_sweep(path)
    assert len(info.value.errors) == 1, info.value.errors
    error = info.value.errors[0]
    assert field in error and bound in error, error
    assert "nothing was run" in str(info.value)


def test_every_bad_field_is_reported_at_once(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("configs: [demo]\nP: {min: 1, max: 2, points: 0}\narchs: [x]\nwidths: [0]\ntrain: {momentum: 1}\n")
    with pytest.raises(SweepFileError) as info:
        load_sweep(path)
    assert [e.split("=")[0] for e in info.value.errors] == [
        "invalid parameter archs[0]",
        "invalid parameter widths[0]",
        "invalid parameter train.momentum",
        "invalid parameter P.points",
    ]


def test_every_bad_field_of_P_is_reported_together(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("configs: [demo]\nP: {min: 10, max: 99999, points: 500}\n")
    with pytest.raises(SweepFileError) as info:
        load_sweep(path)
    assert [e.split(":")[0] for e in info.value.errors] == [
        "invalid parameter P.points=500",
        "invalid parameter P.max=99999",
    ]


def test_an_error_of_many_jobs_is_reported_once(tmp_path):
    path = tmp_path / "sweep.yaml"
    text = "configs: [demo, grid_L2_s0-1_v4]\nP: {min: 10, max: 40, points: 2}\nseeds: [0, 1, 2]\n"
    path.write_text(text + "train: {momentum: 0.5, optimizer: adam}\n")
    with pytest.raises(SweepFileError) as info:
        load_sweep(path)
    assert info.value.errors == [
        "invalid parameter train.momentum=0.5: must satisfy 0.9 (its default): it applies only to --optimizer sgd"
    ]


def test_every_conflict_of_a_job_is_reported_before_anything_runs(tmp_path):
    path = tmp_path / "sweep.yaml"
    text = "archs: [transformer, cnn]\nwidths: [30]\ntrain: {momentum: 0.5, norm: channels, bias: false}\n"
    path.write_text(GOOD + text)
    with pytest.raises(SweepFileError) as info:
        load_sweep(path)
    assert [e.split(":")[0] for e in info.value.errors] == [  # of the transformer; none of the cnn
        "invalid parameter widths[0]=30",
        "invalid parameter train.momentum=0.5",  # with its AdamW
        "invalid parameter train.norm='channels'",
        "invalid parameter train.bias=False",
    ]


def test_an_option_error_at_run_time_is_not_a_conflict_with_the_folder(tmp_path):
    """A job whose options are refused (a plan.json of another version) names the option, not out."""
    from srhm_datasets.sweep.run import check_conflicts

    (job,) = expand(load_sweep(_write(tmp_path, GOOD)))
    job = dataclasses.replace(job, train={**job.train, "optimizer": "adamw", "momentum": 0.5})
    with pytest.raises(ValueError) as info:
        check_conflicts(tmp_path / "out", [job])
    assert str(info.value).startswith("invalid parameter momentum=0.5") and "conflict" not in str(info.value)


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


def test_bad_sweep_file_runs_nothing_and_writes_nothing(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(GOOD + "widths: [0]\n")
    result = CliRunner().invoke(sweep, [str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "widths[0]=0" in result.output
    assert not (tmp_path / "out").exists()


def test_good_file_gets_defaults_and_jobs(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "configs:\n  - demo\n  - {grid: {L: 2, s: 2, s0: [0, 1], v: 4, nc: v, m: v, seed: 2}, "
        "P: {min: 50, max: 100, points: 2}}\nP: {min: 100, max: 400, points: 2}\n"
        "archs: [cnn, lcn]\nseeds: [0, 1]\nlrs: [null, 0.01]\n"
    )
    s = load_sweep(path)
    assert s.name == "sweep" and s.widths == (None,) and s.train["momentum"] == 0.9 and s.evaluate["enabled"] is True
    assert [e.label for e in s.configs] == ["demo", "grid_L2_s0-0_v4", "grid_L2_s0-1_v4"]
    assert [e.P for e in s.configs] == [(100, 400, 2), (50, 100, 2), (50, 100, 2)]
    jobs = expand(s)
    assert len(jobs) == 3 * 2 * 1 * 2 * 2 == len({j.id for j in jobs})
    assert jobs[0].id == "demo-cnn-w512-lrdefault-seed0" and jobs[1].id == "demo-cnn-w512-lrdefault-seed1"
    assert jobs[2].id == "demo-cnn-w512-lr0.01-seed0"
    assert {j.width for j in jobs} == {512}  # null: each network's default width


def test_a_sweep_without_widths_trains_each_network_at_its_default_width(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("configs: [demo]\nP: {min: 10, max: 40, points: 2}\narchs: [cnn, transformer]\n")
    jobs = expand(load_sweep(path))
    assert [(j.id, j.width) for j in jobs] == [
        ("demo-cnn-w512-lrdefault-seed0", DEFAULT_WIDTH),
        ("demo-transformer-w64-lrdefault-seed0", TRANSFORMER_WIDTH),
    ]
    assert [resolve(j.options()).width for j in jobs] == [DEFAULT_WIDTH, TRANSFORMER_WIDTH]


def test_executor_options_from_the_command_line_override_the_file(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(GOOD + "executor: {slurm: {partition: gpu, time_min: 30, sbatch: {qos: low, constraint: a100}}}\n")
    s = load_sweep(path)
    opts = executor_options(s, "slurm", {"time_min": 90, "partition": None, "sbatch": {"qos": "high"}})
    assert opts["partition"] == "gpu" and opts["time_min"] == 90
    assert opts["sbatch"] == {"qos": "high", "constraint": "a100"}
    with pytest.raises(SweepFileError, match=r"executor.slurm.cpus_per_task=0"):
        executor_options(s, "slurm", {"cpus_per_task": 0})
    with pytest.raises(ValueError, match=r"invalid parameter executor='pbs'"):
        executor_options(s, "pbs")


def _sweep(**fields):
    doc = {"configs": ["demo"], "P": {"min": 100, "max": 400, "points": 2}, **fields}
    return parse_sweep(doc, "h")


@given(
    st.lists(st.integers(0, 9), min_size=1, max_size=4, unique=True),
    st.lists(st.sampled_from([None, 0.01, 0.1, 0.003]), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from([16, 64, 512]), min_size=1, max_size=3, unique=True),
)
def test_job_ids_are_unique_and_do_not_depend_on_the_rest_of_the_grid(seeds, lrs, widths):
    jobs = expand(_sweep(seeds=seeds, lrs=lrs, widths=widths, archs=["cnn", "lcn"]))
    assert len({j.id for j in jobs}) == len(jobs) == 2 * len(seeds) * len(lrs) * len(widths)
    for job in jobs:  # the same grid point alone has the same id and fingerprint
        alone = expand(_sweep(seeds=[job.seed], lrs=[job.lr], widths=[job.width], archs=[job.arch]))
        assert [(j.id, j.fingerprint) for j in alone] == [(job.id, job.fingerprint)]
        assert job.id == job_id("demo", job.arch, job.width, job.lr, job.seed)


def test_fingerprint_covers_run_settings_only():
    base = expand(_sweep())[0]
    same = [
        dataclasses.replace(base, train={**base.train, "threads": 3, "device": "cpu"}),
        dataclasses.replace(
            base, P=(10, 20, 5), curve={**base.curve, "threshold": 0.2}, evaluate={**base.evaluate, "num_probe": 10}
        ),
    ]
    other = [
        dataclasses.replace(base, train={**base.train, "max_steps": 10}),
        dataclasses.replace(base, seed=1),
        dataclasses.replace(base, lr=0.5),
        dataclasses.replace(base, train={**base.train, "num_test": 100}),
    ]
    assert all(j.fingerprint == base.fingerprint for j in same)
    assert len({base.fingerprint, *(j.fingerprint for j in other)}) == 1 + len(other)


def test_planning_does_not_bound_threads_by_this_machines_cpus(tmp_path):
    """A SLURM sweep may ask for more threads than the login node that plans it has."""
    job = expand(_sweep(train={"threads": (os.cpu_count() or 1) + 8}))[0]
    assert finished_run(tmp_path, job, 100) is None


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_examples_are_valid(path):
    s = load_sweep(path)
    assert yaml.safe_load(path.read_text())["configs"] and expand(s)


def test_submitit_is_imported_without_closing_the_callers_log_handlers(tmp_path):
    """submitit's import-time dictConfig closed every logging handler of the process (pytest's too)."""
    script = (
        "import logging, sys\n"
        f"handler = logging.FileHandler({str(tmp_path / 'log.txt')!r})\n"
        "logging.getLogger().addHandler(handler)\n"
        "from srhm_datasets.sweep.executors import import_submitit\n"
        "assert 'submitit' not in sys.modules\n"
        "import_submitit()\n"
        "assert not handler.stream.closed and logging.getLogger().handlers == [handler]\n"
        "logging.getLogger().warning('still logging')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "log.txt").read_text() == "still logging\n"


#: Sweep files in YAML's shorthand (anchors, aliases, merge keys, yes/no, block scalars), each with
#: the same file written out: the sweep file must read them as ``yaml.safe_load`` does.
SHORTHAND = [
    (
        "configs: [demo]\nP: &p {min: 100, max: 400, points: 2}\n"
        "train: &t {max_steps: 10, threads: 1}\nevaluate: {<<: *t, enabled: no}\n",
        None,  # evaluate has no max_steps: an unknown field either way, reported the same
    ),
    (
        "configs:\n  - {name: demo, P: &p {min: 100, max: 400, points: 2}}\n  - {name: grid_L2_s0-1_v4, P: *p}\n",
        "configs:\n  - {name: demo, P: {min: 100, max: 400, points: 2}}\n"
        "  - {name: grid_L2_s0-1_v4, P: {min: 100, max: 400, points: 2}}\n",
    ),
    (
        "configs: [demo]\nP: &p {min: 100, max: 400, points: 2}\n"
        "curve: &c {metric: best, plot: yes}\n"
        "executor:\n  local: &l {workers: 1}\n  slurm: {<<: *l, partition: gpu}\n",
        None,
    ),
    (
        "configs: [demo]\nP: {min: 100, max: 400, points: 2}\ntrain:\n  <<: [{max_steps: 10}, {num_test: 50}]\n"
        "  max_steps: 20\ncurve: {plot: off}\n",
        "configs: [demo]\nP: {min: 100, max: 400, points: 2}\ntrain: {max_steps: 20, num_test: 50}\n"
        "curve: {plot: false}\n",
    ),
]


@pytest.mark.parametrize("text,written_out", SHORTHAND)
def test_sweep_file_is_read_as_yaml_safe_load_reads_it(tmp_path, text, written_out):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    try:
        got = load_sweep(path).document()
    except SweepFileError as err:
        got = err.errors
    try:
        want = parse_sweep(yaml.safe_load(text), "sweep").document()
    except SweepFileError as err:
        want = err.errors
    assert got == want
    if written_out is not None:
        assert yaml.safe_load(written_out) == yaml.safe_load(text)
        (tmp_path / "out" / "sweep.yaml").parent.mkdir()
        (tmp_path / "out" / "sweep.yaml").write_text(written_out)
        assert load_sweep(tmp_path / "out" / "sweep.yaml").document() == got


_scalars = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text("abc xyz-_:", max_size=8)
_docs = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text("abcdef_", min_size=1, max_size=6), inner),
    max_leaves=20,
)


@given(doc=_docs, flow=st.booleans())
def test_any_document_without_repeated_keys_is_read_as_safe_load_reads_it(doc, flow):
    from srhm_datasets.sweep.spec import _StrictLoader

    text = yaml.safe_dump({"doc": doc, "again": doc}, default_flow_style=flow)  # aliases of shared values
    assert yaml.load(text, Loader=_StrictLoader) == yaml.safe_load(text)


@pytest.mark.parametrize(
    "text,reason",
    [
        ("? [a, b]\n: 1\n", "found unhashable key"),
        ("configs: !!python/object:os.system demo\n", "could not determine a constructor"),
        ("configs: [demo]\n---\nP: 1\n", "expected a single document"),
    ],
)
def test_yaml_that_safe_load_refuses_is_one_clear_error_on_one_line(tmp_path, text, reason):
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    with pytest.raises(SweepFileError) as info:
        load_sweep(path)
    (error,) = info.value.errors
    assert "must be valid YAML" in error and reason in error and "\n" not in error


def test_an_evaluation_without_a_probe_counts_as_evaluated(tmp_path):
    """A run of another task evaluated by hand (``srhm evaluate``: no probe, format.md §11) is counted, not a crash."""
    path = tmp_path / "sweep.yaml"
    path.write_text(GOOD + "archs: [transformer]\ntask: last\nevaluate: {enabled: false}\n")
    (job,) = expand(load_sweep(path))
    evaluation = {"num_test": job.config.split_sizes()["test"], "probe": None}
    assert evaluation_matches({"evaluation": evaluation}, job)
    assert not evaluation_matches({"evaluation": {**evaluation, "num_test": 10}}, job)


# ---- the P* summary ---------------------------------------------------------------------------------
def _pstar_of(tmp_path, text: str, errors: list[list[float]]) -> dict:
    """pstar.json of the sweep of ``text`` whose job k has best test errors ``errors[k]`` at P = 40, 400
    (each job's summary.json as curve_summary writes it)."""
    jobs = expand(load_sweep(_write(tmp_path, "P: {min: 40, max: 400, points: 2}\n" + text)))
    for job, errs in zip(jobs, errors):
        runs = [{"P": P, "seed": job.seed, "best_test_error": e} for P, e in zip(job.Ps, errs)]
        opt = resolve(job.options())
        job.folder(tmp_path).mkdir(parents=True)
        summary = curve_summary(opt, opt.lr, runs, job.curve["threshold"], job.curve["metric"])
        (job.folder(tmp_path) / "summary.json").write_text(json.dumps(summary))
    return pstar_summary(tmp_path, jobs)


def test_pstar_names_the_model_and_the_task_of_a_factory_sweep(tmp_path):
    text = "configs: [demo]\nfactory: tests.user_models:token_net\ntask: mlm\nseeds: [0, 1]\n"
    pstar = _pstar_of(tmp_path, text + "train: {mask_rate: 0.3, encoding: tokens}\n", [[0.5, 0.05], [0.5, 0.3]])
    for row in (*pstar["curves"], *pstar["groups"]):
        assert (row["model"], row["arch"], row["task"], row["width"]) == (
            "token_net",
            "custom",
            "mlm mask_rate=0.3",
            None,
        )
    markdown = pstar_markdown(pstar)
    assert "| demo | token_net | mlm mask_rate=0.3 | - | 0.001 | 1/2 |" in markdown
    assert "| demo-token_net-lrdefault-seed1 | mlm mask_rate=0.3 | - | above_range | [400, -] |" in markdown
    assert "None" not in markdown


def test_pstar_prints_p_star_as_the_board_does(tmp_path):
    """P* (and its mean, min, max) as an integer to 3 significant digits (board_render.fmt_p); a plain class
    sweep of a reference network names the network and the task class."""
    pstar = _pstar_of(tmp_path, "configs: [demo]\nwidths: [16]\n", [[0.5, 0.05]])
    (curve,) = pstar["curves"]
    assert (curve["model"], curve["task"]) == ("cnn", "class") and curve["P_star"] != round(curve["P_star"])
    shown = fmt_p(curve["P_star"])
    assert f"| demo | cnn | class | 16 | 0.1 | 1/1 | {shown} | {shown} | {shown} | 256 |" in pstar_markdown(pstar)
    assert f"| demo-cnn-w16-lrdefault-seed0 | class | {shown} | interpolated | [40, 400] |" in pstar_markdown(pstar)
