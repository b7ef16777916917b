"""Bounded memory, in bytes: ``srhm verify`` peaks no higher than ``srhm build`` of the same config
at any d, its peak does not grow with the number of configs, and hashing a block costs a bounded
number of bytes beside it whatever its dtype and row width.

Peaks of whole commands are measured in a fresh interpreter as its peak RSS (Linux's ``VmHWM``,
reset through ``/proc/self/clear_refs`` after a warm-up that imports everything) over its RSS
before the command; numpy allocations in the process by ``tracemalloc`` (numpy reports its
buffers to it).
"""

from __future__ import annotations

import gc
import hashlib
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srhm_datasets.catalog import release_name
from srhm_datasets.config import SRHMConfig
from srhm_datasets.hashing import HASH_CHUNK_BYTES, SplitHasher
from srhm_datasets.release.build import ROW_GROUP_BYTES, build_release
from srhm_datasets.release.load import dataset_content_hash
from srhm_datasets.release.verify import BLOCK_BYTES, block_rows, verify_release, verify_row_bytes

#: d = 27**3 = 9261 (the catalog's widest input): one row holds 9261 uint8 tokens.
WIDE = SRHMConfig(L=3, s=3, s0=6, v=4, nc=4, m=16, seed=2, n_train=2048, n_test=512, n_probe=16)
#: Imports and caches paid before the measurement.
WARM = SRHMConfig(L=2, s=2, s0=1, v=4, nc=4, m=4, seed=0, n_train=64, n_test=16, n_probe=4)

PEAK_GROWTH = """
import sys
from pathlib import Path
from srhm_datasets.catalog import get_config
from srhm_datasets.release.build import build_release
from srhm_datasets.release.verify import verify_release

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

command, root = sys.argv[1], Path(sys.argv[2])
verify_release(root / "warm")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak RSS (VmHWM) to the current RSS: the imports' peak is not counted
before = status("VmRSS")
if command == "verify":
    assert verify_release(root / "wide").ok
else:
    build_release([get_config(sys.argv[3])], root / "again", progress=False)
print(status("VmHWM") - before)
"""


def _peak_growth(command: str, root, name: str = "") -> int:
    """Bytes the peak RSS of a fresh interpreter grows by while it runs ``command`` (build or verify)."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PEAK_GROWTH), command, str(root), name],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return int(out.stdout.split()[-1])


@pytest.fixture(scope="module")
def wide_release(tmp_path_factory):
    root = tmp_path_factory.mktemp("wide")
    build_release([WIDE], root / "wide", progress=False)
    build_release([WARM], root / "warm", progress=False)
    return root


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak RSS reset needs Linux /proc")
def test_verify_of_a_wide_config_peaks_below_its_build(wide_release):
    """d = 9261: verify's peak stays within a few of the build's row groups, and below the build's own."""
    verify = _peak_growth("verify", wide_release)
    build = _peak_growth("build", wide_release, WIDE.name)
    assert verify <= 6 * ROW_GROUP_BYTES, f"verify grew the peak RSS by {verify / 2**20:.0f} MiB"
    assert verify <= build, f"verify {verify / 2**20:.0f} MiB > build {build / 2**20:.0f} MiB"


@pytest.mark.parametrize("split", ["train", "probe"])
def test_blocks_are_sized_in_bytes(split):
    """A verified block's working arrays fit BLOCK_BYTES, a quarter of the build's row group, at any d
    (one row at the least)."""
    assert BLOCK_BYTES <= ROW_GROUP_BYTES // 4
    for s0 in (0, 2, 6):
        cfg = SRHMConfig(L=3, s=3, s0=s0, v=4, nc=4, m=16, seed=2)
        rows = block_rows(cfg, split)
        assert rows == 1 or rows * verify_row_bytes(cfg, split) <= BLOCK_BYTES
        assert (rows + 1) * verify_row_bytes(cfg, split) > BLOCK_BYTES


def _numpy_peak(run) -> tuple[int, int]:
    """(peak, retained) bytes of numpy and Python allocations while ``run()`` runs, its result kept."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = run()
        peak = tracemalloc.get_traced_memory()[1]
        gc.collect()  # cycles left by datasets' Features objects are garbage, not kept
        current = tracemalloc.get_traced_memory()[0]
        del result
    finally:
        tracemalloc.stop()
    return peak - before, current - before


def test_verify_peak_does_not_grow_with_the_number_of_configs(tmp_path):
    """Four configs of 30000 rows peak as one does: nothing of a checked config stays referenced."""
    configs = [
        SRHMConfig(L=2, s=2, s0=1, v=6, nc=6, m=6, seed=seed, n_train=30000, n_test=1000, n_probe=100)
        for seed in range(10, 14)
    ]
    build_release(configs, tmp_path / "rel", progress=False)
    first = [configs[0].name]
    verify_release(tmp_path / "rel")  # imports and caches (rule tables, schemas) of every config
    one, kept_one = _numpy_peak(lambda: verify_release(tmp_path / "rel", first))
    four, kept_four = _numpy_peak(lambda: verify_release(tmp_path / "rel"))
    per_config_keys = 30000 * (1 + 2 * configs[0].num_nodes) * 4  # what the report used to keep, uint32 keys
    assert four - one < per_config_keys / 4, f"peak {one} B for one config, {four} B for four"
    assert kept_four < 64 << 10, f"the report keeps {kept_four} B"


def test_hashing_widens_a_bounded_number_of_bytes():
    """Hashing a [512, 9261] uint8 block allocates at most ``HASH_CHUNK_BYTES`` and a row, not 8 times the block."""
    tokens = np.ones((512, 9261), dtype=np.uint8)
    hasher = SplitHasher()
    peak, _ = _numpy_peak(lambda: hasher.update({"tokens": tokens}))
    assert peak <= HASH_CHUNK_BYTES + 8 * 9261 + (64 << 10), f"{peak} B to hash a {tokens.nbytes} B block"


def _reference_hash(columns: dict) -> str:
    """format.md §8 written out: per column sha256 of its int64 values, row-major, in one piece."""
    lines = "".join(
        f"{name}:{hashlib.sha256(np.ascontiguousarray(columns[name], dtype='<i8').tobytes()).hexdigest()}\n"
        for name in sorted(columns)
    )
    return "sha256:" + hashlib.sha256(lines.encode()).hexdigest()


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(0, 300),
    width=st.sampled_from([1, 3, 9261, (HASH_CHUNK_BYTES // 8) + 1]),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int64, np.bool_]),
    cut=st.integers(0, 300),
)
def test_hash_in_chunks_equals_the_hash_of_the_whole(rows, width, dtype, cut):
    """Widening in chunks changes no hash: any rows, widths (one wider than a chunk), dtypes and feeds."""
    rows = min(rows, max(2, (1 << 20) // width))
    values = (np.arange(rows * width) % 7).astype(dtype).reshape(rows, width)
    label = np.arange(rows, dtype=np.int64)
    hasher = SplitHasher()
    cut = min(cut, rows)
    hasher.update({"tokens": values[:cut], "label": label[:cut]})
    hasher.update({"tokens": values[cut:], "label": label[cut:]})
    assert hasher.hexdigest() == _reference_hash({"tokens": values, "label": label})
    strided = SplitHasher()  # a non-contiguous view hashes as its values
    strided.update({"tokens": values[:, ::2]})
    assert strided.hexdigest() == _reference_hash({"tokens": values[:, ::2]})


def test_loaded_split_hash_is_bounded_in_bytes(wide_release, tmp_path):
    """``load_split``'s provenance check hashes a wide split in byte-sized batches."""
    import datasets

    cache = tmp_path / "cache"
    ds = datasets.load_dataset(str(wide_release / "wide"), release_name(WIDE), split="train", cache_dir=str(cache))
    dataset_content_hash(ds)  # imports
    peak, _ = _numpy_peak(lambda: dataset_content_hash(ds))
    assert peak <= 2 * ROW_GROUP_BYTES, f"{peak / 2**20:.0f} MiB to hash {ds.data.nbytes / 2**20:.0f} MiB"


@settings(max_examples=60, deadline=None)
@given(
    x=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 1)), min_size=1, max_size=30),
    y=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 1)), min_size=1, max_size=30),
    weak=st.booleans(),
)
def test_duplicate_counts_are_exact_even_when_fingerprints_collide(x, y, weak):
    """``surplus`` and ``shared`` equal brute-force counts, with the real fingerprint and with one that
    collides for every label (distinct samples of equal fingerprint are compared exactly)."""
    from srhm_datasets.release import duplicates

    def cols(rows):
        return {
            "label": np.array([r[0] for r in rows], dtype=np.int64),
            "synonyms": np.array([[r[1]] for r in rows], dtype=np.uint8),
            "placements": np.array([[r[2]] for r in rows], dtype=np.uint8),
        }

    a, b = cols(x), cols(y)
    with pytest.MonkeyPatch.context() as patch:
        if weak:
            patch.setattr(duplicates, "fingerprint", lambda c: np.asarray(c["label"], dtype=np.uint64))
        fa, fb = np.sort(duplicates.fingerprint(a)), np.sort(duplicates.fingerprint(b))
        assert duplicates.surplus(fa, lambda: [a]) == len(x) - len(set(x))
        assert duplicates.shared(fa, fb, lambda: [a], lambda: [b]) == len(set(x) & set(y))


def test_verify_keeps_eight_bytes_a_row_of_state(tmp_path):
    """Verifying 250000 rows peaks at their sorted fingerprints (8 bytes a row) and one block (its
    numpy arrays: well under half the build's row group at d = 36), not at the 5 copies of
    16-byte ids (80 bytes a row) that the duplicate checks made."""
    rows = 250000
    cfg = SRHMConfig(L=2, s=2, s0=2, v=8, nc=8, m=8, seed=3, n_train=rows, n_test=1000, n_probe=10)
    build_release([cfg], tmp_path / "rel", progress=False)
    verify_release(tmp_path / "rel")  # imports and caches
    peak, _ = _numpy_peak(lambda: verify_release(tmp_path / "rel"))
    assert peak <= 8 * rows + ROW_GROUP_BYTES // 2, f"{peak / 2**20:.1f} MiB"
