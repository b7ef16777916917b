"""SRHMDataset: map-style over a release folder (format.md §8 layout) equals generate() rows."""

from contextlib import nullcontext

import datasets
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.catalog import CATALOG
from srhm_datasets.torch import SRHMBatchSampler, SRHMDataset, encode

from .release_helpers import TINY_NAME, write_rules
from .torch_helpers import assert_one_sgd_step_learns

CFG = CATALOG["demo"]  # v=4, d=16, N=3; train 12708 rows, test 3276
N_TRAIN = 3000  # rows written to the release fixture (a prefix of train, enough for the tests)


def features(cfg: SRHMConfig) -> datasets.Features:
    """format.md §4 features."""
    ints = lambda n, dt: datasets.List(datasets.Value(dt), length=n)  # noqa: E731
    small = "uint8"
    return datasets.Features(
        {
            "tokens": ints(cfg.d, "uint8" if cfg.v < 255 else "uint16"),
            "label": datasets.ClassLabel(num_classes=cfg.nc),
            "latents": ints(cfg.num_nodes, small),
            "synonyms": ints(cfg.num_nodes, small),
            "placements": ints(cfg.num_nodes, small),
        }
    )


def write_release(root, cfg: SRHMConfig, name: str, splits: dict) -> None:
    """A format.md §8 folder: README YAML configs + <name>/<split>-0000k-of-0000n.parquet."""
    lines = ["---", "configs:", f"- config_name: {name}", "  data_files:"]
    written = {}
    for split, (stop, shards) in splits.items():
        rows = written[split] = generate(cfg, split, 0, stop)
        bounds = np.linspace(0, stop, shards + 1).astype(int)
        for k in range(shards):
            part = {c: a[bounds[k] : bounds[k + 1]] for c, a in rows.items()}
            path = root / name / f"{split}-{k:05d}-of-{shards:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            datasets.Dataset.from_dict(part, features=features(cfg)).to_parquet(str(path))
        lines += [f"  - split: {split}", f"    path: {name}/{split}-*.parquet"]
    (root / "README.md").write_text("\n".join(lines + ["---", "", "test release"]) + "\n")
    write_rules(root, cfg, name, written)  # load_split checks the rows against it


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    write_release(root, CFG, "demo", {"train": (N_TRAIN, 2), "test": (500, 1)})
    return root


@pytest.fixture(scope="module")
def train(release, tmp_path_factory):
    cache = tmp_path_factory.mktemp("hf_cache")
    return SRHMDataset(release, "demo", split="train", load_kwargs={"cache_dir": str(cache)}, return_latents=True)


def test_release_rows_equal_generate(train):
    ref = generate(CFG, "train", 0, N_TRAIN)
    assert len(train) == N_TRAIN and train.v == 4 and train.d == 16 and train.classes == ["0", "1", "2", "3"]
    assert train.hf_dataset.features["tokens"] == datasets.List(datasets.Value("uint8"), length=16)
    batch = train.get_batch(np.arange(N_TRAIN))
    assert batch["tokens"].dtype == torch.uint8 and batch["tokens"].shape == (N_TRAIN, 16)
    assert np.array_equal(batch["tokens"].numpy(), ref["tokens"])
    assert np.array_equal(batch["label"].numpy(), ref["label"])
    for k in ("latents", "synonyms", "placements"):
        assert np.array_equal(batch[k].numpy(), ref[k])
    assert np.array_equal(train.targets, ref["label"])
    for i in (0, 1, 1499, 1500, N_TRAIN - 1, -1):  # both shards
        x, label, extras = train[i]
        assert x.shape == (4, 16) and x.dtype == torch.float32
        assert torch.equal(x, encode(torch.from_numpy(ref["tokens"][i]), 4, "whiten"))
        assert label == ref["label"][i]
        assert extras["synonyms"].tolist() == ref["synonyms"][i].tolist()


def test_test_split_and_config_spellings(release, tmp_path):
    ref = generate(CFG, "test", 0, 500)
    for config in ("demo", CFG):  # a catalog name, or the config object
        ds = SRHMDataset(release, config, split="test", encoding="onehot", load_kwargs={"cache_dir": str(tmp_path)})
        assert len(ds) == 500
        assert np.array_equal(ds.get_batch(slice(0, 500))["tokens"].numpy(), ref["tokens"])
        assert torch.equal(ds[7][0], encode(torch.from_numpy(ref["tokens"][7:8]), 4, "onehot")[0])


def test_prefix_subset_and_errors(train):
    ref = generate(CFG, "train", 0, 100)
    hf = datasets.Dataset.from_dict(generate(CFG, "train", 0, 300), features=features(CFG))
    sub = SRHMDataset(hf, CFG, stop=100, encoding="tokens")
    assert len(sub) == 100
    assert torch.equal(sub[99][0], torch.from_numpy(ref["tokens"][99]).long())
    with pytest.raises(IndexError, match="100"):
        sub[100]
    with pytest.raises(IndexError, match="100"):
        sub.get_batch([5, 100])
    with pytest.raises(ValueError, match=r"stop=301.*<= 300"):
        SRHMDataset(hf, CFG, stop=301)
    with pytest.raises(ValueError, match=r"config=None"):
        SRHMDataset(hf)  # a bare Dataset has no config name
    with pytest.raises(ValueError, match=r"d=36 but tokens have length 16"):
        SRHMDataset(hf, "fig1")
    with pytest.raises(ValueError, match="invalid parameter encoding='x'"):
        SRHMDataset(hf, CFG, encoding="x")


def test_selected_and_shuffled_datasets():
    """A Dataset with an indices mapping (select / shuffle) is read through it."""
    rows = generate(CFG, "train", 0, 200)
    hf = datasets.Dataset.from_dict(rows, features=features(CFG)).shuffle(seed=0).select(range(50))
    ds = SRHMDataset(hf, CFG)
    assert np.array_equal(ds.get_batch(np.arange(50))["tokens"].numpy(), np.array(hf["tokens"], dtype=np.uint8))
    assert ds.targets.tolist() == hf["label"]


def test_batches_gathered_without_copying_the_columns(tmp_path):
    """A multi-chunk memory-mapped split: batches and items come straight from the Arrow
    buffers; no process holds a copy of the tokens (or latents) column, rows still equal generate()."""
    import tracemalloc

    import pyarrow as pa

    n = 12000
    write_release(tmp_path / "rel", CFG, "demo", {"train": (n, 3)})
    ds = SRHMDataset(tmp_path / "rel", "demo", load_kwargs={"cache_dir": str(tmp_path / "cache")}, return_latents=True)
    assert ds.hf_dataset.data.column("tokens").num_chunks > 3  # HF writes its cache in small record batches
    ref = generate(CFG, "train", 0, n)
    idx = np.random.default_rng(0).permutation(n)[:64]  # a small batch: its own output stays small
    arrow_before = pa.total_allocated_bytes()
    tracemalloc.start()
    try:
        batch = ds.get_batch(idx)
        item = ds[n - 1]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    token_bytes = n * CFG.d  # 192 kB: a copy of the column would show up in either count
    assert pa.total_allocated_bytes() - arrow_before < token_bytes // 8
    assert peak < token_bytes // 4, peak
    for k in COLS:
        assert np.array_equal(batch[k].numpy(), ref[k][idx]), k
    assert (
        torch.equal(item[0], encode(torch.from_numpy(ref["tokens"][-1]), 4, "whiten")) and item[1] == ref["label"][-1]
    )
    assert np.array_equal(ds.targets, ref["label"])
    assert np.array_equal(ds.get_batch(slice(None))["tokens"].numpy(), ref["tokens"])


def test_item_path_with_workers(train):
    """Per-item DataLoader with 2 workers and the default collate gives generate()'s rows."""
    ref = generate(CFG, "train", 0, 400)
    sub = SRHMDataset(train.hf_dataset, CFG, stop=400)
    loader = DataLoader(sub, batch_size=64, num_workers=2, shuffle=False)
    xs, ys = zip(*loader)
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (400, 4, 16)
    assert torch.equal(x, encode(torch.from_numpy(ref["tokens"]), 4, "whiten"))
    assert torch.equal(y, torch.from_numpy(ref["label"]))


def test_fast_path_with_workers_and_pinning(train):
    """loader(): whole uint8 batches from 2 workers (pin_memory asked), shuffled, all rows once."""
    ref = generate(CFG, "train", 0, N_TRAIN)
    expect_warning = pytest.warns(UserWarning, match="pin_memory") if not torch.cuda.is_available() else nullcontext()
    with expect_warning:
        loader = train.loader(batch_size=256, shuffle=True, seed=1, num_workers=2, pin_memory=True)
        batches = list(loader)
    assert len(batches) == len(loader) == 12
    assert all(b["tokens"].dtype == torch.uint8 for b in batches)
    got = np.concatenate([torch.cat([b[k].reshape(len(b[k]), -1) for b in batches]).numpy() for k in COLS], axis=1)
    want = np.concatenate([ref[k].reshape(N_TRAIN, -1).astype(np.int64) for k in COLS], axis=1)
    assert not np.array_equal(got, want)  # shuffled
    assert np.array_equal(got[np.lexsort(got.T)], want[np.lexsort(want.T)])  # each row exactly once
    x, y, extras = train.to_device(batches[0], device="cpu")
    assert x.shape == (256, 4, 16) and torch.equal(x, encode(batches[0]["tokens"], 4, "whiten"))
    assert set(extras) == {"latents", "synonyms", "placements"}


COLS = ("tokens", "label", "latents", "synonyms", "placements")


@pytest.mark.parametrize("world_size", [2, 3])
def test_distributed_samplers(train, world_size):
    """DistributedSampler (per item and wrapped in the fast path) and SRHMBatchSampler
    cover every row, with equal steps per rank."""
    n = 100
    sub = SRHMDataset(train.hf_dataset, CFG, stop=n, return_latents=True)
    per_rank_fast, per_rank_item, per_rank_own = [], [], []
    for rank in range(world_size):
        sampler = DistributedSampler(sub, num_replicas=world_size, rank=rank, shuffle=True, seed=3)
        fast = list(sub.loader(batch_size=16, sampler=sampler))
        per_rank_fast.append(torch.cat([b["label"] for b in fast]).numpy())
        items = DataLoader(sub, batch_size=16, sampler=sampler)
        per_rank_item.append(torch.cat([b[1] for b in items]).numpy())
        own = sub.batch_sampler(16, shuffle=True, seed=3, rank=rank, world_size=world_size)
        per_rank_own.append(np.concatenate(list(own)))
        rows_per_rank = -(-n // world_size)
        assert len(own) == -(-rows_per_rank // 16)
    for fast, item in zip(per_rank_fast, per_rank_item):
        assert np.array_equal(fast, item)  # same sampler, same rows, either path
    assert len({len(r) for r in per_rank_own}) == 1  # equal steps per rank (padded)
    covered = np.concatenate(per_rank_own)
    assert set(covered.tolist()) == set(range(n)) and len(covered) == -(-n // world_size) * world_size


def test_batch_sampler_epochs_and_errors():
    s = SRHMBatchSampler(10, 4, shuffle=True, seed=0)
    first = np.concatenate(list(s))
    s.set_epoch(1)
    second = np.concatenate(list(s))
    assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(10))
    assert not np.array_equal(first, second)
    assert [len(b) for b in SRHMBatchSampler(10, 4, drop_last=True)] == [4, 4]
    with pytest.raises(ValueError, match=r"batch_size=0"):
        SRHMBatchSampler(10, 0)
    with pytest.raises(ValueError, match=r"rank=3.*world_size = 3"):
        SRHMBatchSampler(10, 2, rank=3, world_size=3)


@pytest.mark.parametrize("fast", [False, True])
def test_one_training_step(train, fast):
    sub = SRHMDataset(train.hf_dataset, CFG, stop=512)
    if fast:
        x, y = sub.to_device(next(iter(sub.loader(batch_size=128, shuffle=True))))
    else:
        x, y = next(iter(DataLoader(sub, batch_size=128, shuffle=True)))
    assert x.shape == (128, CFG.v, CFG.d)
    assert_one_sgd_step_learns(x.cpu(), y.cpu())


def test_release_builder_folder(tmp_path):
    """Integration with ``srhm build``'s writer: every split of a built release loads."""
    build = pytest.importorskip("srhm_datasets.release.build")
    build.build_release([CFG], tmp_path / "out", progress=False)
    for split in ("train", "test", "probe"):
        ds = SRHMDataset(tmp_path / "out", "demo", split=split, load_kwargs={"cache_dir": str(tmp_path / "cache")})
        ref = generate(CFG, split)
        assert len(ds) == len(ref["label"])
        assert np.array_equal(ds.get_batch(slice(None))["tokens"].numpy(), ref["tokens"])
        assert np.array_equal(ds.targets, ref["label"])
    # the probe split's HF config is "<name>_probe": config=None infers the config from it
    probe = datasets.load_dataset(str(tmp_path / "out"), "demo_probe", split="probe", cache_dir=str(tmp_path / "cache"))
    assert SRHMDataset(probe, split="probe").config == CFG


def test_get_batch_refuses_float_indices(tiny_release, tiny_release_cache):
    ds = SRHMDataset(tiny_release, TINY_NAME, "test", load_kwargs={"cache_dir": tiny_release_cache})
    with pytest.raises(ValueError, match=r"invalid parameter indices=\[0\.5, 1\.7\]: must satisfy ints"):
        ds.get_batch([0.5, 1.7])  # not rows 0 and 1
    with pytest.raises(ValueError, match="invalid parameter indices="):
        ds.get_batch(np.array([True, False]))
    assert ds.get_batch(torch.tensor([2, 0]))["label"].tolist() == ds.targets[[2, 0]].tolist()
