"""The committed baseline results: ``baselines/results/`` as ``baselines/collect.py`` writes it.

Every check runs on two trees: a fixture made in a temporary folder by a real tiny sweep
collected with ``baselines/collect.py``, and the committed ``baselines/results/`` once it
exists (until then that case is skipped, with the reason shown by ``-ra``). On each tree:
every ``results.json`` validates and holds an evaluation on the whole splits, no checkpoint
or marker is committed, every ``summary.json`` is what the package's ``curve_summary``
computes from the committed runs, every ``pstar.json`` / ``pstar.md`` is what
``pstar_summary`` / ``pstar_markdown`` compute from the committed summaries (and exists
exactly when every job of the sweep is there), and the leaderboard accepts every run.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from srhm_datasets.baselines.learning_curve import curve_summary
from srhm_datasets.catalog import get_config
from srhm_datasets.evaluation import board_entries
from srhm_datasets.files import MARKER, atomic_write
from srhm_datasets.results import read_results
from srhm_datasets.sweep.plan import PSTAR_JSON, PSTAR_MD, read_plan
from srhm_datasets.sweep.run import pstar_markdown, pstar_summary, run_sweep
from srhm_datasets.sweep.spec import load_sweep

BASELINES = Path(__file__).resolve().parent.parent / "baselines"
COMMITTED = BASELINES / "results"
#: The only file names a collected tree may hold (no checkpoint, marker, log or lock).
ALLOWED = {"results.json", "summary.json", "learning_curve.png", "plan.json", "sweep.yaml", PSTAR_JSON, PSTAR_MD}

#: The fixture's sweep folder: named as the baseline sweep whose sensitivities reproduce.py plots.
SWEEP = "sensitivities"
#: Three archs x two seeds on one small config, 3 P values of 60 steps each (18 runs, all evaluated).
TINY = {
    "name": "tiny-results",
    "configs": [{"name": "grid_L2_s0-1_v3", "P": {"min": 30, "max": 400, "points": 3}}],
    "archs": ["cnn", "lcn", "transformer"],
    "widths": [16],
    "seeds": [0, 1],
    "train": {"max_steps": 60, "num_test": 500, "threads": 1},
    "curve": {"threshold": 0.10, "metric": "best", "plot": True},
    "evaluate": {"enabled": True},
    "executor": {"local": {"workers": 1}},
}


def script(name: str):
    """The module of ``baselines/<name>.py`` (a folder of scripts, not a package), loaded once."""
    key = f"baselines_script_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, BASELINES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module  # dataclasses look their module up while the file runs
        spec.loader.exec_module(module)
    return sys.modules[key]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> Path:
    """A folder holding one finished sweep folder, SWEEP, made by ``srhm sweep`` (the real code)."""
    root = tmp_path_factory.mktemp("baseline-runs")
    sweep_file = root.parent / "tiny.yaml"
    sweep_file.write_text(yaml.safe_dump(TINY))
    report = run_sweep(sweep_file, root / "runs" / SWEEP, progress_bar=False)
    assert report.finished is not None  # every job done: the leaderboard and pstar.json were written
    return root / "runs"


@pytest.fixture(scope="module")
def tiny_tree(tiny_runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("baseline-results") / "results"
    script("collect").collect(tiny_runs, out)
    return out


@pytest.fixture(params=["fixture", pytest.param("committed", marks=pytest.mark.slow)])
def tree(request) -> Path:
    if request.param == "committed":
        if not COMMITTED.is_dir():
            pytest.skip("baselines/results/ is not committed yet (python baselines/collect.py)")
        return COMMITTED
    return request.getfixturevalue("tiny_tree")


def sweeps(tree: Path) -> list[Path]:
    found = sorted(p.parent for p in tree.glob("*/plan.json"))
    assert found, f"no sweep folder (with plan.json) in {tree}"
    return found


def results_files(tree: Path) -> list[Path]:
    found = sorted(tree.glob("*/runs/*/P*/results.json"))
    assert found, f"no results.json in {tree}"
    return found


#: path -> the validated results object: each file goes through the package's validator once a session
#: (about 30 ms of CPU a run of 2,000 curve points: the whole committed tree takes tens of seconds).
VALIDATED: dict[Path, dict] = {}


def validated(path: Path) -> dict:
    path = Path(path).absolute()
    if path not in VALIDATED:
        VALIDATED[path] = read_results(path)  # the package's validator (schema and semantics)
    return VALIDATED[path]


def present_jobs(sweep: Path) -> tuple[list, list]:
    """(jobs of the plan whose curve folder was collected, all jobs of the plan)."""
    _, jobs = read_plan(sweep)
    return [job for job in jobs if job.folder(sweep).is_dir()], jobs


# ---- every tree ------------------------------------------------------------------------


def evaluated(sweep: Path) -> bool:
    """Whether the sweep file of a collected sweep evaluates its runs (``evaluate.enabled``; S and D
    are measured for ``class`` runs only, so a sweep of another task turns evaluation off)."""
    return load_sweep(sweep / "sweep.yaml").evaluate["enabled"]


def test_every_results_file_validates_with_an_evaluation_on_the_whole_splits(tree):
    for path in results_files(tree):
        results = validated(path)
        ev = results.get("evaluation")
        if not evaluated(path.parents[3]):
            assert ev is None and results["training"].get("task") not in (None, "class"), path
            continue
        assert ev is not None, f"{path} has no evaluation"
        sizes = get_config(results["dataset"]["config"]).split_sizes()
        assert (ev["num_test"], ev["probe"]["num_points"]) == (sizes["test"], sizes["probe"]), path


def test_no_checkpoint_marker_or_other_file_is_committed(tree):
    files = [p for p in tree.rglob("*") if p.is_file()]
    assert files
    for path in files:
        rel = path.relative_to(tree)
        is_record = rel.parts[1:2] == ("jobs",) and path.suffix == ".json"
        assert path.name in ALLOWED or is_record, f"{rel} should not be committed"
        assert path.name != MARKER and not path.name.endswith(".pt")


def test_every_summary_is_what_curve_summary_computes_from_the_committed_runs(tree):
    checked = 0
    for sweep in sweeps(tree):
        for job in present_jobs(sweep)[0]:
            summary = json.loads((job.folder(sweep) / "summary.json").read_text())
            assert sorted(r["P"] for r in summary["runs"]) == job.Ps, job.id
            runs = []
            for entry in summary["runs"]:
                results = validated(job.folder(sweep) / entry["run"] / "results.json")
                t = results["training"]
                assert (results["P"], t["seed"]) == (entry["P"], entry["seed"])
                runs.append(
                    {
                        **entry,
                        "best_test_error": results["best_test_error"],
                        "final_test_error": results["final_test_error"],
                        "stop_reason": t["stop_reason"],
                        "steps": t.get("steps"),
                        "wall_time_s": t["wall_time_s"],
                        "group_size": t.get("group", {}).get("size", 1),
                    }
                )
            curve = job.curve
            assert curve_summary(job.options(), summary["lr"], runs, curve["threshold"], curve["metric"]) == summary
            checked += 1
    assert checked, f"no learning curve in {tree}"


def test_every_pstar_is_what_pstar_summary_computes_and_exists_once_every_job_is_there(tree):
    for sweep in sweeps(tree):
        present, jobs = present_jobs(sweep)
        complete = len(present) == len(jobs)
        assert (sweep / PSTAR_JSON).is_file() == complete, f"{sweep.name}: pstar.json iff every job is collected"
        assert (sweep / PSTAR_MD).is_file() == complete
        if complete:
            pstar = pstar_summary(sweep, jobs)
            assert json.loads((sweep / PSTAR_JSON).read_text()) == pstar
            assert (sweep / PSTAR_MD).read_text() == pstar_markdown(pstar)


def test_the_leaderboard_accepts_every_committed_run(tree, monkeypatch):
    # the schema is checked once by ``validated``; the leaderboard's own rules (config, rules hash, P,
    # revisions, whole splits) run on the objects it validated
    read = board_entries._read_results
    monkeypatch.setattr(
        board_entries, "_read_results", lambda p: (validated(p), None) if p.name == "results.json" else read(p)
    )
    entries, rejected, _ = board_entries.collect(tree)
    assert rejected == []
    assert sorted(Path(e.path) for e in entries) == results_files(tree)


# ---- collect.py on the fixture ---------------------------------------------------------


def test_collect_copies_each_run_as_the_same_object(tiny_runs, tiny_tree):
    for path in results_files(tiny_tree):
        source = tiny_runs / path.relative_to(tiny_tree)
        assert json.loads(path.read_text()) == json.loads(source.read_text())
        assert path.stat().st_size < source.stat().st_size  # compact JSON
    for name in ("plan.json", "sweep.yaml", PSTAR_JSON, PSTAR_MD):
        assert (tiny_tree / SWEEP / name).read_bytes() == (tiny_runs / SWEEP / name).read_bytes()


def test_srhm_leaderboard_renders_the_collected_tree(tiny_tree, tmp_path):
    from srhm_datasets.cli import main

    result = CliRunner().invoke(main, ["leaderboard", str(tiny_tree), "--out", str(tmp_path / "board")])
    assert result.exit_code == 0, result.output
    assert f"{3 * 2 * 3} accepted, 0 rejected" in result.output
    assert (tmp_path / "board" / "index.md").is_file()


def test_second_collect_writes_nothing_and_deletes_nothing(tiny_runs, tmp_path):
    collect = script("collect")
    out = tmp_path / "results"
    first = collect.collect(tiny_runs, out)
    notes = out / SWEEP / "runs" / "NOTES.txt"
    notes.write_text("a user's file")
    again = collect.collect(tiny_runs, out)
    assert first[0].written == len(first[0].files) and again[0].written == 0
    assert again[0].stale == ["runs/NOTES.txt"] and notes.read_text() == "a user's file"
    assert "stale (not from this collection, left in place): runs/NOTES.txt" in collect.report(again, out)


def test_collect_leaves_out_jobs_not_done_and_pstar_until_all_are(tiny_runs, tmp_path):
    collect = script("collect")
    runs = tmp_path / "runs"
    shutil.copytree(tiny_runs, runs)
    job = "grid_L2_s0-1_v3-lcn-w16-lrdefault-seed1"
    (runs / SWEEP / "runs" / job / "P400" / "results.json").unlink()
    out = tmp_path / "results"
    (copy,) = collect.collect(runs, out)
    assert (copy.done, copy.total) == (5, 6)
    assert [j for j, _, _ in copy.incomplete] == [job]
    assert not (out / SWEEP / "runs" / job).exists()
    assert not (out / SWEEP / PSTAR_JSON).exists() and (out / SWEEP / "plan.json").is_file()
    assert f"not done: {job} (failed" in collect.report([copy], out)
    reproduce = script("reproduce")  # reads the partial tree and says what is missing
    groups = {g.arch: g for g in reproduce.read_sweep(out / SWEEP).groups}
    assert (len(groups["cnn"].curves), len(groups["lcn"].curves), groups["lcn"].planned) == (2, 1, 2)
    assert reproduce.seeds_p_star(groups["lcn"]).endswith("(1 of 2 seeds collected)")
    assert "collected" not in reproduce.seeds_p_star(groups["cnn"])


def test_collect_says_when_a_finished_sweep_has_no_pstar_yet(tiny_runs, tmp_path):
    collect = script("collect")
    runs = tmp_path / "runs"
    shutil.copytree(tiny_runs, runs)
    (runs / SWEEP / PSTAR_JSON).unlink()  # every job done, the sweep's last step not run
    (copy,) = collect.collect(runs, tmp_path / "results")
    assert copy.done == copy.total and PSTAR_JSON not in copy.files and PSTAR_MD not in copy.files
    assert "not written yet by the sweep" in collect.report([copy], tmp_path / "results")


def test_collect_refuses_bad_folders_before_writing(tiny_runs, tmp_path):
    collect = script("collect")
    with pytest.raises(ValueError, match=r"invalid parameter runs=.*must satisfy an existing folder"):
        collect.collect(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ValueError, match=r"invalid parameter out=.*must satisfy outside --runs"):
        collect.collect(tiny_runs, tiny_runs / SWEEP / "results")
    with pytest.raises(ValueError, match=r"invalid parameter max_plot_kb=-1"):
        collect.collect(tiny_runs, tmp_path / "out", max_plot_kb=-1)
    assert not (tmp_path / "out").exists() and not (tiny_runs / SWEEP / "results").exists()


def test_collect_refuses_a_runs_folder_without_sweeps_naming_a_sweep_folder_given_itself(tiny_runs, tmp_path):
    collect = script("collect")  # both ran and wrote nothing, exit 0 ("no sweep folders found")
    with pytest.raises(ValueError, match=r"invalid parameter runs=.*a sweep folder itself: pass its parent"):
        collect.collect(tiny_runs / SWEEP, tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"invalid parameter runs=.*must satisfy a folder holding srhm sweep"):
        collect.collect(tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_collect_never_writes_into_a_folder_it_did_not_make(tiny_runs, tmp_path):
    collect = script("collect")
    foreign = tmp_path / "out" / SWEEP  # a user's folder that happens to bear the sweep's name
    foreign.mkdir(parents=True)
    (foreign / "sweep.yaml").write_text("mine")
    with pytest.raises(ValueError, match=r"invalid parameter out=.*new, empty or an earlier collection"):
        collect.collect(tiny_runs, tmp_path / "out")
    assert [p.name for p in foreign.iterdir()] == ["sweep.yaml"] and (foreign / "sweep.yaml").read_text() == "mine"
    live = tmp_path / "copy"  # --out holding a sweep folder itself (plan.json and srhm's marker): not a collection
    shutil.copytree(tiny_runs, live / "runs")
    with pytest.raises(ValueError, match=r"invalid parameter out="):
        collect.collect(tiny_runs, live / "runs")
    (empty := tmp_path / "fresh" / SWEEP).mkdir(parents=True)  # an empty folder, or an earlier collection: fine
    (copy,) = collect.collect(tiny_runs, empty.parent)
    assert copy.written == len(copy.files) and collect.collect(tiny_runs, empty.parent)[0].written == 0


def test_a_collection_interrupted_after_its_first_file_is_resumed(tiny_runs, tmp_path, monkeypatch):
    collect = script("collect")
    calls = []

    def first_then_fail(path, data):
        calls.append(path)
        if len(calls) > 1:
            raise KeyboardInterrupt
        atomic_write(path, data)

    monkeypatch.setattr(collect, "atomic_write", first_then_fail)
    with pytest.raises(KeyboardInterrupt):
        collect.collect(tiny_runs, tmp_path / "out")
    monkeypatch.undo()  # the folder holds one file: plan.json, which marks it as a collection
    assert [p.name for p in (tmp_path / "out" / SWEEP).iterdir()] == ["plan.json"]
    (copy,) = collect.collect(tiny_runs, tmp_path / "out")
    assert copy.written == len(copy.files) - 1 and not copy.incomplete


def test_big_plots_are_not_copied(tiny_runs, tmp_path):
    (copy,) = script("collect").collect(tiny_runs, tmp_path / "results", max_plot_kb=0)
    assert not any(f.endswith("learning_curve.png") for f in copy.files)
    assert not list((tmp_path / "results").rglob("learning_curve.png"))


# ---- reproduce.py on the fixture -------------------------------------------------------


def test_reproduce_draws_the_figures_and_prints_every_section(tiny_tree, tmp_path):
    out = tmp_path / "figures"
    result = CliRunner().invoke(script("reproduce").main, ["--results", str(tiny_tree), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "eq8.png",
        "pstar_laws.png",
        "sensitivities_cnn_w16.png",
        "sensitivities_lcn_w16.png",
    ]
    assert f"srhm sweep baselines/cpu/{SWEEP}.yaml --out baselines/runs/{SWEEP}" in result.output
    for title in (
        "Commands",
        "P* against the paper's laws",
        "Sparsity B",
        "s = 3",
        "Eq. 8",
        "Sensitivities",
        "The transformer beside the CNN",
        "Width",
        "Wall time",
    ):
        assert f"## {title}" in result.output
    section = result.output.split("## The transformer beside the CNN")[1].split("\n## ")[0]
    (row,) = [line for line in section.splitlines() if line.startswith("| grid_L2_s0-1_v3 |")]
    groups = {g["arch"]: g for g in json.loads((tiny_tree / SWEEP / PSTAR_JSON).read_text())["groups"]}
    cells = [c.strip() for c in row.strip("|").split("|")]
    cnn, transformer = groups["cnn"]["P_star_geomean"], groups["transformer"]["P_star_geomean"]
    reproduce = script("reproduce")
    assert cells[1].startswith(reproduce.fmt(cnn)) if cnn else cells[1].startswith("-")
    assert cells[3].startswith(reproduce.fmt(transformer)) if transformer else cells[3] == "> 400"
    assert "](figures/pstar_laws.png)" in result.output
    pstar = json.loads((tiny_tree / SWEEP / PSTAR_JSON).read_text())
    for group in (g for g in pstar["groups"] if g["arch"] != "transformer"):  # laws table rows: pstar_summary's P*
        table = result.output.split(f"### {group['arch'].upper()} (Fig.")[1].split("\n#")[0]
        (row,) = [line for line in table.splitlines() if line.startswith(f"| {SWEEP} | grid_L2_s0-1_v3 |")]
        cells = [c.strip() for c in row.strip("|").split("|")]
        p, crossed = group["P_star_geomean"], group["crossed"]
        fmt = script("reproduce").fmt  # 3 significant digits
        assert cells[7] == fmt(p) + ("" if crossed == 2 else f" ({crossed}/2)")
        assert cells[8] == fmt(group["law_x"], 4)


def test_reproduce_refuses_a_folder_without_sweeps(tmp_path):
    result = CliRunner().invoke(script("reproduce").main, ["--results", str(tmp_path), "--out", str(tmp_path / "f")])
    assert result.exit_code == 2
    assert "invalid parameter results=" in result.output and "<sweep>/plan.json" in result.output
    assert not (tmp_path / "f").exists()


def test_reproduce_links_the_figures_from_outs_parent_when_out_is_the_current_folder(tiny_tree, tmp_path, monkeypatch):
    figures = tmp_path / "figs"
    figures.mkdir()
    monkeypatch.chdir(figures)  # --out . linked /pstar_laws.png (Path(".").name is empty)
    result = CliRunner().invoke(script("reproduce").main, ["--results", str(tiny_tree), "--out", "."])
    assert result.exit_code == 0, result.output
    assert "](figs/pstar_laws.png)" in result.output and "](/" not in result.output
    assert (figures / "pstar_laws.png").is_file()
    (tmp_path / "link").symlink_to(figures)  # a symlinked OUT keeps its own name (links are read beside it)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(script("reproduce").main, ["--results", str(tiny_tree), "--out", "link"])
    assert result.exit_code == 0, result.output
    assert "](link/pstar_laws.png)" in result.output


def test_pstar_rows_with_and_without_a_band(tiny_tree):
    reproduce = script("reproduce")
    group = reproduce.read_sweep(tiny_tree / SWEEP).groups[0]
    crossed = dataclasses.replace(group, row={**group.row, "P_star_geomean": 150.0, "crossed": 2})
    unit = lambda g: 50.0
    (with_band,) = reproduce.pstar_rows([crossed], unit, (1.0, 2.0))
    (without,) = reproduce.pstar_rows([crossed], unit, None, paper=False)  # sparsity B, s = 3 tables
    assert with_band[-3:] == ["3", "2.4", "**no**"] and with_band[-4] == "50"
    assert without[-2:] == ["50", "3"]


def test_numbers_are_shown_with_three_significant_digits_and_thousands_separators():
    fmt = script("reproduce").fmt
    assert [fmt(None), fmt(0.123456), fmt(189.2), fmt(1527.4), fmt(24576.0), fmt(229.06, 4)] == [
        "-",
        "0.123",
        "189",
        "1,530",
        "24,600",
        "229.1",
    ]


def test_eq8_thresholds_are_the_papers():
    thresholds = script("reproduce").eq8_thresholds
    # paper.md 3.3: network, s, L -> S_2 and D_2 thresholds (Figs. 6, 11, 14)
    assert thresholds("lcn", 2, 2) == thresholds("lcn", 2, 3) == (0.30, 0.10)
    assert thresholds("lcn", 3, 2) == (0.50, 0.10)
    assert thresholds("cnn", 2, 2) == (0.40, 0.20)
    assert thresholds("cnn", 3, 2) == (0.50, 0.20)
    assert thresholds("cnn", 2, 3) == (0.20, 0.20)
