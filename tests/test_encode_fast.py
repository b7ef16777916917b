"""The CPU fast path of ``encode`` (fill, then one scatter) against the torch comparison path (format.md §7)."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from srhm_datasets.torch_data.encoding import _encode_numpy, _encode_torch, encode


@st.composite
def token_batches(draw):
    """(codes, v, channels): tokens 0..v, or with channels v + 2 task codes 0..v + 2 (MASK, UNOBSERVED)."""
    v = draw(st.integers(2, 300))
    extra = draw(st.sampled_from([0, 2]))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=2))) + (draw(st.integers(1, 9)),)
    dtype = draw(st.sampled_from([np.uint8, np.int32, np.int64] if v + extra < 256 else [np.int32, np.int64]))
    values = draw(st.lists(st.integers(0, v + extra), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return torch.from_numpy(np.array(values, dtype=dtype).reshape(shape)), v, v + extra


@settings(max_examples=80, deadline=None)
@given(token_batches(), st.sampled_from(["onehot", "whiten"]), st.sampled_from([torch.float32, torch.float64]))
def test_numpy_fast_path_is_the_torch_path(batch, kind, dtype):
    tokens, v, channels = batch
    fast = _encode_numpy(tokens, v, kind, dtype, channels)
    assert fast.dtype == dtype and fast.shape == tokens.shape[:-1] + (channels, tokens.shape[-1])
    assert torch.equal(fast, _encode_torch(tokens, v, kind, dtype, channels))  # bit for bit: 0 / 1 / rounded absent
    assert torch.equal(encode(tokens, v, kind, dtype, channels=channels), fast)  # the fast path on the CPU


def test_empty_tokens_of_any_shape_encode_as_on_the_torch_path():
    # d = 0 made the numpy path fail inside numpy (reshape(-1, 0)); every empty shape is encoded
    for shape in [(3, 0), (0,), (0, 4), (2, 0, 5)]:
        tokens = torch.zeros(shape, dtype=torch.uint8)
        for kind in ("onehot", "whiten"):
            out = encode(tokens, 5, kind)
            assert out.shape == shape[:-1] + (5, shape[-1]) and out.dtype == torch.float32
            assert torch.equal(out, _encode_torch(tokens, 5, kind, torch.float32))
