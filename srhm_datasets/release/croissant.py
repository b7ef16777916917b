"""``croissant.json``: Croissant 1.1 JSON-LD metadata of a release (written without mlcroissant).

One ``cr:FileSet`` per (config, split) over ``<config>/<split>-*.parquet`` and one
``cr:RecordSet`` with a field per column: list columns are arrays with their fixed
shape (``[d]``, ``[N]``, probe columns ``[L, d]``). ``mlcroissant`` (the optional
``croissant`` extra) validates the file: ``validate_croissant(path)``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..catalog import RELEASE_VERSION
from ..generate import column_dtypes
from ..probe import PROBE_COLUMNS, split_columns
from .card import BIBTEX, PRETTY_NAME, REPO_PLACEHOLDER

CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
CROISSANT_TYPES = {"uint8": "cr:UInt8", "uint16": "cr:UInt16", "uint32": "cr:UInt32", "int64": "cr:Int64"}
DESCRIPTIONS = {
    "tokens": "input string, blank = v",
    "label": "root class",
    "latents": "symbol of each internal node, heap order",
    "synonyms": "production index of each internal node",
    "placements": "placement index of each internal node",
    "synonym_tokens": "tokens after a synonym exchange at level l (index l-1)",
    "diffeo_tokens": "tokens after a diffeomorphism at level l (index l-1)",
}


def _field(rs_id: str, fs_id: str, column: str, dtype: str, shape: str | None) -> dict:
    field = {
        "@type": "cr:Field",
        "@id": f"{rs_id}/{column}",
        "name": column,
        "description": DESCRIPTIONS[column],
        "dataType": CROISSANT_TYPES[dtype],
        "source": {"fileSet": {"@id": fs_id}, "extract": {"column": column}},
    }
    if shape is not None:
        field["isArray"] = True
        field["arrayShape"] = shape
    return field


def croissant_document(results, release_version: str | None = None, repo_id: str | None = None) -> dict:
    """The Croissant JSON-LD of built configs (``results`` from ``build_config``)."""
    distribution, record_sets = [], []
    for res in results:
        cfg = res.cfg
        dtypes = {k: str(v) for k, v in column_dtypes(cfg).items()}
        for split in res.splits:
            fs_id = f"{res.name}/{split}"
            rs_id = f"{res.name}_{split}"
            distribution.append(
                {
                    "@type": "cr:FileSet",
                    "@id": fs_id,
                    "name": fs_id,
                    "description": f"{split} split of {cfg.name}",
                    "encodingFormat": "application/x-parquet",
                    "includes": f"{res.name}/{split}-*.parquet",
                }
            )
            fields = []
            for column in split_columns(split):
                if column in PROBE_COLUMNS:
                    dtype, shape = dtypes["tokens"], f"{cfg.L},{cfg.d}"
                else:
                    dtype = dtypes[column]
                    shape = None if column == "label" else str(cfg.d if column == "tokens" else cfg.num_nodes)
                fields.append(_field(rs_id, fs_id, column, dtype, shape))
            record_sets.append(
                {
                    "@type": "cr:RecordSet",
                    "@id": rs_id,
                    "name": rs_id,
                    "description": (
                        f"{cfg.name}, split {split}: {res.splits[split].num_rows} rows, "
                        f"{res.splits[split].content_hash}"
                    ),
                    "field": fields,
                }
            )
    repo = repo_id or REPO_PLACEHOLDER
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": "srhm",
        "description": f"{PRETTY_NAME}: synthetic hierarchical classification data (Tomasini & Wyart, ICML 2024).",
        "conformsTo": "http://mlcommons.org/croissant/1.1",
        "citeAs": BIBTEX,
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "url": f"https://huggingface.co/datasets/{repo}",
        "version": release_version or RELEASE_VERSION,
        "distribution": distribution,
        "recordSet": record_sets,
    }


def write_croissant(root: Path, results, release_version: str | None = None, repo_id: str | None = None) -> Path:
    """Write ``root/croissant.json``."""
    path = Path(root) / "croissant.json"
    doc = croissant_document(results, release_version, repo_id)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


def validate_croissant(path: Path) -> list[str]:
    """Errors and warnings mlcroissant reports for a croissant.json (needs the ``croissant`` extra)."""
    import mlcroissant as mlc

    try:
        md = mlc.Metadata.from_file(ctx=mlc.Context(), file=str(path))
    except mlc.ValidationError as err:  # raised on errors
        return [str(err)]
    return list(md.issues.errors) + list(md.issues.warnings)
