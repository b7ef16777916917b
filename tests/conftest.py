"""Test-suite settings.

Hypothesis: no per-example deadline (CI machines are shared and noisy; speed belongs in
benchmarks/) and, under CI, a derandomised search so a run is reproducible.
"""

import os

from hypothesis import settings

settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
