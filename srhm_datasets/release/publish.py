"""``publish_release``: upload a release folder to a Hub dataset repo as one commit, then tag it.

Steps: check the tag (``vX.Y.Z``) and the folder (README.md, rules/); create the
dataset repo if missing; refuse if the tag exists (tags are immutable releases);
``upload_folder`` in one commit, deleting remote files the folder does not have (so
no stale shard matches a ``<config>/<split>-*`` pattern); ``create_tag`` on that
commit. The token comes from the user's login or ``HF_TOKEN`` through
``huggingface_hub`` and is never printed or logged here.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

TAG_RE = re.compile(r"^v\d+\.\d+\.\d+$")
REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


class TagExistsError(ValueError):
    """The release tag already exists on the repo; tags are never moved."""


@dataclasses.dataclass
class PublishResult:
    repo_id: str
    tag: str
    commit: str
    url: str


def check_folder(folder: Path) -> None:
    """Raise ValueError unless ``folder`` looks like a complete release."""
    if not (folder / "README.md").is_file() or not any((folder / "rules").glob("*.json")):
        raise ValueError(
            f"invalid parameter folder={str(folder)!r}: not a complete release (needs README.md and rules/*.json; "
            "build one with `srhm build`)"
        )


def publish_release(folder: str | Path, repo_id: str, tag: str, *, api=None, private: bool = False,
                    message: str | None = None) -> PublishResult:
    """Upload ``folder`` to the dataset repo ``repo_id`` and tag the commit ``tag``.

    ``api``: an ``HfApi`` (default: ``HfApi()``, which finds the user's token).
    Raises ``TagExistsError`` if the tag exists, before uploading anything.
    """
    folder = Path(folder)
    if not TAG_RE.match(tag):
        raise ValueError(f"invalid parameter tag={tag!r}: must look like vX.Y.Z (e.g. v1.0.0)")
    if not REPO_RE.match(repo_id):
        raise ValueError(f"invalid parameter repo={repo_id!r}: must be ORG/NAME")
    check_folder(folder)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
    refs = api.list_repo_refs(repo_id, repo_type="dataset")
    if any(t.name == tag for t in refs.tags):
        raise TagExistsError(f"invalid parameter tag={tag!r}: already exists on {repo_id}; release tags are never moved")
    commit = api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        commit_message=message or f"Release {tag}",
        delete_patterns="*",  # mirror the folder; .gitattributes is always kept
    )
    api.create_tag(repo_id, tag=tag, repo_type="dataset", revision=commit.oid, tag_message=f"SRHM data release {tag}")
    return PublishResult(repo_id, tag, commit.oid, f"{api.endpoint}/datasets/{repo_id}/tree/{tag}")
