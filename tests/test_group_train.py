"""Group training (baselines/group.py, baselines/stacked.py): a member of a group is the single run.

Equivalence is checked in float64: the default dtype is float64 and ``train.py``'s ``encode`` is
patched to encode in it, so the single run and the group compute the same function; they
differ only by the rounding of batched vs single matrix products.
"""

import dataclasses

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from srhm_datasets.baselines.group import (
    BatchStream,
    GroupTrainer,
    check_group,
    default_group_size,
    plan_groups,
    train_group,
)
from srhm_datasets.baselines.models import build_model, count_parameters
from srhm_datasets.baselines.stacked import build_stacked
from srhm_datasets.baselines.train import TrainOptions, read_checkpoint, resolve, train
from srhm_datasets.catalog import get_config
from srhm_datasets.results import read_results, validate_results
from srhm_datasets.torch_data.encoding import encode

torch.set_num_threads(1)

DEMO = get_config("demo")
TINY = {"config": DEMO, "width": 16, "num_test": 200, "progress": False}
#: Fields of a run's results that depend on the clock or the group, not on the trajectory.
TIMING = ("wall_time_s", "samples_per_s", "group")


def _options(tmp_path, tag, **kw):
    return TrainOptions(**{**TINY, **kw}, out=str(tmp_path / f"{tag}-P{kw['P']}-s{kw.get('seed', 0)}"))


def assert_same_run(group_results, single_results, group_dir, single_dir):
    """Same trajectory (curves, stopping, checkpoint) up to rounding; the rest of the results identical."""
    a, b = group_results["training"], single_results["training"]
    assert a["curves"]["step"] == b["curves"]["step"]
    assert a["curves"]["test_error"] == b["curves"]["test_error"]
    assert a["curves"]["train_loss"] == pytest.approx(b["curves"]["train_loss"], rel=1e-6)  # a float32 loss in train.py
    assert (a["stop_reason"], a["steps"], a["best_step"]) == (b["stop_reason"], b["steps"], b["best_step"])
    assert a["run_id"][:16] == b["run_id"][:16] and a["run_id"] != b["run_id"]  # the same options, two runs
    own = TIMING + ("curves", "run_id")
    rest = lambda r: {**r, "training": {k: v for k, v in r["training"].items() if k not in own}}
    assert rest(group_results) == rest(single_results)
    ca, cb = read_checkpoint(group_dir), read_checkpoint(single_dir)
    assert (ca["run_id"], cb["run_id"]) == (a["run_id"], b["run_id"])
    meta = lambda c: {k: v for k, v in c.items() if k not in ("model_state", "run_id")}
    assert meta(ca) == meta(cb)
    for name, value in cb["model_state"].items():
        torch.testing.assert_close(ca["model_state"][name], value, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("arch", ["cnn", "lcn", "fcn"])
def test_member_of_a_group_follows_its_single_run(arch, tmp_path, float64):
    plan = [{"P": 60, "seed": 0}, {"P": 100, "seed": 5, "shuffle_labels": arch == "cnn"}, {"P": 37, "seed": 2}]
    common = {"arch": arch, "max_steps": 300, "eval_every": 100}
    grouped = train_group([_options(tmp_path, "group", **p, **common) for p in plan])
    for p, results in zip(plan, grouped):
        single = train(_options(tmp_path, "single", **p, **common))
        assert_same_run(
            results, single, tmp_path / f"group-P{p['P']}-s{p['seed']}", tmp_path / f"single-P{p['P']}-s{p['seed']}"
        )
        assert read_results(tmp_path / f"group-P{p['P']}-s{p['seed']}") == results


def test_stopped_members_are_frozen_then_dropped_and_match_their_single_runs(tmp_path, float64):
    plan = [
        {"P": 50, "seed": 1, "loss_threshold": 10.0},  # stops at its first evaluation (step 40): masked in the stack
        {"P": 70, "seed": 2, "max_steps": 120},  # stops at step 120: one member left, the stack is rebuilt
        {"P": 90, "seed": 3, "max_steps": 200},
    ]
    common = {"eval_every": 40, "max_steps": 200}
    options = [_options(tmp_path, "group", **{**common, **p}) for p in plan]
    trainer = GroupTrainer(options)
    at_stop, seen = {}, []
    finish, freeze_or_drop = trainer.finish, trainer.freeze_or_drop

    def finish_spy(m, reason):
        at_stop[m.index] = trainer.raw.member_state(trainer.slots.index(m))
        finish(m, reason)

    def freeze_spy():
        seen.append({m.index: trainer.raw.member_state(r) for r, m in enumerate(trainer.slots) if m.stopped})
        freeze_or_drop()

    trainer.finish, trainer.freeze_or_drop = finish_spy, freeze_spy
    results = trainer.run()
    assert [r["training"]["stop_reason"] for r in results] == ["loss_threshold", "max_steps", "max_steps"]
    assert [r["training"]["steps"] for r in results] == [40, 120, 200]
    later = [states[0] for states in seen[1:] if 0 in states]  # member 0 at steps 80 and 120, still stacked
    assert len(later) == 2
    for state in later:
        assert all(torch.equal(state[k], at_stop[0][k]) for k in state)  # frozen: not one bit changed
    assert trainer.raw.size == 1 and [m.index for m in trainer.slots] == [2]  # the stopped ones were dropped
    for p, opt, res in zip(plan, options, results):
        single = train(_options(tmp_path, "single", **{**common, **p}))
        assert_same_run(res, single, opt.out, tmp_path / f"single-P{p['P']}-s{p['seed']}")
        assert res["training"]["group"]["size"] == 3


def test_group_field_records_the_members_and_validates(tmp_path):
    results = train_group([TrainOptions(**TINY, P=P, seed=s, max_steps=20) for P, s in ((30, 4), (40, 9))])
    assert [r["training"]["group"] for r in results] == [
        {"size": 2, "index": g, "members": [{"P": 30, "seed": 4}, {"P": 40, "seed": 9}]} for g in (0, 1)
    ]
    assert results[0]["checkpoint"] is None and not list(tmp_path.iterdir())  # no out: nothing written
    broken = {**results[0], "training": {**results[0]["training"], "group": {"size": 2, "index": -1, "members": []}}}
    with pytest.raises(ValueError, match="training.group"):
        validate_results(broken)


def test_members_that_cannot_share_a_group_are_refused_before_any_work(tmp_path):
    base = TrainOptions(**TINY, P=30, max_steps=5)
    with pytest.raises(ValueError, match=r"options\[1\].width=32"):
        check_group([base, dataclasses.replace(base, width=32)])
    with pytest.raises(ValueError, match=r"options\[2\].lr"):
        check_group([base, base, dataclasses.replace(base, lr=0.5)])
    same = str(tmp_path / "run")
    with pytest.raises(ValueError, match="invalid parameter out="):
        train_group([dataclasses.replace(base, out=same), dataclasses.replace(base, seed=1, out=same)])
    with pytest.raises(ValueError, match="invalid parameter options=.*non-empty"):
        train_group([])
    with pytest.raises(ValueError, match="P=0"):
        train_group([base, dataclasses.replace(base, P=0)])
    assert not (tmp_path / "run").exists()


def test_plan_groups_splits_by_shared_settings_and_size():
    opts = [TrainOptions(**TINY, P=P) for P in (20, 10, 30, 40)] + [TrainOptions(**{**TINY, "width": 8}, P=40)]
    assert plan_groups(opts, 2) == [[0, 2], [3], [1], [4]]  # P=10: batch size 10, not 4*nc = 16
    assert plan_groups(opts, 1) == [[0], [2], [3], [1], [4]]
    with pytest.raises(ValueError, match="group_size=0"):
        plan_groups(opts, 0)


def test_default_group_size_keeps_the_cpu_state_small():
    wide = resolve(TrainOptions(config=DEMO, P=100, device="cpu"))  # width 512: 1.06M scalars, 12.1 MiB of state
    assert default_group_size(wide) == 1
    assert default_group_size(dataclasses.replace(wide, width=256)) == 16  # 3.1 MiB a member
    assert default_group_size(dataclasses.replace(wide, width=256, config=get_config("fig1"))) == 13  # 4.7 MiB


@given(P=st.integers(1, 40), seed=st.integers(0, 2**31), sizes=st.lists(st.integers(0, 50), max_size=8))
def test_batch_stream_is_one_sequence_of_epoch_permutations(P, seed, sizes):
    stream = BatchStream(P, seed)
    taken = torch.cat([stream.take(0)] + [stream.take(n) for n in sizes])
    whole = BatchStream(P, seed).take(len(taken))
    assert torch.equal(taken, whole)  # how the stream is sliced does not change it
    for k in range(0, len(whole) - P + 1, P):  # each epoch is a permutation of range(P)
        assert sorted(whole[k : k + P].tolist()) == list(range(P))


@pytest.mark.parametrize("arch", ["cnn", "lcn", "fcn"])
@pytest.mark.parametrize("bias", [False, True])
def test_stacked_members_are_the_single_networks(arch, bias, float64):
    seeds = [3, 1, 7]
    stacked = build_stacked(arch, DEMO, seeds, width=8, bias=bias)
    x = encode(torch.randint(0, DEMO.v, (3, 5, DEMO.d)), DEMO.v, dtype=torch.float64)
    logits = stacked(x)
    assert logits.shape == (3, 5, DEMO.nc)
    for g, seed in enumerate(seeds):
        single = build_model(arch, DEMO, width=8, seed=seed, bias=bias)
        state = stacked.member_state(g)
        assert state.keys() == single.state_dict().keys()
        assert all(torch.equal(state[k], v) for k, v in single.state_dict().items())  # the same initialisation
        assert count_parameters(stacked.member(g)) == count_parameters(single)
        torch.testing.assert_close(logits[g], single(x[g]), rtol=1e-12, atol=1e-14)
    kept = stacked.select_(torch.tensor([2, 0]))
    assert kept.size == 2 and all(
        torch.equal(kept.member_state(0)[k], v)
        for k, v in build_model(arch, DEMO, width=8, seed=7, bias=bias).state_dict().items()
    )
    with pytest.raises(ValueError, match=r"expected \[G=2"):
        stacked(x)


def test_test_error_passes_are_bounded_in_bytes(tmp_path, monkeypatch):
    """The group's test error runs forward passes of at most FORWARD_BYTES of encoded input, same errors."""
    from srhm_datasets import protocol

    options = [_options(tmp_path, "group", P=50, seed=seed) for seed in (1, 2)]
    trainer = GroupTrainer(options)
    whole = trainer.test_errors([0, 1])
    rows, encode_rows = [], trainer._encode
    trainer._encode = lambda tokens: rows.append(len(tokens)) or encode_rows(tokens)
    monkeypatch.setattr(protocol, "FORWARD_BYTES", 30 * 4 * DEMO.v * DEMO.d)
    assert trainer.test_errors([0, 1]) == whole
    assert rows and max(rows) <= 30 and sum(rows) == TINY["num_test"]
