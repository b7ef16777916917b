"""Tasks through the torch adapters (format.md §7, §15): every task x encoding, numpy path = torch path."""

import doctest

import datasets
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.catalog import CATALOG
from srhm_datasets.tasks import IGNORE_INDEX, TASKS, apply_task, make_task, mask_id, unobserved_id
from srhm_datasets.torch import ENCODINGS, SRHMDataset, SRHMStream, TorchGenerator, encode
from srhm_datasets.torch_data.encoding import torch_tokens, whiten_absent
from srhm_datasets.torch_data.tasks import input_channels, task_tensors, torch_apply_task

from .strategies import small_configs

CFG = CATALOG["demo"]  # v = 4, d = 16
START, STOP = 5, 5 + 300
PARAMS = {"class": dict(noise=0.2), "last": dict(context=5, noise=0.1), "mlm": dict(mask_rate=0.4), "next": {}}


def test_docstring_examples_run():
    from srhm_datasets.torch_data import encoding, tasks

    for module in (tasks, encoding):
        assert doctest.testmod(module).failed == 0


def task_of(name, cfg=CFG):
    return make_task(cfg, name, **PARAMS[name])


def adapter_params(name):
    return {"task": name, **PARAMS[name]}


def expected(name, start=START, stop=STOP, split="train", cfg=CFG):
    """The numpy path: apply_task on generate's rows, as the adapters' tensors."""
    task = task_of(name, cfg)
    return task_tensors(task, apply_task(cfg, task, generate(cfg, split, start, stop), split, start))


def cat(batches):
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k].cpu(), b[k].cpu()), k


@pytest.mark.parametrize("name", TASKS)
# numpy rows, or the TorchGenerator's rows and the torch task (on CUDA too where the machine has it)
@pytest.mark.parametrize("device", [None, "cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_stream_batches_are_the_numpy_task(name, device):
    stream = SRHMStream(CFG, "train", START, STOP, batch_size=64, device=device, **adapter_params(name))
    got = cat(list(stream))
    assert_same(got, expected(name))
    x_key = "tokens" if name == "class" else "inputs"
    width = CFG.d - 1 if name == "next" else CFG.d
    assert got[x_key].dtype == torch.uint8 and got[x_key].shape == (STOP - START, width)
    assert int(got[x_key].max()) <= (unobserved_id(CFG.v) if name in ("last", "mlm") else CFG.v)


@pytest.mark.parametrize("name", TASKS)
def test_dataset_batches_and_items_are_the_numpy_task(name):
    rows = generate(CFG, "train", 0, STOP)
    ds = SRHMDataset(datasets.Dataset.from_dict(rows), CFG, **adapter_params(name))
    assert_same(ds.get_batch(np.arange(START, STOP)), expected(name))
    shuffled = datasets.Dataset.from_dict(rows).shuffle(seed=1)  # draws follow the split's row, not the order
    order = shuffled._indices.column(0).to_numpy().astype(np.int64)  # the split's row of each item
    got = SRHMDataset(shuffled, CFG, **adapter_params(name)).get_batch(np.arange(STOP))
    whole = expected(name, 0, STOP)
    assert_same(got, {k: t[torch.from_numpy(order)] for k, t in whole.items()})
    x, y = ds[START]
    x_key, y_key = ("tokens", "label") if name == "class" else ("inputs", "targets")
    assert torch.equal(x, encode(whole[x_key][START], CFG.v, "whiten", channels=ds.channels))
    if name in ("class", "last"):
        assert isinstance(y, int) and y == int(whole[y_key][START])
    else:
        assert torch.equal(y, whole[y_key][START])


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_task_and_encoding(name, encoding):
    stream = SRHMStream(CFG, "test", 0, 64, encoding=encoding, batch_size=32, **adapter_params(name))
    batch = next(iter(stream))
    x, y = stream.to_device(batch, "cpu")
    channels = CFG.v + 2 if name in ("last", "mlm") else CFG.v
    width = CFG.d - 1 if name == "next" else CFG.d
    assert stream.channels == channels == input_channels(CFG.v, stream.task)
    if encoding == "tokens":
        assert x.dtype == torch.int64 and x.shape == (32, width)
    else:
        assert x.dtype == torch.float32 and x.shape == (32, channels, width)
    shape = {"class": (32,), "last": (32,), "mlm": (32, CFG.d), "next": (32, CFG.d - 1)}[name]
    assert y.dtype == torch.int64 and y.shape == shape
    scored = y[y != IGNORE_INDEX]
    assert scored.numel() and int(scored.min()) >= 0 and int(scored.max()) <= max(CFG.nc - 1, CFG.v)
    items = list(SRHMStream(CFG, "test", 0, 32, encoding=encoding, chunk_size=8, **adapter_params(name)))
    assert torch.equal(torch.stack([item[0] for item in items]), x)  # item mode: the same inputs
    targets = [item[1] for item in items]
    assert torch.equal(torch.stack(targets) if torch.is_tensor(targets[0]) else torch.tensor(targets), y)
    again = stream.to_device(next(iter(stream)), "cpu")  # deterministic: a second pass is the same
    assert torch.equal(again[0], x) and torch.equal(again[1], y)


def test_mask_and_unobserved_have_their_own_channels():
    v = CFG.v
    codes = torch.tensor([[0, v, mask_id(v), unobserved_id(v)]])
    absent = whiten_absent(v)
    for kind, off in (("onehot", 0.0), ("whiten", absent)):
        x = encode(codes, v, kind, channels=v + 2)[0]
        expect = torch.full((v + 2, 4), off, dtype=torch.float32)
        expect[0, 0] = expect[v, 2] = expect[v + 1, 3] = 1.0  # blank: no channel
        assert torch.equal(x, expect)
        assert torch.equal(x[:v, :2], encode(codes[:, :2], v, kind)[0])  # a token column as in class, plus two absent
    with pytest.raises(ValueError, match=r"invalid parameter max\(tokens\)=6: must satisfy <= v = 4"):
        encode(codes, v, "onehot")  # task codes need channels = v + 2
    with pytest.raises(ValueError, match="invalid parameter channels=5"):
        encode(codes, v, "onehot", channels=v + 1)


def test_class_default_is_today_bit_for_bit():
    rows = generate(CFG, "train", START, STOP)
    for kwargs in ({}, {"task": "class", "task_key": 7}):
        for device in (None, "cpu"):
            batches = list(SRHMStream(CFG, "train", START, STOP, batch_size=100, device=device, **kwargs))
            got = cat(batches)
            assert set(got) == {"tokens", "label"}
            assert torch.equal(got["tokens"], torch_tokens(rows["tokens"])) and got["tokens"].dtype == torch.uint8
            assert torch.equal(got["label"], torch.from_numpy(rows["label"]))
        ds = SRHMDataset(datasets.Dataset.from_dict(generate(CFG, "train", 0, STOP)), CFG, encoding="onehot", **kwargs)
        x, y = ds[START]
        assert torch.equal(x, encode(torch.from_numpy(rows["tokens"][0]), CFG.v, "onehot")) and y == rows["label"][0]
        assert ds.channels == CFG.v


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
def test_workers_give_the_same_task_batches():
    stream = SRHMStream(CFG, "train", START, STOP, batch_size=50, task="mlm", noise=0.3, task_key=9)
    alone = cat(list(stream))
    assert_same(cat(list(DataLoader(stream, batch_size=None, num_workers=2))), alone)
    assert not torch.equal(
        alone["inputs"],
        cat(list(SRHMStream(CFG, "train", START, STOP, batch_size=50, task="mlm", noise=0.3)))["inputs"],
    )


def test_a_resumed_stream_keeps_its_task():
    stream = SRHMStream(CFG, "train", START, STOP, batch_size=50, task="mlm", mask_rate=0.3)
    state = stream.state_dict(100)
    resumed = SRHMStream(CFG, "train", 0, STOP, batch_size=50, task="mlm", mask_rate=0.3)
    resumed.load_state_dict(state)
    assert_same(cat(list(resumed)), cat(list(stream)[2:]))
    with pytest.raises(ValueError, match=r"invalid parameter state\['task'\]=\{'name': 'mlm'"):
        SRHMStream(CFG, "train", 0, STOP, batch_size=50, task="mlm").load_state_dict(state)


def test_invalid_task_parameters_are_refused_by_the_adapters():
    with pytest.raises(ValueError, match="invalid parameter task='bert'"):
        SRHMStream(CFG, task="bert")
    with pytest.raises(ValueError, match="invalid parameter mask_rate=0"):
        SRHMStream(CFG, task="mlm", mask_rate=0)
    with pytest.raises(ValueError, match="invalid parameter task_key=-1"):
        SRHMStream(CFG, task="mlm", task_key=-1)
    with pytest.raises(ValueError, match="invalid parameter context=2: must satisfy None unless task='last'"):
        SRHMDataset(datasets.Dataset.from_dict(generate(CFG, "test", 0, 4)), CFG, context=2)
    gen = TorchGenerator(CFG, "cpu")
    rows = gen.rows("test", 0, 4)
    with pytest.raises(ValueError, match="invalid parameter rows="):
        torch_apply_task(gen, task_of("mlm"), rows, "test", CFG.split_sizes()["test"] - 3)
    with pytest.raises(ValueError, match=r"invalid parameter rows.shape=\(3,\)"):
        torch_apply_task(gen, task_of("mlm"), rows, "test", torch.arange(3))
    with pytest.raises(ValueError, match=r"invalid parameter max\(rows\)"):
        torch_apply_task(gen, task_of("mlm"), rows, "test", np.arange(10**9, 10**9 + 4))


@settings(max_examples=30)
@given(
    cfg=small_configs(L=st.integers(1, 2)),
    name=st.sampled_from(TASKS),
    noise=st.sampled_from([0.0, 0.5]),
    key=st.integers(0, 2**64 - 1),
    data=st.data(),
)
def test_torch_task_is_the_numpy_task(cfg, name, noise, key, data):
    n = min(30, cfg.split_sizes()["train"])
    context = data.draw(st.integers(1, cfg.d)) if name == "last" else None
    mask_rate = data.draw(st.sampled_from([0.15, 0.5, 1.0])) if name == "mlm" else None
    task = make_task(cfg, name, context=context, mask_rate=mask_rate, noise=noise, key=key)
    gen = TorchGenerator(cfg, "cpu")
    rows = data.draw(st.lists(st.integers(0, n - 1), max_size=n)) if n else []
    index = np.array(rows, dtype=np.int64)
    batch = {k: t[torch.from_numpy(index)] for k, t in gen.rows("train", 0, n).items()}
    got = torch_apply_task(gen, task, batch, "train", torch.from_numpy(index))
    numpy_rows = {k: a[index] for k, a in generate(cfg, "train", 0, n).items()}
    assert_same(got, task_tensors(task, apply_task(cfg, task, numpy_rows, "train", index)))


def test_wide_vocabulary_codes_are_int32_on_both_paths():
    cfg = SRHMConfig(L=2, s=2, s0=1, v=254, nc=3, m=2, sparsity="B", seed=0)  # v + 2 = 256 needs 16 bits
    for name in TASKS:
        task = task_of(name, cfg)
        want = task_tensors(task, apply_task(cfg, task, generate(cfg, "test", 0, 50), "test", 0))
        gen = TorchGenerator(cfg, "cpu")
        assert_same(torch_apply_task(gen, task, gen.rows("test", 0, 50), "test", 0), want)
        codes = want["tokens" if name == "class" else "inputs"]
        assert codes.dtype == (torch.int32 if name in ("last", "mlm") else torch.uint8)
