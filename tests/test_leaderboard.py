"""``srhm leaderboard``: validation, rejection reasons, ranking, Markdown/HTML, plots."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from srhm_datasets import SRHMConfig, sample_rules
from srhm_datasets.catalog import resolve
from srhm_datasets.cli import main
from srhm_datasets.evaluation import paper_points
from srhm_datasets.evaluation.kinds import undefined_kinds
from srhm_datasets.evaluation.leaderboard import build_leaderboard, p_star
from srhm_datasets.hashing import rules_hash
from srhm_datasets.protocol import default_lr, law_x
from srhm_datasets.results import validate_results

DEMO = resolve("demo")  # L = 2
NO_SYNONYMS = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=1)
#: P* of the curve (100, 0.5), (300, 0.2), (1000, 0.05): 10 % crossed between 300 and 1000, linear in log P.
CNN_P_STAR = math.exp(math.log(300) + (0.2 - 0.1) / (0.2 - 0.05) * math.log(1000 / 300))


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
    **training_fields,
) -> dict:
    """A schema-valid results object, as ``srhm train`` (protocol defaults, lr = default_lr) + ``srhm evaluate``
    write it.

    training=False: an outside submission as ``srhm evaluate --factory`` writes it (no
    training log, width/depth null, the factory named, no checkpoint).
    """
    undefined = undefined_kinds(cfg)
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
    if evaluation:
        obj["evaluation"] = {
            "test_error": test_error,
            "num_test": cfg.split_sizes()["test"],
            "probe": {"source": "generator", "num_points": cfg.split_sizes()["probe"]},
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


@pytest.fixture
def no_laws_plot(monkeypatch):
    """Skip the P*-vs-laws figure (the slowest plot) in tests about something else."""
    from srhm_datasets.evaluation import leaderboard

    monkeypatch.setattr(leaderboard, "plot_pstar_laws", lambda path, ours: None)


def _reasons(summary, root):
    """Rejected file (path relative to root) -> reason."""
    return {Path(r["path"]).relative_to(root).as_posix(): r["reason"] for r in summary["rejected"]}


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory):
    """A RESULTS_DIR of accepted, rejected and ignored files (read-only: the tests write elsewhere)."""
    root = tmp_path_factory.mktemp("example") / "results"
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
    return root


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

    rows = summary["configs"][DEMO.name]["rows"]
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
    assert by_model["cnn w64"]["P*"] == f"{CNN_P_STAR:.3g}"
    assert by_model["fcn w64"]["P*"] == "> 1000"
    m1_rows = summary["configs"][NO_SYNONYMS.name]["rows"]
    assert len(m1_rows) == 1 and m1_rows[0]["S_out"] == "undefined" and m1_rows[0]["D_out"] != "undefined"

    # HTML parses, has the table rows, and every image it shows exists as a PNG
    for config in (DEMO.name, NO_SYNONYMS.name):
        page = out / config / "leaderboard.html"
        parser = Collector()
        parser.feed(page.read_text())
        parser.close()
        assert parser.tags[:2] == ["html", "head"] and "table" in parser.tags
        n_rows = len(summary["configs"][config]["rows"])
        assert len(parser.rows) == n_rows + 1  # header + one per accepted file
        assert parser.imgs
        for src in parser.imgs:
            png = (page.parent / src).resolve()
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", src
        md = (out / config / "leaderboard.md").read_text()
        assert md.count("\n| ") == n_rows + 1
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
    rows = summary["configs"][DEMO.name]["rows"]
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
    # spot checks against notes/paper.md tables A and B
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
    assert sorted(r["file"] for r in summary["configs"][DEMO.name]["rows"]) == [
        "ok/a.json",
        "ok/b.json",
        "ok/c.json",
        "ok/train_num_test.json",
    ]


def test_controls_and_variants_get_their_own_curves(no_laws_plot, tmp_path):
    root = tmp_path / "r"
    for P, err in ((100, 0.5), (300, 0.2), (1000, 0.05)):
        write(root, f"cnn/P{P}.json", make_results(DEMO, P, test_error=err))
        write(root, f"shuffled/P{P}.json", make_results(DEMO, P, test_error=0.74, shuffle_labels=True))
        write(root, f"lr/P{P}.json", make_results(DEMO, P, test_error=min(1.0, err + 0.3), lr=0.05))
    write(root, "onehot/P300.json", make_results(DEMO, 300, test_error=0.01, encoding="onehot"))
    summary = build_leaderboard(root, tmp_path / "out")
    assert summary["rejected"] == []
    curves = summary["configs"][DEMO.name]["curves"]
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
    rows = {(r["P"], r["model"]): r for r in summary["configs"][DEMO.name]["rows"]}
    assert rows[("1000", "cnn w64 (shuffled labels)")]["P*"] == ""
    assert rows[("1000", "cnn w64")]["P*"] == f"{CNN_P_STAR:.3g}"
    laws = [row for row in (tmp_path / "out" / "index.md").read_text().splitlines() if row.startswith("| cnn |")]
    assert len(laws) == 1 and "| cnn w64 |" in laws[0]  # P* against the laws: real runs only, never the control


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
