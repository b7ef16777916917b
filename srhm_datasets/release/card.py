"""The release card ``README.md``: YAML header (configs, dataset_info) + body from ``cards/``.

HF configs of a release: ``<name>`` with splits train/test and ``<name>_probe`` with
split probe (two more columns, hence a config of its own); both read the Parquet
files under ``<name>/``. Splits of 0 rows get no entry. ``demo`` (when built) is
the default config, else the first one built.
"""

from __future__ import annotations

import re
import string
from importlib import resources
from pathlib import Path

import yaml

from ..catalog import DEFAULT_CONFIG, RELEASE_VERSION
from ..config import decimal_string
from ..probe import PROBE_SUFFIX
from ..version import __version__
from .features import yaml_features

#: A row of the card's content hash table: | `config` | split (or rules) | rows | `sha256:...` |
HASH_ROW = re.compile(
    r"^\|\s*`(?P<config>[^`|]+)`\s*\|\s*(?P<item>\w+)\s*\|\s*(?P<rows>\d*)\s*\|\s*`(?P<hash>[^`|]*)`\s*\|\s*$",
    re.MULTILINE,
)

PRETTY_NAME = "Sparse Random Hierarchy Model (SRHM) datasets"
LICENSE = "cc-by-4.0"
TAGS = ["synthetic", "srhm", "random-hierarchy-model", "hierarchical-data", "learning-theory", "sample-complexity"]
REPO_PLACEHOLDER = "ORG/srhm"

BIBTEX = """@inproceedings{tomasini2024srhm,
  title     = {How Deep Networks Learn Sparse and Hierarchical Data: the Sparse Random Hierarchy Model},
  author    = {Tomasini, Umberto M. and Wyart, Matthieu},
  booktitle = {Proceedings of the 41st International Conference on Machine Learning},
  series    = {Proceedings of Machine Learning Research},
  volume    = {235},
  year      = {2024},
  eprint    = {2404.10727},
  archivePrefix = {arXiv}
}

@article{cagnetta2024rhm,
  title   = {How Deep Neural Networks Learn Compositional Data: The Random Hierarchy Model},
  author  = {Cagnetta, Francesco and Petrini, Leonardo and Tomasini, Umberto M. and
             Favero, Alessandro and Wyart, Matthieu},
  journal = {Physical Review X},
  volume  = {14},
  number  = {3},
  pages   = {031001},
  year    = {2024},
  doi     = {10.1103/PhysRevX.14.031001},
  eprint  = {2307.02129},
  archivePrefix = {arXiv}
}"""

SIZE_CATEGORIES = [
    (10**3, "n<1K"),
    (10**4, "1K<n<10K"),
    (10**5, "10K<n<100K"),
    (10**6, "100K<n<1M"),
    (10**7, "1M<n<10M"),
    (10**8, "10M<n<100M"),
    (10**9, "100M<n<1B"),
]


def size_category(n: int) -> str:
    """The Hub's size category of a number of examples."""
    return next((cat for bound, cat in SIZE_CATEGORIES if n < bound), "n>1B")


def hf_configs(result) -> list[tuple[str, list[str]]]:
    """(HF config name, splits) pairs of one built config, skipping empty ones."""
    base = [s for s in ("train", "test") if s in result.splits]
    out = [(result.name, base)] if base else []
    if "probe" in result.splits:
        out.append((result.name + PROBE_SUFFIX, ["probe"]))
    return out


def default_config(results) -> str:
    """The release's default HF config: ``DEFAULT_CONFIG`` when built, else the first config."""
    names = [r.name for r in results]
    return DEFAULT_CONFIG if DEFAULT_CONFIG in names else names[0]


def card_header(results) -> dict:
    """The YAML header of the card as a dict (``configs`` and ``dataset_info`` included)."""
    default = default_config(results)
    configs, infos = [], []
    for res in results:
        cfg = res.cfg
        for hf_name, splits in hf_configs(res):
            entry = {
                "config_name": hf_name,
                "data_files": [{"split": s, "path": f"{res.name}/{s}-*.parquet"} for s in splits],
            }
            if hf_name == default:
                entry["default"] = True
            configs.append(entry)
            feature_split = "probe" if splits == ["probe"] else "train"
            infos.append(
                {
                    "config_name": hf_name,
                    "description": (
                        f"SRHM {cfg.name} (L={cfg.L} s={cfg.s} s0={cfg.s0} v={cfg.v} nc={cfg.nc} m={cfg.m} "
                        f"sparsity {cfg.sparsity} seed {cfg.seed}); rules {res.rules['rules_hash']}"
                    ),
                    "features": yaml_features(cfg, feature_split),
                    "splits": [
                        {"name": s, "num_bytes": res.splits[s].num_bytes, "num_examples": res.splits[s].num_rows}
                        for s in splits
                    ],
                    "download_size": sum(res.splits[s].download_size for s in splits),
                    "dataset_size": sum(res.splits[s].num_bytes for s in splits),
                }
            )
    largest = max(sum(s.num_rows for s in r.splits.values()) for r in results)
    return {
        "license": LICENSE,
        "pretty_name": PRETTY_NAME,
        "task_categories": ["text-classification"],
        "tags": TAGS,
        "size_categories": [size_category(largest)],
        "annotations_creators": ["machine-generated"],
        "language_creators": ["machine-generated"],
        "source_datasets": ["original"],
        "configs": configs,
        "dataset_info": infos,
    }


def _params_table(results) -> str:
    rows = [
        "| config | canonical name | L | s | s0 | v | nc | m | sparsity | seed | d | N | K | P_max "
        "| train | test | probe |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        c, sz = r.cfg, r.cfg.split_sizes()
        rows.append(
            f"| `{r.name}` | `{c.name}` | {c.L} | {c.s} | {c.s0} | {c.v} | {c.nc} | {c.m} | {c.sparsity} | {c.seed} "
            f"| {c.d} | {c.num_nodes} | {c.placements_per_node} | {decimal_string(c.data_space_size)} "
            f"| {sz['train']} | {sz['test']} | {sz['probe']} |"
        )
    return "\n".join(rows)


def _hash_table(results) -> str:
    rows = ["| config | split | rows | content hash |", "| --- | --- | --- | --- |"]
    for r in results:
        for split, info in r.rules["splits"].items():
            rows.append(f"| `{r.name}` | {split} | {info['num_rows']} | `{info['content_hash']}` |")
        rows.append(f"| `{r.name}` | rules | | `{r.rules['rules_hash']}` |")
    return "\n".join(rows)


def _undefined_notes(results) -> str:
    notes = []
    for r in results:
        if "probe" not in r.splits:
            continue
        for column, ok in r.rules["probe"]["defined"].items():
            if not ok:
                why = "m = 1: no other synonym" if column == "synonym_tokens" else "K = 1: no other placement"
                quantity = "synonym sensitivity S" if column == "synonym_tokens" else "diffeomorphism sensitivity D"
                notes.append(
                    f"- `{r.name}`: `{column}` holds the unperturbed tokens ({why}); the {quantity} is "
                    "undefined for this config."
                )
    if not notes:
        return "\nEvery config here supports both forced perturbations (m >= 2 and K >= 2).\n"
    return (
        "\nWhere a forced change is impossible the column holds the unperturbed tokens:\n\n" + "\n".join(notes) + "\n"
    )


def render_card(results, release_version: str | None = None, repo_id: str | None = None) -> str:
    """The card text for built configs (``results`` from ``build_config``)."""
    version = release_version or RELEASE_VERSION
    header = yaml.safe_dump(card_header(results), sort_keys=False, allow_unicode=True, width=1000)
    template = string.Template(resources.files("srhm_datasets").joinpath("cards/dataset_card.md").read_text("utf-8"))
    return template.substitute(
        yaml=header,
        pretty_name=PRETTY_NAME,
        generator_version=__version__,
        release_version=version,
        repo_id=repo_id or REPO_PLACEHOLDER,
        default_config=default_config(results),
        params_table=_params_table(results),
        hash_table=_hash_table(results),
        undefined_notes=_undefined_notes(results),
        bibtex=BIBTEX,
    )


def write_card(root: Path, results, release_version: str | None = None, repo_id: str | None = None) -> Path:
    """Write ``root/README.md``."""
    path = Path(root) / "README.md"
    path.write_text(render_card(results, release_version, repo_id), encoding="utf-8")
    return path


#: ``yaml.safe_load``'s loader, in C when PyYAML has libyaml (a catalog card's header is ~10^4 lines:
#: every ``load_split`` of a folder reads it).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_header(path: Path) -> dict:
    """The YAML header of a card file (``ValueError`` without one; ``yaml.YAMLError`` if it does not parse)."""
    text = Path(path).read_text(encoding="utf-8")
    if not text.startswith("---\n") or "\n---\n" not in text[3:]:
        raise ValueError(f"invalid card {path}: no YAML header between two '---' lines")
    end = text.index("\n---\n", 3)
    return yaml.load(text[4 : end + 1], Loader=_SAFE_LOADER)
