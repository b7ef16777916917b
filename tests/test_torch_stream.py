"""SRHMStream: on-the-fly rows, sharded over workers and ranks, each row exactly once."""

import dataclasses

import datasets
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.catalog import CATALOG
from srhm_datasets.torch import SRHMDataset, SRHMStream, encode

from .torch_helpers import as_rows, assert_one_sgd_step_learns

CFG = CATALOG["demo"]
pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
START, STOP = 37, 37 + 1000  # an unaligned range


def ref_rows(start=START, stop=STOP, cfg=CFG, split="train"):
    return as_rows(generate(cfg, split, start, stop))


def sorted_rows(rows: np.ndarray) -> np.ndarray:
    return rows[np.lexsort(rows.T[::-1])]


def test_rows_equal_published_split_and_map_style():
    stream = SRHMStream(CFG, "train", START, STOP, batch_size=128, return_latents=True)
    got = as_rows(list(stream))
    assert np.array_equal(got, ref_rows())  # in order, one process
    hf = datasets.Dataset.from_dict(generate(CFG, "train", 0, STOP))
    ds = SRHMDataset(hf, CFG, return_latents=True)
    assert np.array_equal(got, as_rows(ds.get_batch(np.arange(START, STOP))))
    items = list(SRHMStream(CFG, "test", 0, 50, encoding="onehot", chunk_size=16))
    test = generate(CFG, "test", 0, 50)
    assert torch.equal(torch.stack([x for x, _ in items]), encode(torch.from_numpy(test["tokens"]), 4, "onehot"))
    assert [y for _, y in items] == test["label"].tolist()


@pytest.mark.parametrize("num_workers", [0, 1, 2, 3])
def test_workers_batch_mode_exactly_once_same_order(num_workers):
    stream = SRHMStream(CFG, "train", START, STOP, batch_size=100, return_latents=True)
    batches = list(DataLoader(stream, batch_size=None, num_workers=num_workers))
    assert len(batches) == len(stream) == 10
    assert np.array_equal(as_rows(batches), ref_rows())  # exactly once, and in order whatever the workers


@pytest.mark.parametrize("num_workers", [2, 3])
def test_workers_item_mode(num_workers):
    stream = SRHMStream(CFG, "train", START, STOP, return_latents=True, chunk_size=64)
    loader = DataLoader(stream, batch_size=64, num_workers=num_workers)
    batches = [{"tokens": x, "label": y, **e} for x, y, e in loader]
    ref = generate(CFG, "train", START, STOP)
    x = torch.cat([b["tokens"] for b in batches])
    assert torch.equal(x, encode(torch.from_numpy(ref["tokens"]), 4, "whiten"))  # same order as 1 worker
    assert torch.equal(torch.cat([b["label"] for b in batches]), torch.from_numpy(ref["label"]))
    assert torch.equal(torch.cat([b["placements"] for b in batches]), torch.from_numpy(ref["placements"]).long())


@pytest.mark.parametrize("world_size", [2, 3])
def test_simulated_ranks_with_workers(world_size):
    per_rank = []
    for rank in range(world_size):
        stream = SRHMStream(
            CFG,
            "train",
            START,
            STOP,
            batch_size=96,
            return_latents=True,
            rank=rank,
            world_size=world_size,
            even_ranks=False,
        )
        alone = as_rows(list(stream))  # no workers
        with_workers = as_rows(list(DataLoader(stream, batch_size=None, num_workers=2)))
        assert np.array_equal(alone, with_workers)
        assert len(alone) == stream._rank_counts()[1]
        per_rank.append(alone)
    rows = np.concatenate(per_rank)
    assert len(rows) == STOP - START  # no duplicate ...
    assert np.array_equal(sorted_rows(rows), sorted_rows(ref_rows()))  # ... and no gap
    counts = [len(r) for r in per_rank]
    assert max(counts) - min(counts) <= 96


@pytest.mark.parametrize("world_size", [2, 3])
def test_even_ranks_equal_lengths_no_duplicates(world_size):
    """even_ranks=True (default): every rank the same rows and batches, no duplicate, only
    the last (stop - start) % world_size rows dropped; the same with 2 workers."""
    n = STOP - START
    per_rank, lengths = [], set()
    for rank in range(world_size):
        stream = SRHMStream(
            CFG, "train", START, STOP, batch_size=96, return_latents=True, rank=rank, world_size=world_size
        )
        batches = list(stream)
        assert len(batches) == len(stream) and stream._rank_counts()[1] == n // world_size
        lengths.add((len(batches), sum(len(b["label"]) for b in batches)))
        with_workers = list(DataLoader(stream, batch_size=None, num_workers=2))
        assert np.array_equal(as_rows(with_workers), as_rows(batches))
        per_rank.append(as_rows(batches))
    assert len(lengths) == 1  # equal batches and rows on every rank: DDP does not hang
    rows = np.concatenate(per_rank)
    kept = n - n % world_size
    assert np.array_equal(sorted_rows(rows), sorted_rows(ref_rows(START, START + kept)))  # no duplicate, no gap
    # 500 rows, batches of 32, 3 ranks -> 5 + a shorter 6th batch each, 2 rows dropped
    assert [len(SRHMStream(CFG, stop=500, batch_size=32, rank=r, world_size=3)) for r in range(3)] == [6, 6, 6]
    assert [
        len(SRHMStream(CFG, stop=500, batch_size=32, rank=r, world_size=3, even_ranks=False)) for r in range(3)
    ] == [6, 5, 5]
    item = SRHMStream(CFG, "test", 0, 50, chunk_size=8, rank=1, world_size=3, encoding="tokens")
    assert len(item) == len(list(item)) == 16
    # resuming keeps the layout
    full = SRHMStream(CFG, "train", START, STOP, batch_size=32, rank=1, world_size=world_size, return_latents=True)
    seen = list(full)
    resumed = SRHMStream(CFG, "train", 0, STOP, batch_size=32, rank=1, world_size=world_size, return_latents=True)
    resumed.load_state_dict(full.state_dict(2 * 32))
    assert np.array_equal(as_rows(list(resumed)), as_rows(seen[2:]))
    with pytest.raises(ValueError, match="even_ranks"):
        SRHMStream(CFG, even_ranks=None)


def test_torch_distributed_detected(monkeypatch):
    """With an initialised process group, rank / world size come from it (and reach workers)."""
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda group=None: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 3)
    stream = SRHMStream(CFG, "train", 0, 300, batch_size=10)
    assert stream.world == (1, 3)
    labels = [b["label"] for b in stream]
    ref = generate(CFG, "train", 0, 300)["label"]
    assert torch.equal(
        torch.cat(labels), torch.from_numpy(np.concatenate([ref[a : a + 10] for a in range(10, 300, 30)]))
    )


def test_endless_train_continues_past_published_size():
    cfg = dataclasses.replace(CFG, n_train=100)
    stream = SRHMStream(cfg, batch_size=500, return_latents=True)  # stop=None
    assert stream.endless and stream.stop == cfg.data_space_size - cfg.split_offset("train")
    rows = as_rows(next(iter(stream)))
    assert np.array_equal(rows[:100], ref_rows(0, 100, cfg))  # the published rows first
    others = np.concatenate([ref_rows(0, None, cfg, "test"), ref_rows(0, None, cfg, "probe")])
    everything = np.concatenate([rows, others])
    keys = everything[:, [CFG.d] + list(range(CFG.d + 1 + CFG.num_nodes, everything.shape[1]))]  # label, syn, plc
    assert len(np.unique(keys, axis=0)) == len(keys)  # new rows: no repeat, disjoint from test and probe
    whole = list(SRHMStream(cfg, "train", batch_size=4096))
    assert sum(len(b["label"]) for b in whole) == cfg.data_space_size - cfg.split_offset("train")  # ends with the space
    assert SRHMStream(cfg, "test").stop == cfg.split_sizes()["test"]


def test_resume_from_state():
    full = SRHMStream(CFG, "train", START, STOP, batch_size=50, rank=1, world_size=2, return_latents=True)
    seen = list(full)
    state = full.state_dict(rows_consumed=3 * 50)  # each rank took 3 batches
    assert state["start"] == START + 3 * 50 * 2
    resumed = SRHMStream(CFG, "train", 0, STOP, batch_size=50, rank=1, world_size=2, return_latents=True)
    resumed.load_state_dict(state)
    assert np.array_equal(as_rows(list(resumed)), as_rows(seen[3:]))
    assert full.state_dict(sum(len(b["label"]) for b in seen))["start"] == STOP  # all done
    with pytest.raises(ValueError, match=r"rows_consumed=7.*chunk_size=50"):
        full.state_dict(7)
    with pytest.raises(ValueError, match=r"state\['chunk_size'\]"):
        SRHMStream(CFG, "train", 0, STOP, batch_size=10).load_state_dict(state)


def test_lengths_and_errors():
    for R in (1, 2, 3):
        for rank in range(R):
            for even in (True, False):
                s = SRHMStream(CFG, "train", 5, 100, chunk_size=7, rank=rank, world_size=R, even_ranks=even)
                assert len(s) == sum(1 for _ in s)
    limit = CFG.split_sizes()["test"]
    with pytest.raises(ValueError, match=rf"stop={limit + 1}.*<= {limit}"):
        SRHMStream(CFG, "test", 0, limit + 1)
    with pytest.raises(ValueError, match=r"start=20.*stop = 10"):
        SRHMStream(CFG, "train", 20, 10)
    with pytest.raises(ValueError, match=r"split='val'"):
        SRHMStream(CFG, "val")
    with pytest.raises(ValueError, match=r"rank=2.*world_size = 2"):
        SRHMStream(CFG, rank=2, world_size=2)
    with pytest.raises(ValueError, match=r"batch_size=0"):
        SRHMStream(CFG, batch_size=0)
    with pytest.raises(ValueError, match=r"invalid parameter encoding='foo'"):
        SRHMStream(CFG, encoding="foo")


def test_big_space_endless_starts_anywhere():
    """A space beyond 2**64 (L=3, s=3): rows far past the published train are produced directly."""
    cfg = SRHMConfig(L=3, s=3, s0=2, v=10, nc=10, m=10, sparsity="A", seed=0)
    assert cfg.data_space_size > 2**64
    stream = SRHMStream(cfg, start=10**17, batch_size=8, encoding="onehot")
    batch = next(iter(stream))
    assert batch["tokens"].shape == (8, 729) and stream.stop == 2**62 - cfg.split_offset("train")
    x, y = stream.to_device(batch, device="cpu")
    assert x.shape == (8, 10, 729) and x.sum().item() == 8 * 27  # s**L = 27 informative positions
    again = next(iter(SRHMStream(cfg, start=10**17 + 4, stop=10**17 + 8, batch_size=4)))
    assert torch.equal(again["tokens"], batch["tokens"][4:])  # row i does not depend on the chunking


@pytest.mark.parametrize("batch_mode", [False, True])
def test_one_training_step(batch_mode):
    if batch_mode:
        stream = SRHMStream(CFG, batch_size=128)
        x, y = stream.to_device(next(iter(DataLoader(stream, batch_size=None))))
    else:
        x, y = next(iter(DataLoader(SRHMStream(CFG, chunk_size=128), batch_size=128)))
    assert x.shape == (128, CFG.v, CFG.d)
    assert_one_sgd_step_learns(x.cpu(), y.cpu())


@pytest.mark.parametrize("num_workers", [1, 2])
def test_load_state_dict_reaches_persistent_workers(num_workers):
    """Re-positioning a stream that already runs under persistent workers moves the workers' next pass
    (before: the workers kept their copy and repeated the whole range)."""
    stream = SRHMStream(CFG, "test", stop=128, batch_size=16)
    loader = DataLoader(stream, batch_size=None, num_workers=num_workers, persistent_workers=True)
    first = torch.cat([batch["label"] for batch in loader])
    stream.load_state_dict(stream.state_dict(64))
    second = torch.cat([batch["label"] for batch in loader])  # the same worker processes
    assert len(first) == 128 and torch.equal(second, first[64:])
    assert len(stream) == 4 and stream.start == 64
