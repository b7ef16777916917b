"""``publish_release``: upload a release folder to a Hub dataset repo as one commit, then tag it.

Steps: check the arguments (repo id, tag ``vX.Y.Z``, a complete folder) and that a token
exists, before any network call (``check_publish``); create the dataset repo if missing;
refuse if the tag exists (tags are immutable releases); ``upload_folder`` in one commit,
deleting remote files the folder does not have (so no stale shard matches a
``<config>/<split>-*`` pattern); ``create_tag`` on that commit. A failed Hub call (no
network, refused token, server error) is a ``HubError`` naming the step, with what to
do. The token comes from the user's login or ``HF_TOKEN`` through ``huggingface_hub``
and is never printed or logged here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import require_type
from ..files import MARKER
from .arguments import check_repo_id, check_tag, require_path

NO_TOKEN = (
    "no Hugging Face token: run `hf auth login` or set HF_TOKEN to a token with write access "
    "to the repo; nothing was uploaded"
)


class TagExistsError(ValueError):
    """The release tag already exists on the repo; tags are never moved."""


class HubError(RuntimeError):
    """A Hub call failed (network, token, server); the message names the step and what to do."""


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


def check_publish(folder, repo_id, tag, api=None) -> Path:
    """Every check that needs no network, in order: folder type, repo id, tag, a complete folder, a token.

    ``TypeError``/``ValueError`` naming the parameter; ``HubError`` when no token is found
    (neither ``api.token`` nor ``huggingface_hub.get_token()``: login or ``HF_TOKEN``).
    Returns the folder as a ``Path``.
    """
    require_path(folder, "folder")
    check_repo_id(repo_id)
    check_tag(tag)
    folder = Path(folder)
    check_folder(folder)
    from huggingface_hub import get_token

    if not (getattr(api, "token", None) or get_token()):
        raise HubError(NO_TOKEN)
    return folder


def network_errors() -> tuple[type[BaseException], ...]:
    """Exception types of a failed Hub call: ``OSError`` (incl. ``HfHubHTTPError``) and the HTTP client's errors."""
    errors: list[type[BaseException]] = [OSError]
    for module in ("httpx2", "httpx"):  # huggingface_hub's HTTP client, whichever is installed
        try:
            errors.append(__import__(module).HTTPError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def _hub_call(step: str, endpoint: str, repo_id: str, call, /, *args, **kwargs):
    """``call(*args, **kwargs)``; a network or HTTP failure becomes one ``HubError`` naming ``step``."""
    try:
        return call(*args, **kwargs)
    except TagExistsError:
        raise
    except network_errors() as err:
        from huggingface_hub.errors import HfHubHTTPError

        status = getattr(getattr(err, "response", None), "status_code", None)
        if isinstance(err, HfHubHTTPError) and status in (401, 403):
            todo = f"check that the token has write access to {repo_id} (`hf auth login` or HF_TOKEN)"
        elif isinstance(err, HfHubHTTPError):
            todo = "the Hub answered with an error; retry later or check the repo on the website"
        else:
            todo = f"check the network connection and HF_ENDPOINT ({endpoint})"
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        raise HubError(f"Hub step {step!r} for {repo_id} failed ({type(err).__name__}: {reason}); {todo}") from None


def publish_release(
    folder: str | Path, repo_id: str, tag: str, *, api=None, private: bool = False, message: str | None = None
) -> PublishResult:
    """Upload ``folder`` to the dataset repo ``repo_id`` and tag the commit ``tag``.

    ``api``: an ``HfApi`` (default: ``HfApi()``, which finds the user's token).
    Arguments and token are checked first (``check_publish``). Raises ``TagExistsError``
    if the tag exists, before uploading anything; ``HubError`` for a failed Hub call.
    """
    folder = check_publish(folder, repo_id, tag, api)
    require_type(private, bool, "private", "a bool")
    if message is not None:
        require_type(message, str, "message", "a commit message (str) or None")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    endpoint = api.endpoint
    _hub_call(
        "create_repo", endpoint, repo_id, api.create_repo, repo_id, repo_type="dataset", exist_ok=True, private=private
    )
    refs = _hub_call("list_repo_refs", endpoint, repo_id, api.list_repo_refs, repo_id, repo_type="dataset")
    if any(t.name == tag for t in refs.tags):
        raise TagExistsError(
            f"invalid parameter tag={tag!r}: already exists on {repo_id}; release tags are never moved"
        )
    commit = _hub_call(
        "upload_folder",
        endpoint,
        repo_id,
        api.upload_folder,
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        commit_message=message or f"Release {tag}",
        delete_patterns="*",  # mirror the folder; .gitattributes is always kept
        ignore_patterns=[MARKER],  # the local owner marker is not part of the release
    )
    _hub_call(
        f"create_tag (commit {commit.oid} is uploaded but untagged)",
        endpoint,
        repo_id,
        api.create_tag,
        repo_id,
        tag=tag,
        repo_type="dataset",
        revision=commit.oid,
        tag_message=f"SRHM data release {tag}",
    )
    return PublishResult(repo_id, tag, commit.oid, f"{endpoint}/datasets/{repo_id}/tree/{tag}")
