"""An in-process fake of the Hugging Face Hub HTTP API, for tests without network.

``FakeHub`` keeps repos in memory (refs -> commits -> {path: bytes}) and answers
the endpoints ``huggingface_hub`` 2.x and ``datasets`` use to create a repo, commit
(regular uploads), tag, list refs and trees, and download files. ``install``
routes every ``huggingface_hub`` request to it (``set_client_factory`` with an
``httpx2.MockTransport``) and points both libraries' import-time constants at a
fake endpoint and a fresh ``HF_HOME``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote

import httpx2

ENDPOINT = "https://fake-hub.invalid"
_REPO = r"(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)"
_counter = itertools.count()


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    private: bool = False

    def resolve(self, rev: str) -> str | None:
        rev = unquote(rev)
        if rev in self.branches:
            return self.branches[rev]
        if rev in self.tags:
            return self.tags[rev]
        return rev if rev in self.commits else None

    def commit(self, files: dict[str, bytes], branch: str = "main") -> str:
        sha = hashlib.sha1(f"commit-{next(_counter)}".encode()).hexdigest()
        self.commits[sha] = files
        self.branches[branch] = sha
        return sha


class FakeHub:
    """The fake server; ``handler`` is an ``httpx2.MockTransport`` handler."""

    def __init__(self, endpoint: str = ENDPOINT) -> None:
        self.endpoint = endpoint
        self.repos: dict[tuple[str, str], Repo] = {}
        self.log: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.auth_headers: list[str | None] = []
        self._lock = threading.Lock()

    # ---- helpers ------------------------------------------------------------
    def _json(self, data, status: int = 200, headers: dict | None = None) -> httpx2.Response:
        return httpx2.Response(status, json=data, headers=headers or {})

    def _error(self, status: int, code: str, message: str) -> httpx2.Response:
        return httpx2.Response(
            status, json={"error": message}, headers={"X-Error-Code": code, "X-Error-Message": message}
        )

    def _repo(self, kind: str, repo_id: str) -> Repo | None:
        return self.repos.get((kind, repo_id))

    @staticmethod
    def _entries(files: dict[str, bytes], path: str, recursive: bool) -> list[dict] | None:
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in files):
            return None
        out, dirs = [], set()
        for p in sorted(files):
            if not p.startswith(prefix):
                continue
            rest = p[len(prefix) :]
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    dirs.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                out.append({"type": "file", "path": p, "size": len(files[p]), "oid": git_blob_sha(files[p])})
        out += [{"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest()} for d in sorted(dirs)]
        return out

    # ---- the handler ----------------------------------------------------------
    def handler(self, request: httpx2.Request) -> httpx2.Response:
        with self._lock:
            path = request.url.path
            self.log.append((request.method, path))
            self.auth_headers.append(request.headers.get("authorization"))
            response = self._route(request, path)
            if response is None:
                self.unhandled.append((request.method, path))
                response = self._error(404, "EntryNotFound", f"fake hub: no route for {request.method} {path}")
            return response

    def _route(self, request: httpx2.Request, path: str) -> httpx2.Response | None:
        method = request.method
        query = parse_qs(request.url.query.decode() if isinstance(request.url.query, bytes) else request.url.query)
        if method == "POST" and path == "/api/repos/create":
            body = json.loads(request.content)
            kind = body.get("type", "model") + "s"
            repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
            url = f"{self.endpoint}/{'' if kind == 'models' else kind + '/'}{repo_id}"
            if (kind, repo_id) in self.repos:
                return self._json({"error": "You already created this repo", "url": url}, 409)
            repo = Repo(private=bool(body.get("private")))
            repo.commit({".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"})
            self.repos[(kind, repo_id)] = repo
            return self._json({"url": url, "name": repo_id})
        if method == "POST" and path == "/api/validate-yaml":
            return self._json({"errors": [], "warnings": []})
        m = re.match(rf"^/api/{_REPO}(?P<rest>/.*)?$", path)
        if m:
            return self._api(request, m["type"], m["repo"], m["rest"] or "", query)
        m = re.match(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)$", path)
        if m:
            return self._resolve(request, m["type"], m["repo"], m["rev"], m["file"])
        return None

    def _api(self, request, kind, repo_id, rest, query) -> httpx2.Response | None:
        repo = self._repo(kind, repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        method = request.method
        m = re.match(r"^(?:/revision/(?P<rev>[^/]+))?$", rest)
        if m and method == "GET":
            sha = repo.resolve(m["rev"] or "main")
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Revision {m['rev']} not found")
            files = repo.commits[sha]
            return self._json(
                {
                    "id": repo_id,
                    "sha": sha,
                    "private": repo.private,
                    "disabled": False,
                    "gated": False,
                    "siblings": [{"rfilename": p, "size": len(b)} for p, b in sorted(files.items())],
                    "tags": [],
                    "downloads": 0,
                    "likes": 0,
                    "lastModified": "2026-01-01T00:00:00.000Z",
                }
            )
        if rest == "/refs" and method == "GET":

            def refs(d, kind_):
                return [{"name": k, "ref": f"refs/{kind_}/{k}", "targetCommit": v} for k, v in sorted(d.items())]

            return self._json(
                {
                    "branches": refs(repo.branches, "heads"),
                    "tags": refs(repo.tags, "tags"),
                    "converts": [],
                    "pullRequests": [],
                }
            )
        m = re.match(r"^/preupload/(?P<rev>[^/]+)$", rest)
        if m and method == "POST":
            sha = repo.resolve(m["rev"])
            files = repo.commits.get(sha, {}) if sha else {}
            body = json.loads(request.content)
            out = []
            for f in body["files"]:
                entry = {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                if f["path"] in files:
                    entry["oid"] = git_blob_sha(files[f["path"]])
                out.append(entry)
            return self._json({"files": out, "commitOid": sha})
        m = re.match(r"^/commit/(?P<rev>[^/]+)$", rest)
        if m and method == "POST":
            branch = unquote(m["rev"])
            parent = repo.branches.get(branch)
            if parent is None:
                return self._error(404, "RevisionNotFound", f"Branch {branch} not found")
            files = dict(repo.commits[parent])
            for line in request.content.splitlines():
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {p: b for p, b in files.items() if not p.startswith(prefix)}
                elif key == "lfsFile":
                    return self._error(400, "BadRequest", "fake hub: LFS uploads are not supported (use regular)")
            sha = repo.commit(files, branch)
            return self._json(
                {
                    "commitOid": sha,
                    "commitUrl": f"{self.endpoint}/{kind}/{repo_id}/commit/{sha}",
                    "pullRequestUrl": None,
                    "success": True,
                }
            )
        m = re.match(r"^/tag/(?P<rev>[^/]+)$", rest)
        if m and method == "POST":
            body = json.loads(request.content)
            sha = repo.resolve(m["rev"])
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Revision {m['rev']} not found")
            if body["tag"] in repo.tags:
                return self._error(409, "Conflict", f"Tag {body['tag']} already exists")
            repo.tags[body["tag"]] = sha
            return self._json({})
        m = re.match(r"^/tree/(?P<rev>[^/]+)(?P<dir>/.*)?$", rest)
        if m and method == "GET":
            sha = repo.resolve(m["rev"])
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Revision {m['rev']} not found")
            recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
            entries = self._entries(repo.commits[sha], unquote(m["dir"] or ""), recursive)
            if entries is None:
                return self._error(404, "EntryNotFound", f"{m['dir']} does not exist")
            return self._json(entries)
        m = re.match(r"^/paths-info/(?P<rev>[^/]+)$", rest)
        if m and method == "POST":
            sha = repo.resolve(m["rev"])
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Revision {m['rev']} not found")
            files = repo.commits[sha]
            ctype = request.headers.get("content-type", "")
            if "json" in ctype:
                paths = json.loads(request.content).get("paths", [])
            else:
                paths = parse_qs(request.content.decode()).get("paths", [])
            out = []
            for p in paths:
                p = p.strip("/")
                if p in files:
                    out.append({"type": "file", "path": p, "size": len(files[p]), "oid": git_blob_sha(files[p])})
                elif any(f.startswith(p + "/") for f in files):
                    out.append({"type": "directory", "path": p, "oid": hashlib.sha1(p.encode()).hexdigest()})
            return self._json(out)
        return None

    def _resolve(self, request, kind, repo_id, rev, file) -> httpx2.Response:
        repo = self._repo(kind, repo_id)
        if repo is None:
            return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        sha = repo.resolve(rev)
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Revision {rev} not found")
        files = repo.commits[sha]
        if file not in files:
            return self._error(404, "EntryNotFound", f"{file} not found at {rev}")
        data = files[file]
        headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha(data)}"', "Content-Length": str(len(data))}
        if request.method == "HEAD":
            return httpx2.Response(200, headers=headers)
        rng = request.headers.get("range")
        if rng:
            a, _, b = rng.removeprefix("bytes=").partition("-")
            a = int(a)
            b = int(b) if b else len(data) - 1
            part = data[a : b + 1]
            headers.update(
                {"Content-Length": str(len(part)), "Content-Range": f"bytes {a}-{a + len(part) - 1}/{len(data)}"}
            )
            return httpx2.Response(206, content=part, headers=headers)
        return httpx2.Response(200, content=data, headers=headers)


def install(monkeypatch, hf_home) -> FakeHub:
    """Route huggingface_hub/datasets to a new FakeHub with a fresh HF_HOME; undone by monkeypatch."""
    import datasets.config as dconfig
    import huggingface_hub.constants as hconst
    from huggingface_hub import HfFileSystem, hf_api
    from huggingface_hub.utils import _http

    hub = FakeHub()
    hf_home = str(hf_home)
    env = {
        "HF_ENDPOINT": ENDPOINT,
        "HF_HOME": hf_home,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "HF_TOKEN": "hf_fake_token_for_tests",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for name, value in {
        "ENDPOINT": ENDPOINT,
        "HUGGINGFACE_CO_URL_TEMPLATE": ENDPOINT + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": hf_home,
        "HF_HUB_CACHE": f"{hf_home}/hub",
        "HF_ASSETS_CACHE": f"{hf_home}/assets",
        "HF_XET_CACHE": f"{hf_home}/xet",
        "HF_TOKEN_PATH": f"{hf_home}/token",
        "HF_STORED_TOKENS_PATH": f"{hf_home}/stored_tokens",
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
    }.items():
        monkeypatch.setattr(hconst, name, value)
    for name, value in {
        "HF_ENDPOINT": ENDPOINT,
        "HUB_DATASETS_URL": ENDPOINT + "/datasets/{repo_id}/resolve/{revision}/{path}",
        "HF_CACHE_HOME": hf_home,
        "HF_DATASETS_CACHE": Path(hf_home) / "datasets",
        "HF_MODULES_CACHE": Path(hf_home) / "modules",
        "HF_HUB_OFFLINE": False,
        "HF_DATASETS_OFFLINE": False,
    }.items():
        monkeypatch.setattr(dconfig, name, value)
    monkeypatch.setattr(hf_api.api, "endpoint", ENDPOINT)
    HfFileSystem.clear_instance_cache()
    _http.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(hub.handler), follow_redirects=True))
    _http.close_session()
    return hub


def uninstall() -> None:
    """Restore huggingface_hub's default HTTP client (call after the test)."""
    from huggingface_hub import HfFileSystem
    from huggingface_hub.utils import _http

    _http.set_client_factory(_http.default_client_factory)
    _http.close_session()
    HfFileSystem.clear_instance_cache()


def offline(monkeypatch) -> None:
    """``HF_HUB_OFFLINE`` and ``HF_DATASETS_OFFLINE`` set, in the environment and in both libraries' constants."""
    import datasets.config as dconfig
    import huggingface_hub.constants as hconst

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setattr(hconst, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(dconfig, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(dconfig, "HF_DATASETS_OFFLINE", True)


def cut_off(monkeypatch, hub: FakeHub) -> None:
    """A lost network: offline, and the fake Hub's client refusing requests as huggingface_hub's own does."""
    from huggingface_hub.utils import _http

    offline(monkeypatch)
    hooks = {"request": [_http.hf_request_event_hook]}
    _http.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(hub.handler), event_hooks=hooks))
    _http.close_session()
