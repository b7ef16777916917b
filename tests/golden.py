"""The golden hashes that pin the generator's output bits (format.md §8): a change to one is a new
generator version, and published data would change. Update only on purpose."""

from __future__ import annotations

from srhm_datasets import SRHMConfig, generate
from srhm_datasets.hashing import content_hash

# Golden content hashes (format.md §8 hash of generate's columns). A change here is a new
# generator version: published data would change. Update only on purpose.
GOLDEN = [
    (
        "A_L2_s2_s0-1_v4_nc4_m4_seed0",
        "train",
        0,
        1000,
        "sha256:3448c1d3f76edb7a48697334eaac4abde5ddd5efc65fb02ead28b0fea7d427c3",
    ),
    (
        "A_L2_s2_s0-2_v10_nc10_m10_seed1",
        "test",
        0,
        2000,
        "sha256:6acd195a737f900d422684b32d9b84984193ff2762e0514a7171b6e460029a84",
    ),
    (
        "B_L2_s2_s0-2_v10_nc10_m10_seed1",
        "train",
        5000,
        6000,
        "sha256:5ff1368f8088cf8bb7442a82523c95689c694b5737a542a661bf5fe24b7147c2",
    ),
    (
        "A_L4_s2_s0-1_v16_nc16_m16_seed0",
        "train",
        0,
        500,
        "sha256:96f40c3b4fbc4d0e050d31bc9ae3f33b64d6b72b54a5491df30e9d234e920a20",
    ),
    (
        "B_L3_s3_s0-2_v10_nc10_m100_seed3",
        "probe",
        0,
        300,
        "sha256:263900a209e41969c427a456247cede332d37086bde376f8789759f6187ee457",
    ),
    (
        "A_L1_s2_s0-0_v2_nc2_m1_seed0",
        "train",
        0,
        2,
        "sha256:92a481dca11937ea9612bebf10c3211f4c7ed46d86a38b0341dc8c252121a777",
    ),
]

#: The hash of ``perturb``'s columns (synonym and diffeo, levels 1 and 2) of the first 500 probe rows of
#: PERTURBATION_CONFIG.
PERTURBATION_CONFIG = "A_L2_s2_s0-2_v10_nc10_m10_seed1"
PERTURBATION_HASH = "sha256:bfdd0f4443cffb0af99e3e493aa1cc04c305defcff06640fc9e2a9caba2ea353"


def perturbation_hash(perturb) -> str:
    """The content hash of ``perturb(cfg, batch, kind, level)`` (numpy's or another implementation's) on
    the golden perturbation's rows."""
    cfg = SRHMConfig.from_name(PERTURBATION_CONFIG)
    batch = generate(cfg, "probe", 0, 500)
    return content_hash(
        {f"{kind}_{level}": perturb(cfg, batch, kind, level) for kind in ("synonym", "diffeo") for level in (1, 2)}
    )
