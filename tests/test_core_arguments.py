"""Core API arguments: batches of another config and wrong types are refused.

Every case here was accepted silently, or failed with a raw library exception
(AttributeError, TypeError, IndexError, numpy's or Python's own ValueError), before.
"""

import numpy as np
import pytest

from srhm_datasets import SRHMConfig, generate, perturb, sample_rules
from srhm_datasets.catalog import catalog_name, get_config
from srhm_datasets.generate import expand
from srhm_datasets.hashing import content_hash
from srhm_datasets.perturb import perturb_indices
from srhm_datasets.prng import below, derive_key, hash_with, mix64
from srhm_datasets.rules import placement_slots
from srhm_datasets.sampler import layout, permute_int, permuted_digits, split_digits

A = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, seed=0)  # d = 16, N = 3
B = SRHMConfig(L=2, s=2, s0=2, v=10, nc=10, m=10, seed=1)  # d = 36, N = 3


@pytest.fixture(scope="module")
def rows_a():
    return generate(A, "test", 0, 5)


@pytest.fixture(scope="module")
def rows_b():
    return generate(B, "test", 0, 5)


def refused(call, fragment: str) -> str:
    with pytest.raises(ValueError) as err:
        call()
    message = str(err.value)
    assert message.startswith("invalid parameter") and fragment in message, message
    return message


def test_perturb_refuses_rows_of_a_config_with_another_d(rows_a):
    # d = 16 rows and a d = 36 config gave a [5, 36] array.
    refused(
        lambda: perturb(B, rows_a, kind="synonym", level=1), "batch['tokens'].shape=(5, 16): must satisfy == (5, 36)"
    )


def test_perturb_refuses_rows_whose_values_do_not_fit(rows_b):
    # Same shapes (N = 3), larger symbols: labels up to 9 in a config with nc = 4.
    message = refused(lambda: perturb(A, rows_b, "diffeo", 1), "max(batch[")
    assert "for A_L2_s2_s0-1_v4_nc4_m4_seed0" in message
    without_tokens = {k: rows_b[k] for k in ("label", "synonyms", "placements")}
    refused(lambda: perturb(A, without_tokens, "synonym", 1), "max(batch['label'])=")
    refused(lambda: perturb_indices(A, without_tokens, "synonym", 1), "max(batch['label'])=")


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"kind": "blur"}, "kind='blur': must satisfy one of ('synonym', 'diffeo')"),
        ({"kind": ["synonym"]}, "kind=['synonym']"),
        ({"level": 3}, "level=3: must satisfy 1 <= level <= 2"),
        ({"level": 1.0}, "level=1.0"),
        ({"force": "yes"}, "force='yes': must satisfy a bool"),
        ({"key": -1}, "key=-1"),
        ({"key": None}, "key=None"),
    ],
)
def test_perturb_arguments(rows_a, change, fragment):
    args = {"kind": "synonym", "level": 1, **change}
    refused(lambda: perturb(A, rows_a, **args), fragment)


def test_perturb_batch_types(rows_a):
    refused(lambda: perturb(A, None, "synonym", 1), "batch=None: must satisfy a dict")
    refused(lambda: perturb(A, {"label": rows_a["label"]}, "synonym", 1), "a dict with the column 'synonyms'")
    floats = {**rows_a, "synonyms": rows_a["synonyms"].astype(float)}
    refused(lambda: perturb(A, floats, "synonym", 1), "batch['synonyms'].dtype='float64'")
    negative = {**rows_a, "label": rows_a["label"] - 10}
    refused(lambda: perturb(A, negative, "synonym", 1), "min(batch['label'])=")
    refused(
        lambda: perturb(A.name, rows_a, "synonym", 1), "cfg='A_L2_s2_s0-1_v4_nc4_m4_seed0': must satisfy an SRHMConfig"
    )


def test_numpy_level_and_key_give_the_same_tokens(rows_a):
    # numpy ints are accepted and give the same draws as Python ints (the key derivation is a repr).
    assert np.array_equal(
        perturb(A, rows_a, "synonym", np.int64(2), key=np.uint8(3)), perturb(A, rows_a, "synonym", 2, key=3)
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (("val",), "split='val': must satisfy one of ('train', 'test', 'probe')"),
        ((["test"],), "split=['test']"),  # not an unhashable-type TypeError
        (("test", 0.5, 2), "start=0.5: must satisfy an int"),
        (("test", 0, 2.0), "stop=2.0"),
        (("test", 0, None, 0), "workers=0"),
        (("test", 0, 3, -1), "workers=-1"),  # not ThreadPoolExecutor's ValueError
        (("test", 3, 2), "start=3, stop=2"),
    ],
)
def test_generate_arguments(args, fragment):
    refused(lambda: generate(A, *args), fragment)


def test_generate_refuses_a_non_config():
    refused(lambda: generate("demo", "test", 0, 1), "cfg='demo'")
    refused(lambda: split_digits(None, "test", 0, 1), "cfg=None")


def test_generate_accepts_numpy_bounds():
    assert np.array_equal(generate(A, "test", np.int64(1), np.int32(3))["tokens"], generate(A, "test", 1, 3)["tokens"])


def test_expand_checks_its_inputs(rows_a):
    label, synonyms, placements = rows_a["label"], rows_a["synonyms"], rows_a["placements"]
    latents, tokens = expand(A, label, synonyms, placements, dtype=np.uint8)
    assert np.array_equal(tokens, rows_a["tokens"]) and np.array_equal(latents, rows_a["latents"])
    refused(lambda: expand(A, label, synonyms[:, :2], placements), "batch['synonyms'].shape=(5, 2)")
    refused(lambda: expand(A, label, synonyms, placements + 4), "max(batch['placements'])=")  # K = 4
    refused(lambda: expand(A, label, synonyms, placements, dtype=np.float32), "dtype=dtype('float32')")
    refused(lambda: expand(SRHMConfig(L=1, s=2, s0=0, v=300, nc=2, m=2), [0], [[0]], [[0]], np.uint8), "holds v = 300")


def test_sampler_functions_check_their_indices():
    refused(lambda: permute_int(np.array([0, 10]), 10, key=1), "max(index)=10: must satisfy < 10")
    refused(lambda: permute_int(np.array([-1]), 10, key=1), "min(index)=-1")
    refused(lambda: permute_int(np.array([0.5]), 10, key=1), "index.dtype='float64'")
    refused(lambda: permute_int(np.array([0]), 0, key=1), "n=0")
    refused(lambda: permuted_digits(A, np.array([A.data_space_size])), f"max(g)={A.data_space_size}")
    refused(lambda: layout([A]), "cfg=[SRHMConfig(")  # not lru_cache's unhashable-type TypeError


def test_rules_prng_and_hash_arguments():
    refused(lambda: sample_rules({"L": 2}), "cfg={'L': 2}")
    refused(lambda: placement_slots(2, 5000, "B"), "s0=5000")  # K = comb(10002, 2): was ~50M Python tuples
    refused(lambda: placement_slots(2, 1, "C"), "sparsity='C'")
    refused(lambda: mix64(np.arange(3)), "x.dtype='int64': must satisfy uint64")  # not silently float64
    refused(lambda: hash_with(-1, np.arange(3)), "key=-1")  # not numpy's OverflowError
    refused(lambda: hash_with(1, np.ones(3)), "x.dtype='float64'")
    refused(lambda: below(np.ones(2, dtype=np.uint64), 0), "n=0")
    refused(lambda: derive_key(1.5, "rules"), "seed=1.5")  # not int(1.5) = 1
    refused(lambda: content_hash({"label": np.array([0.5, 1.5])}), "columns['label'].dtype='float64'")  # not truncated
    refused(lambda: content_hash([1, 2]), "columns=[1, 2]")


def test_catalog_arguments():
    refused(lambda: get_config(["demo"]), "config=['demo']: must satisfy an SRHMConfig, a catalog name or a canonical")
    refused(lambda: catalog_name("demo"), "cfg='demo'")
    refused(lambda: A.depth_nodes(2), "k=2: must satisfy 0 <= k <= 1")
    refused(lambda: A.split_offset("val"), "split='val'")
