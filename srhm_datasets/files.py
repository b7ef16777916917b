"""Writing files and folders without losing anything: atomic files, owned folders.

Two rules every writer of the package follows:

- **Atomic files.** :func:`atomic_write` writes into a temporary file in the same folder
  and renames it into place, so a reader never sees half a file; the file gets the
  permissions of an ordinary file made under the umask (``0o666 & ~umask``), like every
  other file the package writes.
- **Owned folders.** A folder the package writes (a release, a run, a learning curve, a
  leaderboard) carries a marker file, :data:`MARKER`, naming its kind and the top-level
  entries the package writes there. :func:`check_output_folder` is called before any
  work starts: it refuses the current folder and its parents, a path that is not a
  folder, a non-empty folder without the package's marker (or with another kind's), and,
  when the call would replace content, a folder holding entries the marker does not
  list. Nothing the package did not write is ever replaced or deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

#: Name of the marker file of a folder the package wrote.
MARKER = ".srhm-owner.json"
#: Kinds of folder the package writes.
FOLDER_KINDS = ("release", "run", "learning-curve", "leaderboard", "sweep", "demo")


def umask() -> int:
    """The process umask (from /proc on Linux, else read by setting and restoring it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, content, before_replace=None) -> Path:
    """Write ``path`` atomically: into a temp file in the same folder, then ``os.replace``.

    content: ``str`` (UTF-8 text), ``bytes``, or a callable ``content(f)`` that writes to
    a binary file object ``f`` (``torch.save``, ``fig.savefig(f, format="png")``).
    before_replace: called once the temp file is complete, just before the rename (e.g.
    to retire a file that must not outlive the old content). The parent folder is
    created. The file's mode is ``0o666 & ~umask``. On any error the temp file is removed
    and an existing ``path`` is left untouched. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode() if isinstance(content, str) else content)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_marker(folder: str | Path) -> dict | None:
    """The marker of ``folder`` (``{"kind", "entries"}``), or None when it has none or it is unreadable."""
    try:
        doc = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(doc, dict) and doc.get("kind") in FOLDER_KINDS and isinstance(doc.get("entries"), list)):
        return None
    return doc


def mark_owned(folder: str | Path, kind: str, entries=None) -> None:
    """Mark ``folder`` as written by the package, as a folder of ``kind``.

    entries: the top-level names the package writes there, merged with those already
    recorded; None records every file and folder below it now, as relative POSIX paths
    (for a folder the package has just written whole, e.g. a release before its rename
    into place), so that nothing added later, at any depth, is taken for the package's.
    """
    if kind not in FOLDER_KINDS:
        raise ValueError(f"invalid parameter kind={kind!r}: must be one of {FOLDER_KINDS}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = set((read_marker(folder) or {}).get("entries", []))
    names |= set(_all_entries(folder) if entries is None else entries)
    doc = {"written_by": "srhm_datasets", "kind": kind, "entries": sorted(names)}
    atomic_write(folder / MARKER, json.dumps(doc, indent=1) + "\n")


def _entries(folder: Path) -> list[str]:
    """Top-level names in ``folder``, less the marker and the package's hidden temporary files."""
    return [p.name for p in folder.iterdir() if p.name != MARKER and not _is_temporary(p.name)]


def _all_entries(folder: Path) -> list[str]:
    """Relative POSIX paths of every file and folder below ``folder``, less markers and temporary files."""
    paths = (p.relative_to(folder) for p in folder.rglob("*"))
    return [r.as_posix() for r in paths if not any(part == MARKER or _is_temporary(part) for part in r.parts)]


def _foreign(folder: Path, listed: set[str], prefix: str = "") -> list[str]:
    """Entries below ``folder`` that srhm's markers do not account for, as relative paths.

    An entry is accounted for when its path is ``listed`` (the marker of the folder being
    checked), or when it is a folder carrying its own marker, whose entries are then checked
    against that marker. A listed folder without a marker is looked into: its entries must be
    listed too (a folder marked by snapshot lists every path) or carry their own markers.
    """
    found = []
    for path in sorted(folder.iterdir()):
        if path.name == MARKER or _is_temporary(path.name):
            continue
        rel = prefix + path.name
        inner = read_marker(path) if path.is_dir() and not path.is_symlink() else None
        if inner is not None:
            found += [f"{rel}/{x}" for x in _foreign(path, set(inner["entries"]))]
        elif rel not in listed:
            found.append(rel)
        elif path.is_dir() and not path.is_symlink():
            found += _foreign(path, listed, rel + "/")
    return found


def _is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary file of :func:`atomic_write` (``.<name>.<random>.tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def check_output_folder(path: str | Path, kind: str, *, replace: bool, parameter: str = "out") -> Path:
    """Check, before any work, that the package may write a folder of ``kind`` at ``path``.

    Refused with ``ValueError`` naming ``parameter``: the current folder or one of its
    parents; an existing path that is not a folder; a non-empty folder without the
    package's marker, or with the marker of another kind. With ``replace=True`` (the
    call will replace content, e.g. ``--overwrite``), also a folder holding entries the
    markers do not account for, at any depth (files someone else put there, see
    ``_foreign``). A missing or empty folder is always accepted. Returns the absolute path.
    """
    path = Path(path).absolute()
    here = Path.cwd().resolve()
    real = path.resolve()
    if real == here or real in here.parents:
        raise ValueError(
            f"invalid parameter {parameter}={str(path)!r}: must not be the current folder or one of its parents "
            f"(choose a new folder, e.g. {parameter}=./{kind})"
        )
    if not path.exists():
        return path
    if not path.is_dir():
        raise ValueError(f"invalid parameter {parameter}={str(path)!r}: exists and is not a folder")
    names = _entries(path)
    marker = read_marker(path)
    if marker is None:
        if names:
            raise ValueError(
                f"invalid parameter {parameter}={str(path)!r}: a non-empty folder that srhm did not write "
                f"(no {MARKER}); choose a new or empty folder"
            )
        return path
    if marker["kind"] != kind:
        raise ValueError(
            f"invalid parameter {parameter}={str(path)!r}: holds a {marker['kind']} written by srhm, "
            f"not a {kind}; choose another folder"
        )
    foreign = _foreign(path, set(marker["entries"])) if replace else []
    if foreign:
        raise ValueError(
            f"invalid parameter {parameter}={str(path)!r}: holds entries srhm did not write ({', '.join(foreign[:5])}"
            f"{', ...' if len(foreign) > 5 else ''}); refusing to replace it; move them away or choose another folder"
        )
    return path


def replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out``, replacing an old ``out`` by renames only.

    The caller has checked ``out`` with :func:`check_output_folder` (``replace=True``).
    """
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / out.name)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["MARKER", "atomic_write", "check_output_folder", "mark_owned", "read_marker", "replace_dir", "umask"]
