"""Tasks on the rows of a split (format.md §15): inputs, targets, evidence, determinism."""

import dataclasses
import doctest
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srhm_datasets import SRHMConfig, generate, sampler, tasks
from srhm_datasets.catalog import CATALOG
from srhm_datasets.tasks import (
    IGNORE_INDEX,
    TASKS,
    Task,
    add_noise,
    apply_task,
    make_task,
    mask_id,
    unobserved_id,
)

from .strategies import small_configs

DEMO = CATALOG["demo"]  # v = 4, d = 16, sparsity A with s0 = 1
RHM = SRHMConfig(L=2, s=2, s0=0, v=5, nc=3, m=2, sparsity="A", seed=3)  # d = 4, every position informative
SPARSE_B = SRHMConfig(L=2, s=3, s0=1, v=6, nc=3, m=3, sparsity="B", seed=4)


def rows(cfg, n=200, split="test", start=0):
    n = min(n, cfg.split_sizes()[split] - start)
    return generate(cfg, split, start, start + n), start


def test_docstring_examples_run():
    for module in (tasks, sampler):
        assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(task="regress"), "task='regress': must satisfy one of ('class', 'last', 'mlm', 'next')"),
        (dict(task="mlm", mask_rate=0.0), "mask_rate=0.0: must satisfy a real number in (0, 1]"),
        (dict(task="mlm", mask_rate=1.5), "mask_rate=1.5"),
        (dict(task="mlm", mask_rate=float("nan")), "mask_rate=nan"),
        (dict(task="mlm", mask_rate=True), "mask_rate=True"),
        (dict(task="last", mask_rate=0.2), "mask_rate=0.2: must satisfy None unless task='mlm'"),
        (dict(task="last", context=0), "context=0: must satisfy 1 <= context <= 16"),
        (dict(task="last", context=17), "context=17"),
        (dict(task="last", context=2.0), "context=2.0: must satisfy an int"),
        (dict(task="mlm", context=2), "context=2: must satisfy None unless task='last'"),
        (dict(noise=1.0), "noise=1.0: must satisfy a real number in [0, 1)"),
        (dict(noise=-0.1), "noise=-0.1"),
        (dict(noise="0.1"), "noise='0.1'"),
        (dict(key=-1), "key=-1"),
        (dict(task=Task("mlm", mask_rate=0.5), noise=0.2), "task=Task("),
    ],
)
def test_invalid_parameters_name_value_and_bound(kwargs, message):
    task = kwargs.pop("task", "class")
    with pytest.raises(ValueError, match=r"invalid parameter " + re.escape(message)):
        make_task(DEMO, task, **kwargs)


def test_invalid_rows_and_batches():
    batch, _ = rows(DEMO, 5)
    size = DEMO.split_sizes()["test"]
    with pytest.raises(ValueError, match="invalid parameter rows="):
        apply_task(DEMO, "class", batch, "test", size - 4)  # rows size-4 .. size: past the split
    with pytest.raises(ValueError, match=r"invalid parameter rows.shape=\(4,\)"):
        apply_task(DEMO, "class", batch, "test", np.arange(4))
    with pytest.raises(ValueError, match="invalid parameter max\\(rows\\)"):
        apply_task(DEMO, "class", batch, "test", np.arange(size - 4, size + 1))
    with pytest.raises(ValueError, match="invalid parameter split="):
        apply_task(DEMO, "class", batch, "valid", 0)
    with pytest.raises(ValueError, match="invalid parameter (max\\()?batch\\["):
        apply_task(RHM, "class", batch, "test", 0)  # rows of another config
    with pytest.raises(ValueError, match="a dict with the column 'label'"):
        apply_task(DEMO, "class", {"tokens": batch["tokens"]}, "test", 0)
    apply_task(DEMO, "mlm", {"tokens": batch["tokens"]}, "test", 0)  # the label is needed by class only
    train_end = DEMO.data_space_size - DEMO.split_offset("train")
    beyond = generate(dataclasses.replace(DEMO, n_train=train_end), "train", train_end - 2, train_end)
    apply_task(DEMO, "mlm", beyond, "train", train_end - 2)  # train runs to the end of the data space


def test_class_is_the_rows_themselves():
    batch, start = rows(DEMO)
    tb = apply_task(DEMO, "class", batch, "test", start)
    assert tb.inputs.dtype == batch["tokens"].dtype and np.array_equal(tb.inputs, batch["tokens"])
    assert tb.targets.dtype == np.int64 and np.array_equal(tb.targets, batch["label"])
    assert np.array_equal(tb.evidence, batch["tokens"]) and not tb.scored.any() and not tb.causal
    assert tb.noise == 0.0


@pytest.mark.parametrize("cfg", [DEMO, RHM, SPARSE_B], ids=["demo", "rhm", "sparseB"])
@pytest.mark.parametrize("context", [None, 1, 3])
def test_last_masks_the_last_informative_position(cfg, context):
    batch, start = rows(cfg)
    tokens = batch["tokens"]
    tb = apply_task(cfg, make_task(cfg, "last", context=context), batch, "test", start)
    v, d = cfg.v, cfg.d
    t = d if context is None else context
    assert tb.inputs.shape == (len(tokens), d) and tb.targets.shape == (len(tokens),)
    for row, inputs, target, scored in zip(tokens, tb.inputs, tb.targets, tb.scored):
        j = max(i for i in range(d) if row[i] != v)  # brute force: the last informative position
        assert target == row[j] and scored.tolist() == [i == j for i in range(d)]
        for i in range(d):
            expected = mask_id(v) if i == j else row[i] if j - t < i else unobserved_id(v)
            assert inputs[i] == expected, (i, j)
    assert np.array_equal(tb.evidence, tb.inputs)
    if cfg.s0 == 0:  # the RHM: j = d - 1, the window is Cagnetta's last t tokens
        assert (tb.scored[:, -1]).all()
        assert (tb.inputs[:, : d - t] == unobserved_id(v)).all() and (tb.inputs[:, d - t : -1] < v).all()


@pytest.mark.parametrize("cfg", [DEMO, SPARSE_B], ids=["demo", "sparseB"])
def test_mlm_masks_informative_positions_at_rate_p(cfg):
    batch, start = rows(cfg, 2000)
    tokens = batch["tokens"]
    informative = tokens != cfg.v
    tb = apply_task(cfg, make_task(cfg, "mlm", mask_rate=0.3), batch, "test", start)
    masked = tb.inputs == mask_id(cfg.v)
    assert np.array_equal(masked, tb.scored) and not (masked & ~informative).any()
    assert np.array_equal(tb.inputs[~masked], tokens[~masked])
    assert np.array_equal(tb.targets[masked], tokens[masked]) and (tb.targets[~masked] == IGNORE_INDEX).all()
    rate = masked.sum() / informative.sum()
    assert abs(rate - 0.3) < 4 * np.sqrt(0.3 * 0.7 / informative.sum())
    lower = apply_task(cfg, make_task(cfg, "mlm", mask_rate=0.1), batch, "test", start).scored
    assert not (lower & ~masked).any() and lower.sum() < masked.sum()  # masks are nested in p
    everything = apply_task(cfg, make_task(cfg, "mlm", mask_rate=1.0), batch, "test", start).scored
    assert np.array_equal(everything, informative)


def test_mlm_rows_without_a_masked_position_score_nothing():
    batch, start = rows(DEMO, 500)
    tb = apply_task(DEMO, make_task(DEMO, "mlm", mask_rate=0.05), batch, "test", start)
    empty = ~tb.scored.any(axis=1)
    assert 0 < empty.sum() < len(empty)  # 4 informative positions: (0.95)**4 of the rows
    assert (tb.targets[empty] == IGNORE_INDEX).all()
    assert np.array_equal(tb.inputs[empty], batch["tokens"][empty])


@pytest.mark.parametrize("noise", [0.0, 0.4])
def test_next_shifts_by_one(noise):
    batch, start = rows(SPARSE_B)
    tokens = batch["tokens"]
    tb = apply_task(SPARSE_B, make_task(SPARSE_B, "next", noise=noise), batch, "test", start)
    noisy = add_noise(SPARSE_B, tokens, "test", np.arange(start, start + len(tokens)), noise, 0)
    d = SPARSE_B.d
    assert tb.inputs.shape == tb.targets.shape == (len(tokens), d - 1) and tb.causal
    assert np.array_equal(tb.inputs, noisy[:, :-1]) and np.array_equal(tb.targets, tokens[:, 1:])
    assert (tb.targets == SPARSE_B.v).any()  # blanks are targets too
    assert np.array_equal(tb.evidence[:, :-1], noisy[:, :-1])
    assert (tb.evidence[:, -1] == unobserved_id(SPARSE_B.v)).all()
    assert not tb.scored[:, 0].any() and tb.scored[:, 1:].all()


def test_noise_is_the_symmetric_channel():
    cfg = SRHMConfig(L=2, s=2, s0=1, v=3, nc=3, m=3, sparsity="A", seed=5)
    batch, start = rows(cfg, 4000)
    tokens = batch["tokens"]
    informative = tokens != cfg.v
    index = np.arange(start, start + len(tokens))
    noisy = add_noise(cfg, tokens, "test", index, 0.6, 0)
    changed = noisy != tokens
    assert not (changed & ~informative).any() and (noisy[informative] < cfg.v).all()
    n = informative.sum()
    assert abs(changed.sum() / n - 0.6) < 4 * np.sqrt(0.24 / n)
    shift = (noisy[changed].astype(int) - tokens[changed]) % cfg.v  # 1 or 2, each half the time
    assert set(shift.tolist()) == {1, 2} and abs((shift == 1).mean() - 0.5) < 4 * np.sqrt(0.25 / changed.sum())
    lower = add_noise(cfg, tokens, "test", index, 0.2, 0) != tokens
    assert not (lower & ~changed).any()  # noise sets are nested in eps
    for name in ("class", "last", "mlm"):  # the same noisy tokens under every task; clean targets
        tb = apply_task(cfg, make_task(cfg, name, noise=0.6), batch, "test", start)
        hidden = tb.inputs >= mask_id(cfg.v)
        assert np.array_equal(tb.inputs[~hidden], noisy[~hidden]) and tb.noise == 0.6
    noisy_class = apply_task(cfg, make_task(cfg, "class", noise=0.6), batch, "test", start)
    assert np.array_equal(noisy_class.targets, batch["label"])
    other_key = add_noise(cfg, tokens, "test", index, 0.6, 1) != tokens
    assert not np.array_equal(other_key, changed)


def test_draws_depend_on_split_row_and_key():
    h = tasks.draws(DEMO, "test", np.arange(4), "mask", 0)
    assert len({int(x) for x in h.ravel()}) == h.size
    assert not np.array_equal(h, tasks.draws(DEMO, "probe", np.arange(4), "mask", 0))
    assert not np.array_equal(h, tasks.draws(DEMO, "test", np.arange(4), "noise", 0))
    assert not np.array_equal(h, tasks.draws(DEMO, "test", np.arange(4), "mask", 1))
    offset = DEMO.split_offset("probe")  # the global index: row i of probe is row offset + i of the space
    probe = tasks.draws(DEMO, "probe", np.arange(2), "mask", 0)
    assert np.array_equal(probe, tasks.draws(DEMO, "test", np.arange(offset, offset + 2), "mask", 0))


def same(a, b):
    return all(
        np.array_equal(getattr(a, f), getattr(b, f)) and getattr(a, f).dtype == getattr(b, f).dtype
        for f in ("inputs", "targets", "evidence", "scored")
    )


def concat(parts):
    fields = ("inputs", "targets", "evidence", "scored")
    joined = {f: np.concatenate([getattr(p, f) for p in parts]) for f in fields}
    return tasks.TaskBatch(**joined, noise=parts[0].noise, causal=parts[0].causal)


@settings(max_examples=40)
@given(
    cfg=small_configs(L=st.integers(1, 2)),
    name=st.sampled_from(TASKS),
    noise=st.sampled_from([0.0, 0.3]),
    cuts=st.lists(st.integers(0, 40), max_size=3),
    key=st.integers(0, 3),
    data=st.data(),
)
def test_any_chunking_gives_the_same_result(cfg, name, noise, cuts, key, data):
    n = min(40, cfg.split_sizes()["train"])
    context = data.draw(st.integers(1, cfg.d)) if name == "last" else None
    task = make_task(cfg, name, context=context, noise=noise, key=key)
    batch = generate(cfg, "train", 0, n)
    whole = apply_task(cfg, task, batch, "train", 0)
    bounds = sorted({0, n, *(min(c, n) for c in cuts)})
    parts = [
        apply_task(cfg, task, {c: a[lo:hi] for c, a in batch.items()}, "train", lo)
        for lo, hi in zip(bounds, bounds[1:])
    ]
    if parts:
        assert same(whole, concat(parts))
    order = np.array(data.draw(st.permutations(range(n))), dtype=np.int64)  # any rows in any order
    shuffled = apply_task(cfg, task, {c: a[order] for c, a in batch.items()}, "train", order)
    one_by_one = [apply_task(cfg, task, {c: a[i : i + 1] for c, a in batch.items()}, "train", i) for i in order]
    if n:
        assert same(shuffled, concat(one_by_one))
