"""``srhm demo``: the README's main job on a built-in default config.

Generates the splits of the ``demo`` config, checks that they are disjoint, and
prints a few rows and the content hashes.
"""

from __future__ import annotations

import click
import numpy as np

from .catalog import CATALOG
from .generate import generate
from .hashing import content_hash


@click.command()
def demo():
    """Run the main job on the default ``demo`` config."""
    cfg = CATALOG["demo"]
    click.echo(f"config {cfg.name}: d={cfg.d}, P_max={cfg.data_space_size}, sizes {cfg.split_sizes()}")
    splits = {split: generate(cfg, split) for split in ("test", "probe", "train")}
    keys = {split: {tuple(row) for row in np.column_stack([b["label"], b["synonyms"], b["placements"]])} for split, b in splits.items()}
    total = sum(len(k) for k in keys.values())
    union = len(set().union(*keys.values()))
    if union != total:
        raise click.ClickException(f"splits overlap: {total - union} repeated samples")
    click.echo(f"{total} distinct samples across train/test/probe")
    for split, batch in splits.items():
        click.echo(f"{split:<6} {len(batch['label']):>6} rows  {content_hash(batch)}")
