"""format.md §7 encodings: exact values on hand-written tokens, real rows of both sparsities."""

import math

import numpy as np
import pytest
import torch

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.torch import ENCODINGS, encode, to_device_batch
from srhm_datasets.torch_data.encoding import torch_tokens

# v = 3, so the blank is 3; d = 5. Columns: 0, blank, 2, 1, blank.
TOKENS = torch.tensor([[0, 3, 2, 1, 3], [3, 3, 1, 1, 0]], dtype=torch.uint8)
ONEHOT = torch.tensor(
    [
        [[1, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0]],
        [[0, 0, 0, 0, 1], [0, 0, 1, 1, 0], [0, 0, 0, 0, 0]],
    ],
    dtype=torch.float32,
)
A = -1 / math.sqrt(2)  # absent value of whiten for v = 3


def test_onehot_hand_written():
    x = encode(TOKENS, 3, "onehot")
    assert x.dtype == torch.float32 and x.shape == (2, 3, 5)
    assert torch.equal(x, ONEHOT)
    assert torch.equal(x[0, :, 1], torch.zeros(3)) and torch.equal(x[0, :, 4], torch.zeros(3))  # blanks


def test_whiten_hand_written():
    x = encode(TOKENS, 3, "whiten")
    a = torch.tensor(A, dtype=torch.float32)
    expected = torch.where(ONEHOT == 1, torch.tensor(1.0), a)
    assert torch.equal(x, expected)
    assert x[0, 0, 0].item() == 1.0 and x[0, 1, 0].item() == float(np.float32(A))  # float32 rounding of A
    assert torch.equal(x[1, :, 0], torch.full((3,), a.item()))  # a blank column is all -1/sqrt(v-1)
    assert x.sum(dim=1)[0, 0].item() == pytest.approx(1 + 2 * A, rel=1e-6)


def test_tokens_hand_written():
    ids = encode(TOKENS, 3, "tokens")
    assert ids.dtype == torch.int64 and torch.equal(ids, TOKENS.long())


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16, torch.float16])
def test_dtypes_exact(dtype):
    """Values are exact in every dtype: 1, 0, and the dtype's own rounding of -1/sqrt(v-1)."""
    w = encode(TOKENS, 3, "whiten", dtype)
    o = encode(TOKENS, 3, "onehot", dtype)
    assert w.dtype == o.dtype == dtype
    assert torch.equal(o, ONEHOT.to(dtype))
    assert torch.equal(w, torch.where(ONEHOT == 1, torch.ones((), dtype=dtype), torch.tensor(A, dtype=dtype)))
    if dtype == torch.float64:
        assert w[1, 0, 0].item() == A  # computed in double, not via float32


def test_input_types_and_shapes():
    """int64 / int32 / numpy inputs give the same; a single row [d] gives [v, d]."""
    ref = encode(TOKENS, 3, "whiten")
    for t in (TOKENS.long(), TOKENS.int(), TOKENS.numpy(), TOKENS.t().contiguous().t()):
        assert torch.equal(encode(t, 3, "whiten"), ref)
    assert torch.equal(encode(TOKENS[1], 3, "onehot"), ONEHOT[1])
    big = torch.tensor([[0, 299, 300]], dtype=torch.int32)  # v = 300: uint16 data arrive as int32
    x = encode(big, 300, "onehot")
    assert x.shape == (1, 300, 3) and x[0, 0, 0] == 1 and x[0, 299, 1] == 1 and x[0, :, 2].sum() == 0


def reference_encode(tokens: np.ndarray, v: int, kind: str) -> np.ndarray:
    """Per-element loop, written from format.md §7."""
    a = np.float32(-1 / math.sqrt(v - 1))
    out = np.zeros((tokens.shape[0], v, tokens.shape[1]), dtype=np.float32)
    for b in range(tokens.shape[0]):
        for j in range(tokens.shape[1]):
            for c in range(v):
                hit = tokens[b, j] == c
                out[b, c, j] = (1.0 if hit else 0.0) if kind == "onehot" else (1.0 if hit else a)
    return out


@pytest.mark.parametrize("sparsity", ["A", "B"])
@pytest.mark.parametrize("kind", ["onehot", "whiten"])
def test_real_rows_both_sparsities(sparsity, kind):
    cfg = SRHMConfig(L=2, s=2, s0=1, v=5, nc=3, m=2, sparsity=sparsity, seed=3)
    tokens = generate(cfg, "train", 0, 8)["tokens"]
    blank = tokens == cfg.v
    assert blank.sum(axis=1).tolist() == [cfg.d - cfg.num_informative] * 8  # blanks present
    x = encode(torch.from_numpy(tokens), cfg.v, kind).numpy()
    assert np.array_equal(x, reference_encode(tokens, cfg.v, kind))
    columns = x.transpose(0, 2, 1)[blank]  # [n_blank, v]
    assert np.all(columns == (0.0 if kind == "onehot" else np.float32(-1 / math.sqrt(cfg.v - 1))))


def test_to_device_batch_cpu():
    batch = {"tokens": TOKENS, "label": torch.tensor([2, 0]), "latents": torch.tensor([[1], [2]])}
    x, label, extras = to_device_batch(batch, 3, "onehot", device="cpu")
    assert torch.equal(x, ONEHOT) and label.tolist() == [2, 0] and extras["latents"].tolist() == [[1], [2]]
    x, label = to_device_batch({"tokens": TOKENS, "label": torch.tensor([2, 0])}, 3, "tokens")
    assert x.dtype == torch.int64 and x.device.type in ("cpu", "cuda", "mps")


def test_errors_name_parameter():
    with pytest.raises(ValueError, match=r"kind='embed'.*one of"):
        encode(TOKENS, 3, "embed")
    with pytest.raises(ValueError, match=r"v=1.*2 <= v"):
        encode(TOKENS, 1, "whiten")
    with pytest.raises(ValueError, match="integer"):
        encode(TOKENS.float(), 3, "onehot")
    assert set(ENCODINGS) == {"onehot", "whiten", "tokens"}


def test_tokens_of_another_config_are_refused():
    # v=10 tokens (values up to 10) fed to a v=4 encoder, or d=36 rows to a d=16 config:
    # before, onehot silently read every token > 3 as a blank column.
    wide = torch.tensor([[0, 9, 10, 3]], dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"max\(tokens\)=10: must satisfy <= v = 4"):
        encode(wide, 4, "onehot")
    with pytest.raises(ValueError, match=r"min\(tokens\)=-1"):
        encode(torch.tensor([[-1, 0]]), 4, "tokens")
    with pytest.raises(ValueError, match=r"tokens.shape=\(1, 4\): must satisfy \[..., d\] with d = 16"):
        encode(torch.zeros(1, 4, dtype=torch.uint8), 4, "whiten", d=16)


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: encode(TOKENS.float(), 3, "tokens"), "tokens.dtype='torch.float32'"),  # not silently .long()
        (lambda: encode(TOKENS, 3, "whiten", torch.int64), "dtype=torch.int64"),  # not all zeros
        (lambda: encode(TOKENS, 3.0, "onehot"), "v=3.0"),
        (lambda: encode(["a", "b"], 3, "onehot"), "tokens=['a', 'b']"),  # not torch's bare ValueError
        (lambda: encode(TOKENS, 3, ["onehot"]), "kind=['onehot']"),
        (lambda: to_device_batch({"tokens": TOKENS.numpy(), "label": torch.tensor([1, 0])}, 3), "batch['tokens']"),
        (lambda: to_device_batch({"tokens": TOKENS}, 3), "batch="),  # not KeyError
        (lambda: to_device_batch({"tokens": TOKENS, "label": torch.tensor([1, 0])}, 3, device="tpu"), "device='tpu'"),
        (lambda: torch_tokens(TOKENS), "tokens="),  # not AttributeError
    ],
)
def test_wrong_types_are_our_value_errors(call, fragment):
    with pytest.raises(ValueError) as err:
        call()
    assert fragment in str(err.value) and "must satisfy" in str(err.value)


def test_numpy_integer_v_is_accepted():
    assert torch.equal(encode(TOKENS, np.int64(3), "onehot"), ONEHOT)


def test_encode_refuses_a_d_that_is_not_an_int():
    tokens = torch.zeros(2, 16, dtype=torch.uint8)
    for d in ("16", True, 16.0):
        with pytest.raises(ValueError, match=r"invalid parameter d=.*must satisfy an int, 1 <= d <= 65536"):
            encode(tokens, 4, d=d)
