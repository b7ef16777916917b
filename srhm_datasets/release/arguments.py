"""Checks of the release layer's arguments, made before any work (and before any network call).

Each raises the package's standard errors naming the parameter (format.md §1.4):
``TypeError`` (``config.ParameterTypeError``) for a value of the wrong type, ``ValueError``
(``invalid parameter name=value: must satisfy bound``) for a value out of bounds. Free text
that ends up in published files (the repo id and the release version in the card and
``croissant.json``) is checked here too.
"""

from __future__ import annotations

import os
import re

from ..config import require, require_type

#: A release tag on the Hub: ``vX.Y.Z``.
TAG_RE = re.compile(r"^v\d+\.\d+\.\d+$")
#: A release version in the card: ``X.Y.Z`` (its tag is ``vX.Y.Z``).
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


def require_path(value, name: str) -> None:
    """A folder or repo argument: a ``str`` or ``os.PathLike`` (``TypeError`` otherwise)."""
    require_type(value, (str, os.PathLike), name, "a path (str or os.PathLike)")


def check_repo_id(repo_id, name: str = "repo") -> str:
    """A Hub dataset repo id ``ORG/NAME`` as ``huggingface_hub.utils.validate_repo_id`` accepts it."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    require_type(repo_id, str, name, "a Hub repo id ORG/NAME (str)")
    try:
        validate_repo_id(repo_id)
        valid = "/" in repo_id
    except HFValidationError:
        valid = False
    require(valid, name, repo_id, "a Hub repo id ORG/NAME (letters, digits, '-', '_', '.'; at most 96 characters)")
    return repo_id


def check_tag(tag, name: str = "tag") -> str:
    """A release tag ``vX.Y.Z``."""
    require_type(tag, str, name, "a release tag vX.Y.Z (str)")
    require(bool(TAG_RE.match(tag)), name, tag, "the form vX.Y.Z (e.g. v1.0.0)")
    return tag


def check_release_version(version, name: str = "release_version") -> str:
    """A release version ``X.Y.Z`` (the card writes its tag as ``vX.Y.Z``)."""
    require_type(version, str, name, "a release version X.Y.Z (str)")
    require(bool(VERSION_RE.match(version)), name, version, "the form X.Y.Z without a leading v (e.g. 1.0.0)")
    return version


__all__ = ["check_release_version", "check_repo_id", "check_tag", "require_path"]
