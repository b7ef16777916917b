"""Sweeps: a grid of learning curves from one YAML file, run on a local process pool or on SLURM.

- ``spec``: the sweep file, its declared schema and its validation (``load_sweep``);
- ``plan``: the jobs of a sweep (one learning curve each: stable ids, settings
  fingerprints) and the state of each job read from the sweep folder;
- ``executors``: a ``concurrent.futures`` process pool, or ``submitit`` job arrays on SLURM;
- ``run``: ``run_sweep`` (run the missing jobs, evaluate, leaderboard, P* summary) and
  ``sweep_status``;
- ``cli``: ``srhm sweep FILE --out DIR`` and ``srhm sweep status DIR``.

Example sweep files for the paper's figures: ``srhm_datasets/sweep/examples/``.
"""
