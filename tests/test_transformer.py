"""The transformer reference network: shapes per task, causality, the adapters' batches, training, seeds,
its parameter count and sensitivities per block."""

from __future__ import annotations

import doctest

import pytest
import torch

from srhm_datasets import SRHMConfig
from srhm_datasets.baselines import transformer as tf
from srhm_datasets.baselines.models import count_parameters
from srhm_datasets.catalog import get_config
from srhm_datasets.evaluation.probes import generator_probe
from srhm_datasets.evaluation.sensitivity import compute_sensitivities, default_layers
from srhm_datasets.tasks import IGNORE_INDEX, TASKS, mask_id, unobserved_id
from srhm_datasets.torch import SRHMStream

DEMO = get_config("demo")  # v = nc = 4, d = 16
TINY = {"width": 16, "depth": 2, "heads": 2}
SHAPES = {  # task -> (input length, output shape after B)
    "class": (16, (4,)),
    "last": (16, (4,)),
    "mlm": (16, (16, 4)),
    "next": (15, (15, 5)),
}


def test_docstring_examples_run():
    assert doctest.testmod(tf, raise_on_error=True).attempted >= 4


@pytest.mark.parametrize("task", TASKS)
def test_output_shape_per_task(task):
    n, out = SHAPES[task]
    ids = torch.randint(0, DEMO.v + 1, (3, n))
    ids[:, 5] = mask_id(DEMO.v)  # one MASK per row, as `last` inputs have
    logits = tf.build_transformer(DEMO, task, **TINY)(ids)
    assert logits.shape == (3, *out) and logits.dtype == torch.float32


@pytest.mark.parametrize("task", ["mlm", "next"])
def test_next_is_causal_and_the_encoder_is_not(task):
    n = SHAPES[task][0]
    model = tf.build_transformer(DEMO, task, **TINY).eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, DEMO.v + 1, (4, n), generator=g)
    base = model(ids)
    for i in (0, 6, n - 2):
        changed = ids.clone()
        changed[:, i + 1 :] = (changed[:, i + 1 :] + 1) % (DEMO.v + 1)  # every input after i
        out = model(changed)
        before = torch.allclose(out[:, : i + 1], base[:, : i + 1], atol=1e-6)
        assert before == (task == "next")  # causal: positions 0..i do not see i+1..
        assert not torch.allclose(out[:, i + 1 :], base[:, i + 1 :], atol=1e-6)


def test_last_reads_the_mask_position():
    model = tf.build_transformer(DEMO, "last", **TINY).eval()
    ids = torch.full((2, DEMO.d), DEMO.v)
    ids[0, 3] = ids[1, 9] = mask_id(DEMO.v)
    ids[:, :2] = unobserved_id(DEMO.v)
    with torch.no_grad():
        out = model(ids)
        hidden = model.norm(model.blocks[1](model.blocks[0](model.embed(ids) + model.position)))
        assert torch.allclose(out[0], model.output(hidden[0, 3]), atol=1e-6)
        assert torch.allclose(out[1], model.output(hidden[1, 9]), atol=1e-6)


@pytest.mark.parametrize("task", TASKS)
def test_adapter_batches_train(task):
    """The adapters' token batches of every task feed the model and its loss; AdamW lowers the loss."""
    params = {"mask_rate": 0.5} if task == "mlm" else {}
    stream = SRHMStream(DEMO, "train", 0, 64, batch_size=64, encoding="tokens", task=task, **params)
    x, y = stream.to_device(next(iter(stream)), "cpu")
    assert x.dtype == torch.int64 and x.shape == (64, SHAPES[task][0])
    model = tf.build_transformer(DEMO, task, **TINY)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = tf.task_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_task_loss_averages_over_scored_targets():
    logits = torch.randn(2, 3, 5)
    targets = torch.tensor([[1, IGNORE_INDEX, 4], [IGNORE_INDEX, 0, IGNORE_INDEX]])
    scored = [(0, 0), (0, 2), (1, 1)]
    expected = sum(-torch.log_softmax(logits[b, i], -1)[targets[b, i]] for b, i in scored) / 3
    assert tf.task_loss(logits, targets).item() == pytest.approx(expected.item(), rel=1e-6)


def test_seed_determines_the_initialisation_and_leaves_the_global_rng():
    torch.manual_seed(7)
    before = torch.rand(1)
    torch.manual_seed(7)
    a = tf.build_transformer(DEMO, "class", **TINY, seed=3)
    assert torch.equal(torch.rand(1), before)  # the global generator was not advanced
    b = tf.build_transformer(DEMO, "class", **TINY, seed=3)
    c = tf.build_transformer(DEMO, "class", **TINY, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize(
    "cfg", [DEMO, SRHMConfig(L=3, s=2, s0=0, v=7, nc=3, m=2), SRHMConfig(L=1, s=3, s0=2, v=2, nc=2, m=1)]
)
@pytest.mark.parametrize("arch", [(8, 1, 1), (24, 3, 3)])
def test_num_parameters_is_the_count(task, cfg, arch):
    width, depth, mlp_ratio = arch
    heads = 2 if width % 2 == 0 else 1
    model = tf.build_transformer(cfg, task, width=width, depth=depth, heads=heads, mlp_ratio=mlp_ratio)
    assert tf.num_parameters(cfg, task, width, depth, mlp_ratio) == count_parameters(model)


def test_sensitivities_per_block():
    model = tf.build_transformer(DEMO, "class", **TINY)
    assert default_layers(model) == ["blocks.0", "blocks.1", "output"]
    probe = generator_probe(DEMO, num_points=40)
    table = compute_sensitivities(model, probe.tokens, probe.perturbed(), DEMO.v, encoding="tokens", device="cpu")
    assert table.layers == ["blocks.0", "blocks.1", "output"]
    for kind in ("synonym", "diffeo"):
        for layer in table.layers:
            values = table.values[kind][layer]
            assert len(values) == DEMO.L and all(0.0 < s < 10.0 for s in values)


@pytest.mark.parametrize(
    "arg, value, match",
    [
        ("task", "cls", "task='cls'"),
        ("width", 0, "width=0"),
        ("depth", 0, "depth=0"),
        ("heads", 3, "heads=3: must satisfy a divisor of width=16"),
        ("mlp_ratio", 0, "mlp_ratio=0"),
        ("dropout", 1.0, "dropout=1.0"),
    ],
)
def test_invalid_arguments_are_refused(arg, value, match):
    kwargs = {"task": "class", **TINY, arg: value}
    with pytest.raises(ValueError, match=match):
        tf.build_transformer(DEMO, kwargs.pop("task"), **kwargs)


def test_wrong_input_is_refused():
    model = tf.build_transformer(DEMO, "next", **TINY)
    with pytest.raises(ValueError, match=r"expected integer ids \[B, n=15\]"):
        model(torch.zeros(2, DEMO.d, dtype=torch.long))
    with pytest.raises(ValueError, match="expected integer ids"):
        model(torch.zeros(2, DEMO.d - 1))


def test_bf16_autocast_is_close_to_float32():
    model = tf.build_transformer(DEMO, "mlm", **TINY).eval()
    ids = torch.randint(0, DEMO.v + 3, (8, DEMO.d), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = model(ids)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(ids)
    assert half.dtype == torch.bfloat16
    assert torch.allclose(half.float(), full, atol=0.05)
    targets = torch.randint(0, DEMO.v, (8, DEMO.d))
    assert tf.task_loss(half, targets).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("task", TASKS)
def test_cuda_matches_cpu(task):
    n = SHAPES[task][0]
    ids = torch.randint(0, DEMO.v + 1, (16, n), generator=torch.Generator().manual_seed(3))
    ids[:, 4] = mask_id(DEMO.v)
    model = tf.build_transformer(DEMO, task, **TINY).eval()
    with torch.no_grad():
        cpu = model(ids)
        gpu = model.to("cuda")(ids.to("cuda")).cpu()
    assert torch.allclose(gpu, cpu, atol=1e-3)
