"""The public API (format.md §9): one name per thing, configs from names, and the errors a user meets first."""

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import srhm_datasets as srhm
import srhm_datasets.release
import srhm_datasets.torch
from srhm_datasets.catalog import CATALOG
from srhm_datasets.cli import main
from srhm_datasets.config import ParameterTypeError

PUBLIC = [
    "SRHMConfig",
    "__version__",
    "apply_task",
    "generate",
    "get_config",
    "list_configs",
    "load_rules",
    "load_split",
    "make_task",
    "perturb",
    "sample_rules",
]
TORCH_PUBLIC = [
    "ENCODINGS",
    "SRHMBatchSampler",
    "SRHMDataset",
    "SRHMStream",
    "TorchGenerator",
    "default_device",
    "encode",
    "input_channels",
    "to_device_batch",
    "torch_apply_task",
]
DEMO = dict(L=2, s=2, s0=1, v=4, nc=4, m=4)
ROWS = srhm.generate(srhm.get_config("demo"), "probe", 0, 2)


def test_the_public_names_are_the_decided_ones():
    assert sorted(srhm.__all__) == sorted(PUBLIC)
    assert all(hasattr(srhm, name) for name in PUBLIC)
    assert sorted(srhm_datasets.torch.__all__) == sorted(TORCH_PUBLIC)
    assert sorted(srhm_datasets.release.__all__) == ["build_release", "publish_release", "verify_release"]


def test_one_name_per_thing():
    from srhm_datasets.release.load import load_split
    from srhm_datasets.release.rules_file import load_rules

    assert srhm.load_split is load_split and srhm.load_rules is load_rules
    assert not hasattr(srhm_datasets.torch, "load_split")  # the torch side opens splits internally
    for name in ("load_split", "load_rules"):
        with pytest.raises(AttributeError):
            getattr(srhm_datasets.release, name)


def heavy_modules_after(code: str) -> str:
    """The heavy libraries imported by a fresh interpreter that runs ``code``, as printed text."""
    heavy = ("torch", "datasets", "pyarrow", "huggingface_hub")
    code += f"; import sys; print(sorted(m for m in {heavy} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_importing_the_package_imports_no_heavy_library():
    assert heavy_modules_after("import srhm_datasets as srhm; srhm.get_config('fig1'); srhm.list_configs()") == "[]"


# ---- get_config and list_configs ------------------------------------------------------------------
def test_get_config_takes_a_catalog_name_a_canonical_name_or_a_config():
    for name in ("demo", "fig1", "grid_L3_s0-6_v12", "sparseB_L2_s0-4_v6"):
        cfg = srhm.get_config(name)
        assert cfg is CATALOG[name] and srhm.get_config(cfg.name) == cfg and srhm.get_config(cfg) is cfg
    assert srhm.get_config("A_L2_s2_s0-1_v4_nc4_m4_seed7_train10") == srhm.SRHMConfig(**DEMO, seed=7, n_train=10)


def test_list_configs_is_the_catalog_in_order():
    names = srhm.list_configs()
    assert names == list(CATALOG) and names[:2] == ["demo", "fig1"] and len(set(names)) == len(names) == 129
    names.append("mine")  # a fresh list each call
    assert "mine" not in srhm.list_configs()


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("fig_1", "'fig1'"),
        ("Demo", "'demo'"),
        ("grid_L2_s0_1_v4", "'grid_L2_s0-1_v4'"),
        ("sparseb_L3_s0-4_v10", "'sparseB_L3_s0-4_v10'"),
    ],
)
def test_a_mistyped_config_name_gets_the_closest_catalog_names(typo, meant):
    with pytest.raises(ValueError, match=f"invalid parameter config='{typo}'") as err:
        srhm.get_config(typo)
    assert f"did you mean {meant}" in str(err.value) or f"did you mean {meant} or" in str(err.value)
    assert not isinstance(err.value, TypeError)


def test_a_name_far_from_every_config_gets_no_suggestion():
    with pytest.raises(ValueError) as err:
        srhm.get_config("xyzzy")
    assert "did you mean" not in str(err.value) and "srhm configs" in str(err.value)


def test_the_command_line_suggests_too():
    result = CliRunner().invoke(main, ["info", "fig_1"])
    assert result.exit_code == 2 and "did you mean 'fig1'?" in result.output


def test_a_mistyped_config_of_a_release_folder_gets_its_closest_names(tmp_path):
    from srhm_datasets.release import build_release

    cfg = srhm.SRHMConfig(**DEMO, n_train=8, n_test=4, n_probe=4)
    build_release([cfg], tmp_path / "r", progress=False)
    typo = cfg.name.replace("seed0", "sed0")
    with pytest.raises(ValueError, match=f"no such config in .*did you mean '{cfg.name}'"):
        srhm.load_split(tmp_path / "r", typo, "train")
    with pytest.raises(FileNotFoundError, match=f"did you mean '{cfg.name}'"):
        srhm.load_rules(tmp_path / "r", typo)


# ---- a wrong type is a TypeError, a wrong value a ValueError (format.md §1.4) ---------------------
@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: srhm.SRHMConfig(**{**DEMO, "L": "2"}), "L='2': must satisfy an int"),
        (lambda: srhm.SRHMConfig(**{**DEMO, "v": 4.0}), "v=4.0: must satisfy an int"),
        (lambda: srhm.SRHMConfig(**{**DEMO, "seed": None}), "seed=None"),
        (lambda: srhm.SRHMConfig(**{**DEMO, "n_train": True}), "n_train=True"),
        (lambda: srhm.SRHMConfig(**DEMO, sparsity=1), "sparsity=1"),
        (lambda: srhm.get_config(3), "config=3"),
        (lambda: srhm.generate("demo", "train", 0, 2), "cfg='demo'"),
        (lambda: srhm.generate(srhm.get_config("demo"), "train", 0.5, 2), "start=0.5"),
        (lambda: srhm.generate(srhm.get_config("demo"), ["train"], 0, 2), "split=['train']"),
        (lambda: srhm.sample_rules("demo"), "cfg='demo'"),
        (lambda: srhm.perturb(srhm.get_config("demo"), ROWS, kind=1, level=1), "kind=1"),
        (lambda: srhm.perturb(srhm.get_config("demo"), ROWS, "synonym", 1, force="yes"), "force='yes'"),
        (lambda: srhm.perturb(srhm.get_config("demo"), [ROWS], "synonym", 1), "batch=[{"),
        (lambda: srhm.load_rules(3, "demo"), "repo_or_dir=3"),
        (lambda: srhm.load_split("x", "demo", ["train"]), "split=['train']"),
    ],
)
def test_a_wrong_type_is_a_type_error_naming_the_parameter(call, fragment):
    with pytest.raises(TypeError) as err:
        call()
    assert isinstance(err.value, ParameterTypeError) and isinstance(err.value, ValueError)  # caught as either
    assert str(err.value).startswith("invalid parameter ") and fragment in str(err.value)


def _train_options(**change):
    from srhm_datasets.baselines.train import TrainOptions, resolve

    return resolve(TrainOptions(**{"config": srhm.get_config("demo"), "P": 10, **change}))


def _network(**change):
    from srhm_datasets.baselines.models import build_model

    return build_model(**{"arch": "cnn", "cfg": srhm.get_config("demo"), "width": 4, **change})


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: srhm_datasets.torch.SRHMStream("demo", start=1.0), "start=1.0"),
        (lambda: srhm_datasets.torch.SRHMStream("demo", stop="8"), "stop='8'"),
        (lambda: srhm_datasets.torch.SRHMStream("demo", batch_size=2.0), "batch_size=2.0"),
        (lambda: srhm_datasets.torch.SRHMStream("demo", even_ranks=1), "even_ranks=1"),
        (lambda: srhm_datasets.torch.SRHMStream("demo", rank=0, world_size=True), "world_size=True"),
        (lambda: srhm_datasets.torch.SRHMStream(3), "config=3"),
        (lambda: srhm_datasets.torch.SRHMBatchSampler(True, 4), "num_rows=True"),
        (lambda: srhm_datasets.torch.SRHMBatchSampler(10, "4"), "batch_size='4'"),
        (lambda: srhm_datasets.torch.TorchGenerator("demo", "cpu"), "cfg='demo'"),
        (lambda: srhm_datasets.torch.encode(ROWS["tokens"], 4.0), "v=4.0"),
        (lambda: _train_options(P=10.0), "P=10.0"),
        (lambda: _train_options(width="8"), "width='8'"),
        (lambda: _train_options(seed=True), "seed=True"),
        (lambda: _train_options(max_steps=1.5), "max_steps=1.5"),
        (lambda: _train_options(lr="0.1"), "lr='0.1'"),
        (lambda: _train_options(amp=1), "amp=1"),
        (lambda: _network(width=4.0), "width=4.0"),
        (lambda: _network(cfg="demo"), "cfg='demo'"),
    ],
)
def test_a_wrong_type_is_a_type_error_across_the_package(call, fragment):
    with pytest.raises(TypeError) as err:
        call()
    assert isinstance(err.value, ParameterTypeError) and fragment in str(err.value)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (
            lambda: srhm_datasets.torch.SRHMStream("demo", "test", start=5, stop=4),
            "start=5: must satisfy 0 <= start <= 4",
        ),
        (lambda: srhm_datasets.torch.SRHMStream("demo", batch_size=0), "batch_size=0"),
        (lambda: srhm_datasets.torch.SRHMStream("demo", rank=2, world_size=2), "rank=2"),
        (lambda: _train_options(P=0), "P=0"),
        (lambda: _train_options(max_steps=0), "max_steps=0"),
        (lambda: _network(width=0), "width=0"),
    ],
)
def test_a_value_out_of_bounds_stays_a_value_error(call, fragment):
    with pytest.raises(ValueError) as err:
        call()
    assert not isinstance(err.value, TypeError) and fragment in str(err.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda: srhm.SRHMConfig(**{**DEMO, "L": 0}),
        lambda: srhm.SRHMConfig(**{**DEMO, "L": np.int64(17)}),
        lambda: srhm.SRHMConfig(**DEMO, sparsity="C"),
        lambda: srhm.get_config("nope"),
        lambda: srhm.generate(srhm.get_config("demo"), "valid", 0, 2),
        lambda: srhm.generate(srhm.get_config("demo"), "train", 3, 2),
    ],
)
def test_a_wrong_value_of_the_right_type_is_a_value_error_only(call):
    with pytest.raises(ValueError) as err:
        call()
    assert not isinstance(err.value, TypeError)


# ---- srhm configs -----------------------------------------------------------------------------
def test_srhm_configs_lists_every_catalog_entry_with_its_sizes():
    result = CliRunner().invoke(main, ["configs"])
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == ["name", "L", "s", "s0", "v", "nc", "m", "sp", "seed", "d", "train", "test", "probe"]
    assert [row.split()[0] for row in rows] == srhm.list_configs()
    for row in rows:
        name, L, s, s0, v, nc, m, sparsity, seed, d, train, test, probe = row.split()
        cfg = srhm.get_config(name)
        assert [int(x) for x in (L, s, s0, v, nc, m, seed, d)] == [
            cfg.L, cfg.s, cfg.s0, cfg.v, cfg.nc, cfg.m, cfg.seed, cfg.d
        ]  # fmt: skip
        assert sparsity == cfg.sparsity
        assert {"train": int(train), "test": int(test), "probe": int(probe)} == cfg.split_sizes()


def test_srhm_configs_imports_no_heavy_library():
    code = (
        "from click.testing import CliRunner; from srhm_datasets.cli import main; "
        "assert CliRunner().invoke(main, ['configs']).exit_code == 0"
    )
    assert heavy_modules_after(code) == "[]"
