"""The generator on a torch device (torch_data/generator.py): bit-identical to the numpy generator."""

import dataclasses
import importlib
import itertools

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from srhm_datasets import SRHMConfig, generate, perturb
from srhm_datasets.hashing import content_hash
from srhm_datasets.perturb import perturb_indices
from srhm_datasets.prng import mix64 as np_mix64
from srhm_datasets.torch import SRHMStream, TorchGenerator, encode
from srhm_datasets.torch_data.generator import mix64, umod

from .golden import GOLDEN, PERTURBATION_HASH, perturbation_hash
from .strategies import small_configs
from .torch_helpers import as_rows

WORDS = st.integers(0, 2**64 - 1)
#: Devices the bit-identity tests run on: the CPU, and CUDA where this machine has it.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def numpy_rows(rows: dict) -> dict:
    """Torch columns as numpy arrays (for content_hash and comparisons)."""
    return {k: v.cpu().numpy() for k, v in rows.items()}


def assert_rows_equal(cfg, split, start, stop, device="cpu"):
    ours = numpy_rows(TorchGenerator(cfg, device).rows(split, start, stop))
    ref = generate(cfg, split, start, stop, workers=1)
    assert set(ours) == set(ref)
    for column, values in ref.items():
        assert np.array_equal(ours[column], values.astype(np.int64)), column


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, split, start, stop, expected", GOLDEN)
def test_golden_content_hashes_through_torch(name, split, start, stop, expected, device):
    rows = TorchGenerator(SRHMConfig.from_name(name), device).rows(split, start, stop)
    assert content_hash(numpy_rows(rows)) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=20), st.integers(1, 2**61), st.data())
def test_int64_arithmetic_is_prng_uint64(words, n, data):
    """mix64 and unsigned modulo on int64 bits equal numpy's uint64 arithmetic (sign bit set or not)."""
    u = np.array(words, dtype=np.uint64)
    x = torch.from_numpy(u.view(np.int64).copy())
    assert np.array_equal(mix64(x).numpy().view(np.uint64), np_mix64(u))
    assert np.array_equal(umod(x, n).numpy(), (u % np.uint64(n)).astype(np.int64))
    plus = data.draw(st.lists(st.integers(0, n - 1), min_size=len(words), max_size=len(words)))
    expected = [(w % n + p) % n for w, p in zip(words, plus)]
    assert umod(x, n, torch.tensor(plus)).tolist() == expected


@settings(max_examples=60, deadline=None)
@given(small_configs(), st.sampled_from(["train", "test", "probe"]), st.data())
def test_rows_equal_numpy_on_small_configs(cfg, split, data):
    size = cfg.split_sizes()[split]
    start = data.draw(st.integers(0, size))
    assert_rows_equal(cfg, split, start, data.draw(st.integers(start, min(size, start + 40))))


@st.composite
def large_configs(draw):
    """Configs with P_max beyond 2**20: the Feistel with cycle walking (< 2**62) and the limbs (>= 2**62)."""
    cfg = draw(
        small_configs(
            L=st.integers(2, 4), s0=st.integers(0, 2), v=st.integers(4, 16), nc=st.integers(2, 8), m=st.integers(1, 8)
        )
    )
    assume(cfg.data_space_size > 2**20 and cfg.d <= 4096)
    return cfg


@settings(max_examples=40, deadline=None)
@given(large_configs(), st.data())
def test_rows_equal_numpy_on_large_spaces(cfg, data):
    """Random train ranges anywhere below min(P_max, 2**62) (train grown to reach them)."""
    stop = data.draw(st.integers(1, min(cfg.data_space_size, 2**62) - cfg.split_offset("train")))
    cfg = dataclasses.replace(cfg, n_train=stop)
    assert_rows_equal(cfg, "train", max(0, stop - data.draw(st.integers(0, 30))), stop)


@pytest.mark.parametrize(
    "name, table, round_tables, limbs",
    [
        ("A_L2_s2_s0-1_v4_nc4_m4_seed0", True, False, 1),  # P_max <= 2**20: the permutation table
        ("A_L2_s2_s0-2_v10_nc10_m10_seed1", False, True, 1),  # Feistel on two limbs <= 2**16: round tables
        ("A_L2_s2_s0-2_v100_nc10_m100_seed1", False, False, 1),  # two limbs > 2**16: round functions computed
        ("B_L3_s3_s0-2_v10_nc10_m100_seed3", False, False, 3),  # P_max >= 2**62: several limbs
    ],
)
@pytest.mark.parametrize("device", DEVICES)
def test_every_sampler_regime_equals_numpy(name, table, round_tables, limbs, device):
    cfg = SRHMConfig.from_name(name)
    gen = TorchGenerator(cfg, device)
    tabulated = gen._feistel is not None and gen._feistel.tables is not None
    assert (gen._table is not None, tabulated, len(gen._layout.radices)) == (table, round_tables, limbs)
    assert_rows_equal(cfg, "test", 0, min(2000, cfg.split_sizes()["test"]), device)


@pytest.mark.parametrize("device", DEVICES)
def test_spaces_beyond_2_64_both_sparsities_are_covered(device):
    for name in ("A_L4_s2_s0-1_v16_nc16_m16_seed0", "B_L4_s2_s0-1_v16_nc16_m16_seed0", "B_L3_s3_s0-1_v8_nc8_m8_seed2"):
        cfg = SRHMConfig.from_name(name)
        assert cfg.data_space_size > 2**64
        big = dataclasses.replace(cfg, n_train=2**62 - 10**6)
        assert_rows_equal(big, "train", 2**62 - 10**6 - 100, 2**62 - 10**6, device)


@pytest.mark.parametrize(
    "name",
    ["A_L2_s2_s0-2_v10_nc10_m10_seed1", "B_L3_s3_s0-2_v10_nc10_m100_seed3", "A_L1_s2_s0-0_v300_nc300_m300_seed0"],
)
def test_leaf_scatter_without_the_patch_table(name, monkeypatch):
    module = importlib.import_module("srhm_datasets.generate")
    cfg = SRHMConfig.from_name(name)
    monkeypatch.setattr(module, "MAX_PATCH_TABLE", 0)
    module.leaf_patches.cache_clear()
    try:
        assert TorchGenerator(cfg, "cpu")._patches is None
        assert_rows_equal(cfg, "test", 0, 300)
    finally:
        module.leaf_patches.cache_clear()


def test_wide_vocabulary_tokens_are_int32():
    cfg = SRHMConfig.from_name("A_L1_s2_s0-0_v300_nc300_m300_seed0")
    assert TorchGenerator(cfg, "cpu").rows("test", 0, 5)["tokens"].dtype == torch.int32
    assert_rows_equal(cfg, "test", 0, 500)


def torch_batch(batch: dict) -> dict:
    return {k: torch.from_numpy(v.astype(np.int64)) for k, v in batch.items()}


@settings(max_examples=60, deadline=None)
@given(
    small_configs(m=st.integers(1, 4)),
    st.sampled_from(["synonym", "diffeo"]),
    st.booleans(),
    st.integers(0, 2**64 - 1),
    st.data(),
)
def test_perturbations_equal_numpy(cfg, kind, force, key, data):
    level = data.draw(st.integers(1, cfg.L))
    n = min(30, cfg.split_sizes()["test"])
    batch = generate(cfg, "test", 0, n)
    gen = TorchGenerator(cfg, "cpu")
    try:
        synonyms, placements = perturb_indices(cfg, batch, kind, level, force, key)
    except ValueError as error:  # an impossible forced change: the same error
        with pytest.raises(ValueError, match=str(error).split(":")[0]):
            gen.perturb(torch_batch(batch), kind, level, force, key)
        return
    ours = gen.perturb_indices(torch_batch(batch), kind, level, force, key)
    assert np.array_equal(ours[0].numpy(), synonyms) and np.array_equal(ours[1].numpy(), placements)
    tokens = perturb(cfg, batch, kind, level, force, key)
    assert np.array_equal(gen.perturb(torch_batch(batch), kind, level, force, key).numpy(), tokens)


@pytest.mark.parametrize("device", DEVICES)
def test_golden_perturbation_hash_through_torch(device):
    """The golden perturbation hash of numpy's perturb, with the torch one."""

    def torch_perturb(cfg, batch, kind, level):
        return TorchGenerator(cfg, device).perturb(torch_batch(batch), kind, level).cpu().numpy()

    assert perturbation_hash(torch_perturb) == PERTURBATION_HASH


def test_expand_checks_its_batch():
    cfg = SRHMConfig.from_name("A_L2_s2_s0-1_v4_nc4_m4_seed0")
    gen = TorchGenerator(cfg, "cpu")
    rows = generate(cfg, "test", 0, 10)
    latents, tokens = gen.expand(rows["label"], rows["synonyms"], rows["placements"])
    assert np.array_equal(latents.numpy(), rows["latents"]) and np.array_equal(tokens.numpy(), rows["tokens"])
    with pytest.raises(ValueError, match=r"max\(batch\['synonyms'\]\)=4"):
        gen.expand(rows["label"], rows["synonyms"] + 1, rows["placements"])
    with pytest.raises(ValueError, match=r"batch\['label'\].dtype"):
        gen.expand(rows["label"].astype(float), rows["synonyms"], rows["placements"])
    with pytest.raises(ValueError, match=r"batch\['label'\].dtype"):
        gen.expand(torch.from_numpy(rows["label"]).float(), rows["synonyms"], rows["placements"])
    with pytest.raises(ValueError, match=r"min\(batch\['placements'\]\)=-1"):
        gen.expand(rows["label"], rows["synonyms"], torch.from_numpy(rows["placements"]).long() - 1)
    with pytest.raises(ValueError, match=r"batch\['placements'\].shape"):
        gen.expand(rows["label"], rows["synonyms"], rows["placements"][:5])
    with pytest.raises(ValueError, match="level=3"):
        gen.perturb(torch_batch(rows), "synonym", 3)


def test_bad_arguments_are_refused_before_any_work():
    cfg = SRHMConfig.from_name("A_L2_s2_s0-1_v4_nc4_m4_seed0")
    with pytest.raises(ValueError, match="device='tpu'"):
        TorchGenerator(cfg, "tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda'.*no CUDA device"):
            TorchGenerator(cfg, "cuda")
        with pytest.raises(ValueError, match="device='cuda'"):
            SRHMStream(cfg, device="cuda")
    with pytest.raises(ValueError, match="cfg="):
        TorchGenerator("A_L2_s2_s0-1_v4_nc4_m4_seed0", "cpu")
    with pytest.raises(ValueError, match="device=3"):
        SRHMStream(cfg, device=3)
    with pytest.raises(ValueError, match="stop=99999"):
        TorchGenerator(cfg, "cpu").rows("test", 0, 99999)
    with pytest.raises(ValueError, match="columns='tokens'"):
        TorchGenerator(cfg, "cpu").rows("test", 0, 9, "tokens")
    assert set(TorchGenerator(cfg, "cpu").rows("test", 0, 9, ["label"])) == {"label"}


DEMO = SRHMConfig.from_name("A_L2_s2_s0-1_v4_nc4_m4_seed0")


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(["train", "test", "probe"]),
    st.integers(0, 400),
    st.integers(0, 400),
    st.integers(1, 100),
    st.integers(1, 3),
    st.booleans(),
    st.data(),
)
def test_device_stream_equals_the_numpy_stream(split, start, length, batch_size, world_size, even_ranks, data):
    size = DEMO.split_sizes()[split]
    start = min(start, size)
    rank = data.draw(st.integers(0, world_size - 1))
    kwargs = dict(batch_size=batch_size, return_latents=True, rank=rank, world_size=world_size, even_ranks=even_ranks)
    ref = list(SRHMStream(DEMO, split, start, min(size, start + length), **kwargs))
    ours = list(SRHMStream(DEMO, split, start, min(size, start + length), device="cpu", **kwargs))
    assert len(ours) == len(ref)
    assert np.array_equal(as_rows(ours), as_rows(ref))
    assert all(b["tokens"].dtype == torch.uint8 and b["label"].dtype == torch.int64 for b in ours)


@pytest.mark.parametrize("device", DEVICES)
def test_device_stream_batches_encode_where_they_are(device):
    ref = next(iter(SRHMStream(DEMO, "test", 0, 100, batch_size=64, return_latents=True)))
    ours = next(iter(SRHMStream(DEMO, "test", 0, 100, batch_size=64, return_latents=True, device=device)))
    assert all(t.device.type == device for t in ours.values())
    x, y, extras = SRHMStream(DEMO, device=device).to_device(ours)
    assert x.device.type == device and torch.equal(x.cpu(), encode(ref["tokens"], DEMO.v))
    assert torch.equal(y.cpu(), ref["label"]) and torch.equal(extras["synonyms"].cpu(), ref["synonyms"])


def test_device_stream_items_and_endless_train():
    ref = list(SRHMStream(DEMO, "probe", 0, 50, encoding="onehot", chunk_size=16))
    ours = list(SRHMStream(DEMO, "probe", 0, 50, encoding="onehot", chunk_size=16, device="cpu"))
    assert [y for _, y in ours] == [y for _, y in ref]
    assert torch.equal(torch.stack([x for x, _ in ours]), torch.stack([x for x, _ in ref]))
    size = DEMO.split_sizes()["train"]
    start = size - 100  # past the published train: same permutation
    ref = SRHMStream(DEMO, "train", start, batch_size=64, return_latents=True)
    ours = SRHMStream(DEMO, "train", start, batch_size=64, return_latents=True, device="cpu")
    three = [list(itertools.islice(stream, 3)) for stream in (ours, ref)]
    assert ours.endless and np.array_equal(as_rows(three[0]), as_rows(three[1]))


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
def test_cpu_device_stream_in_dataloader_workers():
    kwargs = dict(batch_size=50, return_latents=True)
    ours = SRHMStream(DEMO, "train", 37, 537, device="cpu", **kwargs)
    batches = list(DataLoader(ours, batch_size=None, num_workers=2))
    assert np.array_equal(as_rows(batches), as_rows(list(SRHMStream(DEMO, "train", 37, 537, **kwargs))))
