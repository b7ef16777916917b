"""``srhm leaderboard``: validation, rejection reasons, ranking, Markdown/HTML, plots."""

from __future__ import annotations

import doctest
import errno
import json
import math
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from srhm_datasets.catalog import get_config
from srhm_datasets.cli import main
from srhm_datasets.evaluation import board_render, paper_points
from srhm_datasets.evaluation import leaderboard as leaderboard_mod
from srhm_datasets.evaluation.board_render import fmt_p
from srhm_datasets.evaluation.leaderboard import build_leaderboard, p_star
from srhm_datasets.protocol import law_x
from srhm_datasets.results import validate_results

from .board_helpers import DEMO, NO_SYNONYMS, board, make_results, optimal_file, write

#: P* of the curve (100, 0.5), (300, 0.2), (1000, 0.05): 10 % crossed between 300 and 1000, linear in log P.
CNN_P_STAR = math.exp(math.log(300) + (0.2 - 0.1) / (0.2 - 0.05) * math.log(1000 / 300))


@pytest.fixture
def no_laws_plot(monkeypatch):
    """Skip the P*-vs-laws figure (the slowest plot) in tests about something else."""
    from srhm_datasets.evaluation import leaderboard

    monkeypatch.setattr(leaderboard, "plot_pstar_laws", lambda path, ours: None)


def _reasons(summary, root):
    """Rejected file (path relative to root) -> reason."""
    return {Path(r["path"]).relative_to(root).as_posix(): r["reason"] for r in summary["rejected"]}


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.rows, self.imgs, self.cells, self._row = [], [], [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self._row = []
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag == "tr":
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._row is not None and self.tags[-1] in ("td", "th"):
            self._row.append(data)


def test_leaderboard_rejects_ranks_and_renders(example_dir, tmp_path):
    out = tmp_path / "board"
    result = CliRunner().invoke(main, ["leaderboard", str(example_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "leaderboard.json").read_text())
    assert summary["format"] == {"name": "srhm-leaderboard", "version": 1}
    reasons = _reasons(summary, example_dir)
    assert set(reasons) == {
        "bad/hash.json",
        "bad/revision.json",
        "bad/schema.json",
        "bad/undefined.json",
        "bad/results.json",
        "bad/no_evaluation.json",
    }
    assert "rules_hash" in reasons["bad/hash.json"] and "differs from the rules hash" in reasons["bad/hash.json"]
    assert "v0.9.0" in reasons["bad/revision.json"]
    assert "P" in reasons["bad/schema.json"] and "schema" in reasons["bad/schema.json"]
    assert "undefined" in reasons["bad/undefined.json"]
    assert "JSON" in reasons["bad/results.json"]
    assert "field evaluation" in reasons["bad/no_evaluation.json"]
    for rel in reasons:
        assert f"REJECTED {example_dir / rel}" in result.output
    assert [Path(p).name for p in summary["ignored"]] == ["summary.json"]

    assert board(summary)["limit"]["expected_error"] == 0.0  # the optimal file: a limit, not ignored
    assert [(r["rank"], r["model"], r["P*"]) for r in board(summary)["ranking"]] == [
        ("limit", "Bayes-optimal (exact BP)", ""),
        ("1", "cnn w64", fmt_p(CNN_P_STAR)),
        ("2", "lcn w64", fmt_p(log_interpolated(300, 0.3, 1000, 0.08))),
        ("3", "fcn w64", "> 1000"),
    ]
    rows = board(summary)["rows"]
    ranking = [(int(r["P"]), int(r["rank"]), r["model"]) for r in rows]
    assert ranking == [
        (100, 1, "lcn w64"),
        (100, 2, "cnn w64"),
        (100, 3, "fcn w64"),
        (300, 1, "cnn w64"),
        (300, 2, "bob-transformer"),
        (300, 3, "lcn w64"),
        (1000, 1, "cnn w64"),
        (1000, 2, "alice-cnn"),
        (1000, 3, "lcn w64"),
        (1000, 4, "fcn w64"),
    ]
    alice = next(r for r in rows if r["model"] == "alice-cnn")
    assert alice["S_out"] == "n/a" and alice["P*"] == ""  # no evaluation, one P only
    assert alice["file"] == "submissions/alice.json"
    bob = next(r for r in rows if r["file"] == "submissions/bob/results.json")  # ranked beside the baselines
    assert bob["model"] == "bob-transformer" and bob["test error"] == "0.2500"
    assert bob["S_out"] == "0.1000" and bob["P*"] == ""
    by_model = {r["model"]: r for r in rows if r["P"] == "1000"}
    assert by_model["cnn w64"]["P*"] == fmt_p(CNN_P_STAR)
    assert by_model["fcn w64"]["P*"] == "> 1000"
    m1_rows = board(summary, NO_SYNONYMS)["rows"]
    assert len(m1_rows) == 1 and m1_rows[0]["S_out"] == "undefined" and m1_rows[0]["D_out"] != "undefined"

    # HTML parses, has the table rows, and every image it shows exists as a PNG
    for config in (DEMO.name, NO_SYNONYMS.name):
        page = out / config / "leaderboard.html"
        parser = Collector()
        parser.feed(page.read_text())
        parser.close()
        assert parser.tags[:2] == ["html", "head"] and "table" in parser.tags
        n_rows = len(board(summary, get_config(config))["rows"]) + len(board(summary, get_config(config))["ranking"])
        assert len(parser.rows) == n_rows + 2  # a header and a row per accepted file or per ranked model
        assert parser.imgs
        for src in parser.imgs:
            png = (page.parent / src).resolve()
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", src
        md = (out / config / "leaderboard.md").read_text()
        assert md.count("\n| ") == n_rows + 2
    demo_imgs = {Path(p).name for p in summary["files"] if DEMO.name in p and p.endswith(".png")}
    assert demo_imgs == {
        "test_error_vs_P.png",
        "sensitivity_cnn_w64.png",
        "sensitivity_lcn_w64.png",
        "sensitivity_fcn_w64.png",
        "sensitivity_bob-transformer.png",
    }
    assert (out / "pstar_laws.png").stat().st_size > 10_000
    index = Collector()
    index.feed((out / "index.html").read_text())
    assert "pstar_laws.png" in index.imgs


def test_revision_option_picks_the_reference(example_dir, tmp_path):
    summary = build_leaderboard(example_dir, tmp_path / "b", revision="v0.9.0")
    rows = board(summary)["rows"]
    assert [(r["P"], r["model"]) for r in rows] == [("300", "cnn w64")]  # only the v0.9.0 file
    assert summary["configs"][DEMO.name]["revision"] == "v0.9.0"


def test_strict_exit_status(no_laws_plot, tmp_path):
    root = tmp_path / "r"
    write(root, "ok/results.json", make_results(DEMO, 100, "cnn", 0.3))
    assert CliRunner().invoke(main, ["leaderboard", str(root), "--out", str(tmp_path / "s"), "--strict"]).exit_code == 0
    write(root, "bad/results.json", make_results(DEMO, 100, "cnn", 0.3, rules="sha256:" + "1" * 64))
    result = CliRunner().invoke(main, ["leaderboard", str(root), "--out", str(tmp_path / "s"), "--strict"])
    assert result.exit_code == 1 and "REJECTED" in result.output


def test_p_star_estimates():
    assert p_star([(100, 0.5)]) == (None, "no curve")
    assert p_star([(100, 0.5), (1000, 0.3)]) == (None, "not reached")
    assert p_star([(100, 0.05), (1000, 0.01)]) == (100.0, "upper bound")
    value, kind = p_star([(100, 0.3), (1000, 0.0)])
    assert kind == "interpolated" and value == pytest.approx(100 * 10 ** (2 / 3))


def test_paper_points_match_the_laws():
    for arch in ("cnn", "lcn"):  # every transcribed x equals the law's formula, d = (s(s0+1))^L
        for p in paper_points.paper_points(arch):
            assert math.isclose(law_x(arch, p["L"], 2, p["s0"], p["v"], p["v"]), p["x"], rel_tol=1e-3, abs_tol=1), p
            assert p["d"] == (2 * (p["s0"] + 1)) ** p["L"], p
    assert len(paper_points.paper_points("cnn")) == 31 and len(paper_points.paper_points("lcn")) == 27
    assert law_x("fcn", 2, 2, 1, 4, 4) is None
    cnn = paper_points.paper_points("cnn")
    ratios = [p["p_star"] / p["x"] for p in cnn]
    assert 1.5 < min(ratios) and max(ratios) < 7  # the table's P*/x column: 1.7 .. 6.3
    # spot checks against the paper's tables
    assert (10, 3, 2, 216, 90000, 2.0e5) in paper_points.CNN_FIG4C
    assert (6, 3, 4, 1000, 32400, 1.35e5) in paper_points.CNN_FIG4C
    assert (10, 3, 2, 216, 763675, 6.3e5) in paper_points.LCN_FIG4B
    assert paper_points.LAW_CONSTANT == {"cnn": 2.5, "lcn": 1.0}


def test_per_file_checks_parameters_P_content_hash_and_whole_splits(no_laws_plot, tmp_path):
    root = tmp_path / "r"
    sizes = DEMO.split_sizes()
    write(root, "ok/a.json", make_results(DEMO, 100, test_error=0.3))
    hashed = make_results(DEMO, 300, test_error=0.2)
    hashed["dataset"]["train_content_hash"] = "sha256:" + "a" * 64
    write(root, "ok/b.json", hashed)
    write(root, "ok/c.json", {**hashed, "P": 1000})
    other_rows = make_results(DEMO, 300, test_error=0.1)
    other_rows["dataset"]["train_content_hash"] = "sha256:" + "b" * 64
    write(root, "bad/content_hash.json", other_rows)
    params = make_results(DEMO, 100)
    params["dataset"]["parameters"] = {**DEMO.parameters(), "v": 5}
    write(root, "bad/parameters.json", params)
    write(root, "bad/P.json", make_results(DEMO, sizes["train"] + 1))
    partial_probe = make_results(DEMO, 100)
    partial_probe["evaluation"]["probe"]["num_points"] = 100
    write(root, "bad/probe.json", partial_probe)
    partial_test = make_results(DEMO, 100)
    partial_test["evaluation"]["num_test"] = 1000
    write(root, "bad/test.json", partial_test)
    write(root, "ok/train_num_test.json", make_results(DEMO, 100, evaluation=False, num_test=sizes["test"]))
    # not evaluated, on fewer test rows (a sweep that set num_test, no evaluation): accepted, by its best_test_error
    write(root, "ok/unevaluated.json", make_results(DEMO, 300, test_error=0.4, evaluation=False, num_test=2000))
    nan = json.dumps(make_results(DEMO, 100)).replace('"wall_time_s": 1.0', '"wall_time_s": NaN')
    write(root, "bad/nan.json", nan)
    summary = build_leaderboard(root, tmp_path / "out")
    reasons = _reasons(summary, root)
    assert set(reasons) == {
        "bad/content_hash.json",
        "bad/parameters.json",
        "bad/P.json",
        "bad/probe.json",
        "bad/test.json",
        "bad/nan.json",
    }, reasons
    assert (
        "train_content_hash=sha256:bbbb" in reasons["bad/content_hash.json"]
        and "sha256:aaaa" in reasons["bad/content_hash.json"]
    )
    assert "dataset.parameters" in reasons["bad/parameters.json"] and "'v': 5" in reasons["bad/parameters.json"]
    assert f"P={sizes['train'] + 1} is not in 1..{sizes['train']}" in reasons["bad/P.json"]
    assert (
        "probe.num_points=100" in reasons["bad/probe.json"] and f"({sizes['probe']} points" in reasons["bad/probe.json"]
    )
    assert (
        "evaluation.num_test=1000" in reasons["bad/test.json"]
        and f"({sizes['test']} points" in reasons["bad/test.json"]
    )
    assert "non-finite number NaN" in reasons["bad/nan.json"]
    assert sorted(r["file"] for r in board(summary)["rows"]) == [
        "ok/a.json",
        "ok/b.json",
        "ok/c.json",
        "ok/train_num_test.json",
        "ok/unevaluated.json",
    ]
    unevaluated = next(r for r in board(summary)["rows"] if r["file"] == "ok/unevaluated.json")
    assert (unevaluated["test error"], unevaluated["S_out"], unevaluated["D_out"]) == ("0.4000", "n/a", "n/a")


def test_controls_and_variants_get_their_own_curves(no_laws_plot, tmp_path):
    root = tmp_path / "r"
    for P, err in ((100, 0.5), (300, 0.2), (1000, 0.05)):
        write(root, f"cnn/P{P}.json", make_results(DEMO, P, test_error=err))
        write(root, f"shuffled/P{P}.json", make_results(DEMO, P, test_error=0.74, shuffle_labels=True))
        write(root, f"lr/P{P}.json", make_results(DEMO, P, test_error=min(1.0, err + 0.3), lr=0.05))
    write(root, "onehot/P300.json", make_results(DEMO, 300, test_error=0.01, encoding="onehot"))
    summary = build_leaderboard(root, tmp_path / "out")
    assert summary["rejected"] == []
    curves = board(summary)["curves"]
    assert set(curves) == {"cnn w64", "cnn w64 (shuffled labels)", "cnn w64 lr=0.05", "cnn w64 enc=onehot"}
    assert [tuple(pt) for pt in curves["cnn w64"]["curve"]] == [
        (100, 0.5),
        (300, 0.2),
        (1000, 0.05),
    ]  # not averaged with the control
    assert curves["cnn w64"]["p_star"] == pytest.approx(CNN_P_STAR)
    control = curves["cnn w64 (shuffled labels)"]
    assert control["control"] is True and control["p_star"] is None and control["p_star_kind"] == "control"
    assert tuple(curves["cnn w64 lr=0.05"]["curve"][0]) == (100, 0.8)
    rows = {(r["P"], r["model"]): r for r in board(summary)["rows"]}
    assert rows[("1000", "cnn w64 (shuffled labels)")]["P*"] == ""
    assert rows[("1000", "cnn w64")]["P*"] == fmt_p(CNN_P_STAR)
    laws = [row for row in (tmp_path / "out" / "index.md").read_text().splitlines() if row.startswith("| cnn |")]
    assert len(laws) == 1 and "| cnn w64 |" in laws[0]  # P* against the laws: real runs only, never the control
    assert laws[0].endswith("| reported |")  # the mark in this table too


def test_model_names_with_the_same_slug_get_their_own_plots(no_laws_plot, tmp_path):
    root = tmp_path / "r"
    for name in ("my model", "my_model", "MY MODEL"):
        write(root, f"{name.replace(' ', '-')}.json", make_results(DEMO, 100, name=name, training=False))
    summary = build_leaderboard(root, tmp_path / "out")
    pngs = sorted(Path(p).name for p in summary["files"] if "sensitivity_" in p)
    assert len(pngs) == 3 and len({p.lower() for p in pngs}) == 3, pngs
    assert all((tmp_path / "out" / DEMO.name / p).is_file() for p in pngs)
    html = (tmp_path / "out" / DEMO.name / "leaderboard.html").read_text()
    assert all(p in html for p in pngs)


def test_outputs_are_written_atomically(no_laws_plot, tmp_path, monkeypatch):
    root, out = tmp_path / "r", tmp_path / "board"
    write(root, "a.json", make_results(DEMO, 100, test_error=0.3))
    write(root, "b.json", make_results(DEMO, 300, test_error=0.05))
    build_leaderboard(root, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real_replace = os.replace

    # one of each writer: a PNG (all plots share one helper), Markdown, HTML, the JSON summary
    for name in ("test_error_vs_P.png", "leaderboard.md", "index.html", "leaderboard.json"):

        def replace(src, dst, name=name):
            if str(dst).endswith(name):
                raise OSError(f"disk full while replacing {dst}")
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(OSError, match="disk full"):  # every output goes through a temp file + os.replace
            build_leaderboard(root, out)
        monkeypatch.setattr(os, "replace", real_replace)
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before, (
            name
        )  # old file intact, no temp files


def test_leaderboard_imports_no_torch(example_dir, tmp_path):
    """srhm leaderboard labels lr variants and estimates P* from ``protocol``: torch is never imported
    (before: board_entries imported evaluation.sensitivity and baselines.train, both torch)."""
    code = (
        "import sys; from click.testing import CliRunner; from srhm_datasets.cli import main; "
        f"r = CliRunner().invoke(main, ['leaderboard', {str(example_dir)!r}, '--out', {str(tmp_path / 'board')!r}]); "
        "assert r.exit_code == 0, r.output; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert (tmp_path / "board" / "index.html").is_file()


# ---- one writer per folder, nothing deleted that appeared since the check, a full disk -----------


def _two_results(tmp_path: Path) -> Path:
    root = tmp_path / "r"
    write(root, "a.json", make_results(DEMO, 100, test_error=0.3))
    write(root, "b.json", make_results(DEMO, 300, test_error=0.05))
    return root


def test_cli_leaderboard_on_a_full_disk_is_one_line_and_leaves_nothing(no_laws_plot, tmp_path, monkeypatch):
    root, out = _two_results(tmp_path), tmp_path / "boards" / "board"

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(board_render, "atomic_write", full)
    result = CliRunner().invoke(main, ["leaderboard", str(root), "--out", str(out)])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: No space left on device: ")
    assert "partial output removed" in lines[0]
    assert os.listdir(tmp_path) == ["r"]  # no board, no stage, no parent folder, no lock


@pytest.mark.parametrize("old", [False, True])
def test_leaderboard_keeps_a_file_created_in_out_while_it_rendered(no_laws_plot, tmp_path, monkeypatch, old):
    root, out = _two_results(tmp_path), tmp_path / "board"
    if old:
        build_leaderboard(root, out)
    real = leaderboard_mod._render

    def render_and_user(*args):
        out.mkdir(exist_ok=True)
        (out / "keep.txt").write_text("mine")
        return real(*args)

    monkeypatch.setattr(leaderboard_mod, "_render", render_and_user)
    result = CliRunner().invoke(main, ["leaderboard", str(root), "--out", str(out)])
    assert result.exit_code != 0 and "changed since the first check" in result.output, result.output
    assert (out / "keep.txt").read_text() == "mine"
    assert (out / "index.md").is_file() == old  # the old board untouched
    assert sorted(os.listdir(tmp_path)) == ["board", "r"]


def test_leaderboard_writes_through_a_symlinked_out(no_laws_plot, tmp_path):
    root, scratch, link = _two_results(tmp_path), tmp_path / "scratch" / "board", tmp_path / "board"
    scratch.parent.mkdir()
    link.symlink_to(scratch)
    for _ in range(2):  # a new board, then one replacing it
        build_leaderboard(root, link)
        assert link.is_symlink() and (scratch / "index.md").is_file()
    assert sorted(os.listdir(tmp_path)) == ["board", "r", "scratch"] and os.listdir(scratch.parent) == ["board"]


def log_interpolated(p0, e0, p1, e1, threshold=0.1):
    """P where the line through (log p0, e0), (log p1, e1) meets ``threshold``."""
    return math.exp(math.log(p0) + (e0 - threshold) / (e0 - e1) * math.log(p1 / p0))


def write_curve(root, name, errors_by_seed, **fields):
    """One results file per (seed, P) of a model named ``name``: ``errors_by_seed`` seed -> {P: error}."""
    for seed, errors in errors_by_seed.items():
        for P, err in errors.items():
            write(
                root,
                f"{name}/seed{seed}/P{P}.json",
                make_results(DEMO, P, test_error=err, name=name, seed=seed, **fields),
            )


def test_models_are_ranked_by_p_star_with_the_spread_over_seeds(no_laws_plot, tmp_path):
    root = tmp_path / "r"
    write_curve(root, "fast", {0: {100: 0.5, 300: 0.2, 1000: 0.05}, 1: {100: 0.5, 300: 0.12, 1000: 0.02}})
    write_curve(root, "slow", {0: {100: 0.6, 300: 0.3, 1000: 0.09}, 1: {100: 0.6, 300: 0.3, 1000: 0.07}})
    write_curve(root, "early", {0: {100: 0.05, 300: 0.01}})  # below 10 % at its smallest P: P* <= 100
    write_curve(root, "never far", {0: {100: 0.7, 300: 0.5, 1000: 0.3}})
    write_curve(root, "never near", {0: {100: 0.7, 300: 0.3, 1000: 0.2}, 1: {100: 0.7, 300: 0.3, 1000: 0.12}})
    write_curve(root, "one P", {0: {1000: 0.01}})  # no curve: only in the single-P tables
    summary = build_leaderboard(root, tmp_path / "out")
    ranking = board(summary)["ranking"]
    assert [r["model"] for r in ranking] == ["early", "fast", "slow", "never near", "never far"]
    assert [r["rank"] for r in ranking] == ["1", "2", "3", "4", "5"]
    fast = ranking[1]
    seed0, seed1 = CNN_P_STAR, log_interpolated(300, 0.12, 1000, 0.02)
    assert fast["P*"] == fmt_p(log_interpolated(300, 0.16, 1000, 0.035))  # the curve of the seed mean
    spread = f"{fmt_p(min(seed0, seed1))} - {fmt_p(max(seed0, seed1))} (2/2 seeds crossed)"
    assert fast["P* over seeds (min - max)"] == spread
    assert fast["P grid"] == "100..1000 (3 P)" and fast["test error at P_max"] == "0.0350 (P=1000)"
    assert fast["S_out at P_max"] == "0.3000" and fast["mark"] == "reported"
    assert ranking[0]["P*"] == "<= 100" and ranking[0]["P* over seeds (min - max)"] == ""  # one seed: no spread
    never = ranking[3]
    assert never["P*"] == "> 1000" and never["P* over seeds (min - max)"] == "none crossed (2 seeds)"
    curves = board(summary)["curves"]
    assert curves["fast"]["seeds"]["per_seed"] == [
        {"seed": 0, "P_star": pytest.approx(seed0)},
        {"seed": 1, "P_star": pytest.approx(seed1)},
    ]
    assert curves["one P"]["p_star_kind"] == "no curve"
    assert {r["model"] for r in board(summary)["rows"]} >= {"one P"}
    md = (tmp_path / "out" / DEMO.name / "leaderboard.md").read_text()
    assert md.index("| 1 | early |") < md.index("| 2 | fast |") < md.index("### At each P")


def test_one_name_with_other_settings_makes_its_own_curve(no_laws_plot, tmp_path):
    root = tmp_path / "r"
    write_curve(root, "net", {0: {100: 0.5, 300: 0.05}})
    write_curve(root, "net-m", {0: {100: 0.5, 300: 0.2}}, momentum=0.5)
    for path in (root / "net-m").rglob("*.json"):  # the same name, another momentum
        obj = json.loads(path.read_text())
        obj["model"]["name"] = "net"
        path.write_text(json.dumps(obj))
    plain = make_results(DEMO, 1000, test_error=0.01, name="net", seed=1)
    plain["model"]["norm"] = "fan_in"  # written out: the same setting as absent (the default)
    write(root, "net/seed1/P1000.json", plain)
    curves = board(build_leaderboard(root, tmp_path / "out"))["curves"]
    assert set(curves) == {"net [momentum=0.9]", "net [momentum=0.5]"}
    assert [p for p, _ in curves["net [momentum=0.9]"]["curve"]] == [100, 300, 1000]


def test_tasks_are_ranked_apart_and_checked(no_laws_plot, tmp_path):
    root = tmp_path / "r"
    write_curve(root, "a", {0: {100: 0.5, 300: 0.05}})
    for P, err in ((100, 0.5), (300, 0.2)):
        obj = make_results(DEMO, P, test_error=err, name="a", task={"name": "last", "context": 4})
        write(root, f"last/P{P}.json", obj)
    # a name is the task with its default options, as absent
    write(root, "a/named.json", make_results(DEMO, 1000, test_error=0.01, name="a", task="class"))
    bad = make_results(DEMO, 100, name="a")
    bad["task"] = {"name": "last", "context": DEMO.d + 1}
    write(root, "bad/context.json", bad)
    unknown = make_results(DEMO, 100, name="a")
    unknown["task"] = "bogus"
    write(root, "bad/unknown.json", unknown)
    summary = build_leaderboard(root, tmp_path / "out")
    reasons = _reasons(summary, root)
    assert set(reasons) == {"bad/context.json", "bad/unknown.json"}
    assert "context=17" in reasons["bad/context.json"] and "schema" in reasons["bad/unknown.json"]
    tasks = summary["configs"][DEMO.name]["tasks"]
    assert set(tasks) == {"class", "last context=4"}
    assert [p for p, _ in tasks["class"]["curves"]["a"]["curve"]] == [100, 300, 1000]
    assert tasks["last context=4"]["ranking"][0]["P*"] == "> 300"
    md = (tmp_path / "out" / DEMO.name / "leaderboard.md").read_text()
    assert "## Task: class" in md and "## Task: last context=4" in md
    assert (tmp_path / "out" / DEMO.name / "test_error_vs_P_last_context_4.png").is_file()
    pngs = {Path(f).name for f in summary["files"]}
    assert "sensitivity_a.png" in pngs and "sensitivity_a_last_context_4.png" not in pngs  # no S, D for last


def test_p_star_on_the_excess_error_over_the_bayes_optimal_limit(no_laws_plot, tmp_path):
    root = tmp_path / "r"
    for P, err in ((100, 0.6), (300, 0.35), (1000, 0.25)):
        obj = make_results(DEMO, P, test_error=err, name="noisy")
        obj["task"] = {"name": "class", "noise": 0.1}
        write(root, f"noisy/P{P}.json", obj)
    without = board(build_leaderboard(root, tmp_path / "plain"), task="class noise=0.1")
    assert without["limit"] is None and without["ranking"][0]["P*"] == "> 1000"  # 10 % is never reached
    write(tmp_path / "opt", "optimal_noisy.json", optimal_file(DEMO, noise=0.1, expected=0.2))
    write(tmp_path / "opt", "small.json", optimal_file(DEMO, noise=0.1, expected=0.5, rows=10))  # fewer rows: not kept
    write(tmp_path / "opt", "bad.json", optimal_file(DEMO, expected=1.5))
    write(tmp_path / "opt", "other.json", {"config": DEMO.name})  # not an optimal file
    write(tmp_path / "opt", "last.json", optimal_file(DEMO, "last", expected=0.75))  # no results of last
    result = CliRunner().invoke(
        main, ["leaderboard", str(root), "--out", str(tmp_path / "out"), "--optimal", str(tmp_path / "opt")]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "leaderboard.json").read_text())
    unused = {Path(r["path"]).name: r["reason"] for r in summary["unused_optimal"]}  # said, not silently dropped
    assert unused == {
        "last.json": f"last on {DEMO.name}: no accepted results of this config and task",
        "small.json": f"class noise=0.1 on {DEMO.name}: superseded by {tmp_path / 'opt' / 'optimal_noisy.json'} "
        "(1000 rows)",
    }
    assert f"NOT USED {tmp_path / 'opt' / 'last.json'}: Bayes-optimal file of last on" in result.output
    assert "## Bayes-optimal files not used (no limit row) (2)" in (tmp_path / "out" / "index.md").read_text()
    task = board(summary, task="class noise=0.1")
    assert task["limit"]["expected_error"] == 0.2 and task["limit"]["rows"] == 1000
    limit, noisy = task["ranking"]
    assert limit["rank"] == "limit" and limit["test error at P_max"] == "0.2000 (empirical 0.2100)"
    # excess error 0.15 at P=300, 0.05 at P=1000: 10 % crossed half-way in log P
    assert noisy["P*"] == fmt_p(math.sqrt(300 * 1000))
    assert task["curves"]["noisy"]["threshold"] == pytest.approx(0.3)
    reasons = {Path(r["path"]).name: r["reason"] for r in summary["rejected"]}
    assert set(reasons) == {"bad.json"} and "expected_error=1.5" in reasons["bad.json"]
    assert [Path(p).name for p in summary["ignored"]] == ["other.json"]
    md = (tmp_path / "out" / DEMO.name / "leaderboard.md").read_text()
    assert "| limit | Bayes-optimal (exact BP) |" in md and "minus the Bayes-optimal 0.2000" in md
    # found among the inputs just the same
    write(root, "optimal.json", optimal_file(DEMO, noise=0.1, expected=0.2))
    again = board(build_leaderboard(root, tmp_path / "found"), task="class noise=0.1")
    assert again["ranking"][1]["P*"] == noisy["P*"]


def test_a_missing_optimal_path_is_refused_before_anything_is_written(tmp_path):
    root = tmp_path / "r"
    write(root, "a.json", make_results(DEMO, 100))
    with pytest.raises(ValueError, match="invalid parameter optimal=.*nothing"):
        build_leaderboard(root, tmp_path / "out", optimal=[tmp_path / "nothing"])
    assert not (tmp_path / "out").exists()


def test_docstring_examples_run():
    from srhm_datasets.evaluation import board_entries, board_optimal, board_pstar

    for module in (board_entries, board_optimal, board_pstar):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_a_run_of_another_task_is_ranked_under_its_task(no_laws_plot, tmp_path):
    # srhm train records the task in training.task (format.md §12.2): the board ranks it there, not under class.
    results = make_results(DEMO, 100, test_error=0.3, evaluation=False)
    results["training"].update(task="last", context=4, noise=0.0)
    write(tmp_path / "r", "a.json", results)
    summary = build_leaderboard(tmp_path / "r", tmp_path / "board")
    assert list(summary["configs"][DEMO.name]["tasks"]) == ["last context=4"]


@pytest.mark.parametrize("expected", [0.75, 0.65])  # threshold 0.85, 0.75: at or above chance 1 - 1/v = 0.75
def test_p_star_is_undefined_where_a_constant_predictor_crosses_the_threshold(no_laws_plot, tmp_path, expected):
    """On demo, last is at chance for exact BP (``srhm optimal demo --task last``: 0.75); with its limit the
    threshold 0.10 + e_opt is at or above chance 1 - 1/v: no model is ranked by P*, and the page says why."""
    root = tmp_path / "r"
    for name, errors in (("tf", (0.80, 0.751)), ("chance", (0.74, 0.74))):
        for P, err in zip((100, 200), errors):
            obj = make_results(DEMO, P, test_error=err, name=name, task="last", evaluation=False)
            write(root, f"{name}/P{P}.json", obj)
    write(root, "optimal.json", optimal_file(DEMO, "last", expected=expected, empirical=0.744))
    summary = build_leaderboard(root, tmp_path / "out")
    task = board(summary, task="last")
    assert [(r["rank"], r["model"], r["P*"]) for r in task["ranking"]] == [
        ("limit", "Bayes-optimal (exact BP)", ""),
        ("-", "chance", "undefined"),
        ("-", "tf", "undefined"),
    ]
    assert task["p_star_rule"] == {"threshold": pytest.approx(expected + 0.1), "chance": 0.75, "defined": False}
    assert {c["p_star_kind"] for c in task["curves"].values()} == {"undefined"}
    assert {r["P*"] for r in task["rows"]} == {"undefined"}
    md = (tmp_path / "out" / DEMO.name / "leaderboard.md").read_text()
    assert "P* is undefined for this task" in md and "at or above the chance error 0.7500" in md
    write(root, "optimal.json", optimal_file(DEMO, "last", expected=0.6, empirical=0.6))  # 0.70 < 0.75
    task = board(build_leaderboard(root, tmp_path / "below"), task="last")
    assert task["p_star_rule"]["defined"] and [r["rank"] for r in task["ranking"]] == ["limit", "1", "2"]


def factory_run(P, test_error, factory, sha="a" * 64, name="build", width=None):
    """A ``srhm train --factory`` run's results: ``model.arch`` custom, the factory, its source's SHA-256."""
    obj = make_results(DEMO, P, "cnn", test_error, name=name, lr=0.001, evaluation=False)
    obj["model"].update(arch="custom", width=width, depth=None, factory=factory, source_sha256=sha)
    validate_results(obj)
    return obj


def test_models_of_other_factories_or_sources_are_other_curves(no_laws_plot, tmp_path):
    """Two factories whose functions share a name are two models, as is one factory whose source changed; a
    model without a width is never labelled with the protocol's default width."""
    root = tmp_path / "r"
    for P, err in ((100, 0.5), (300, 0.05)):
        write(root, f"mine/P{P}.json", factory_run(P, err, "mymodels:build"))
        write(root, f"other/P{P}.json", factory_run(P, min(1.0, err + 0.3), "other2:build"))
        write(root, f"edited/P{P}.json", factory_run(P, min(1.0, err + 0.1), "mymodels:build", sha="b" * 64))
    write(root, "wide/P300.json", factory_run(300, 0.2, "mymodels:build", width=32))
    curves = board(build_leaderboard(root, tmp_path / "out"))["curves"]
    assert set(curves) == {
        "build [width=none, factory=mymodels:build, source_sha256=aaaaaaaaaaaa]",
        "build [width=none, factory=mymodels:build, source_sha256=bbbbbbbbbbbb]",
        "build [width=none, factory=other2:build, source_sha256=aaaaaaaaaaaa]",
        "build [width=32, factory=mymodels:build, source_sha256=aaaaaaaaaaaa]",
    }
    assert all(len(c["curve"]) == 2 for name, c in curves.items() if "width=none" in name)
    assert not any("512" in name for name in curves)


def test_p_star_has_one_format_in_every_table(no_laws_plot, tmp_path):
    """A P* of thousands reads as an integer (three significant digits) in the ranking, the spread over seeds,
    the single-P tables and the index: never 757 in one place and 1.64e+03 in another."""
    root = tmp_path / "r"
    for arch in ("cnn", "lcn"):
        for seed, late in ((0, 0.05), (1, 0.02)):
            for P, err in ((100, 0.7), (1000, 0.2), (10000, late)):
                write(root, f"{arch}/{seed}/P{P}.json", make_results(DEMO, P, arch, err, seed=seed))
    summary = build_leaderboard(root, tmp_path / "out")
    texts = [r["P*"] for r in board(summary)["ranking"] + board(summary)["rows"]]
    texts += board(summary)["ranking"][0]["P* over seeds (min - max)"].split(" (")[0].split(" - ")
    index = [line for line in (tmp_path / "out" / "index.md").read_text().splitlines() if line.startswith("| cnn |")]
    texts.append(index[0].split(" | ")[4])
    assert all(re.fullmatch(r"\d+", t) and int(t) >= 1000 for t in texts), texts
    assert board(summary)["ranking"][0]["P*"] == fmt_p(log_interpolated(1000, 0.2, 10000, 0.035))


def test_the_threshold_reads_as_an_absolute_difference_on_every_page(no_laws_plot, tmp_path):
    """The P* threshold is the Bayes-optimal error plus 0.10 (absolute), never "10 % above" it (a relative
    reading): in the Markdown and HTML of a section with P* defined and of one with P* undefined."""
    root = tmp_path / "r"
    for task, errors in (({"name": "class", "noise": 0.1}, (0.6, 0.25)), ("last", (0.8, 0.76))):
        for P, err in zip((100, 300), errors):
            folder = task if isinstance(task, str) else "noisy"
            write(root, f"{folder}/P{P}.json", make_results(DEMO, P, test_error=err, name="net", task=task))
    write(root, "opt/noisy.json", optimal_file(DEMO, noise=0.1, expected=0.2))
    write(root, "opt/last.json", optimal_file(DEMO, "last", expected=0.75, empirical=0.75))
    build_leaderboard(root, tmp_path / "out")
    for page in ("leaderboard.md", "leaderboard.html"):
        text = (tmp_path / "out" / DEMO.name / page).read_text()
        assert not re.search(r"\b10\s?%", text), page
        assert "falls to 0.10, i.e. its test error to 0.3000" in text, page
        assert "its threshold 0.8500, the Bayes-optimal error plus 0.10 (absolute)" in text, page


def test_the_laws_figure_is_shown_only_with_a_class_curve_that_has_a_law(tmp_path):
    """The paper's laws are of CNN and LCN on the class task: a board of other tasks (or other networks) has no
    pstar_laws.png and its index and pages neither show nor link one."""
    root = tmp_path / "r"
    for P, err in ((100, 0.6), (300, 0.05)):
        write(root, f"last/P{P}.json", make_results(DEMO, P, test_error=err, task={"name": "last", "context": 4}))
        write(root, f"tf/P{P}.json", make_results(DEMO, P, "transformer", err))
    summary = build_leaderboard(root, tmp_path / "out")
    assert not (tmp_path / "out" / "pstar_laws.png").exists()
    assert not any(f.endswith("pstar_laws.png") for f in summary["files"])
    for page in ("index.md", "index.html", f"{DEMO.name}/leaderboard.md", f"{DEMO.name}/leaderboard.html"):
        text = (tmp_path / "out" / page).read_text()
        assert "pstar_laws" not in text and "paper's laws" not in text, page
