"""Hypothesis strategies shared by the generator tests."""

from hypothesis import assume
from hypothesis import strategies as st

from srhm_datasets import SRHMConfig


@st.composite
def small_configs(draw, L=st.integers(1, 3), s=st.integers(2, 3), s0=st.integers(0, 3), **overrides):
    """Valid small configs, both sparsities (invalid draws are rejected, not errors)."""
    fields = dict(
        L=draw(L),
        s=draw(s),
        s0=draw(s0),
        v=draw(st.integers(2, 6)),
        nc=draw(st.integers(2, 4)),
        m=draw(st.integers(1, 4)),
        sparsity=draw(st.sampled_from("AB")),
        seed=draw(st.integers(0, 2**40)),
    )
    fields.update({k: draw(v) for k, v in overrides.items()})
    try:
        return SRHMConfig(**fields)
    except ValueError:
        assume(False)
