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
- **One writer per folder.** :func:`claim_output` holds the lock of an output folder for
  a whole command: a lock file ``.<name>.srhm-lock`` beside the folder, created with
  ``O_CREAT | O_EXCL`` and removed at the end, naming its holder (pid, host, start
  time, command line). A second writer is refused at once (:class:`FolderInUse`); the
  lock of a dead process on this host is recovered; a lock from another host is
  reported, never broken. A command that fails removes what it created (a new folder,
  its marker) and keeps finished files. :func:`replace_dir` re-checks the old folder
  when it replaces it and refuses when something srhm did not write appeared there.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import secrets
import shlex
import socket
import sys
import tempfile
import time
import warnings
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
    and an existing ``path`` is left untouched; a write that fails (``OSError``: a full
    disk) is raised as such, naming ``path``, also when ``content`` turned it into another
    exception. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                _write_with(content, f)
            else:
                f.write(content.encode() if isinstance(content, str) else content)
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename is None and err.errno is not None:
            raise OSError(err.errno, err.strerror, str(path)) from None  # name the file that could not be written
        raise
    return path


class _Recorded:
    """A binary file object that remembers the ``OSError`` its ``write`` raised (a library such as torch
    turns a full disk into its own ``RuntimeError``)."""

    def __init__(self, f) -> None:
        self._f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as err:
            self.error = err
            raise

    def __getattr__(self, name):
        return getattr(self._f, name)


def _write_with(content, f) -> None:
    """``content(f)``; when it fails after a write failed (a full disk, a file size limit), that ``OSError``."""
    recorded = _Recorded(f)
    try:
        content(recorded)
    except Exception:
        if recorded.error is not None:
            raise recorded.error from None
        raise


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
    """Whether ``name`` is the package's bookkeeping, never data: a temporary file of :func:`atomic_write`
    (``.<name>.<random>.tmp``) or the lock file of a folder (``.<name>.srhm-lock``, :func:`folder_lock`)."""
    return name.startswith(".") and (name.endswith(".tmp") or name.endswith(LOCK_SUFFIX))


def output_path(path: str | os.PathLike) -> Path:
    """The folder written for the output path ``path``, absolute: the target of a symbolic link (a link to a
    scratch filesystem is kept and written through, never replaced by a folder), else ``path`` itself."""
    path = Path(path).absolute()
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _refusal(path: Path, kind: str, replace: bool, parameter: str) -> str | None:
    """Why the package may not write a folder of ``kind`` at ``path`` (see :func:`check_output_folder`), or None."""
    here = Path.cwd().resolve()
    real = path.resolve()
    if real == here or real in here.parents:
        return f"must not be the current folder or one of its parents (choose a new folder, e.g. {parameter}=./{kind})"
    if not path.exists():
        return None
    if not path.is_dir():
        return "exists and is not a folder"
    marker = read_marker(path)
    if marker is None:
        if _entries(path):
            return f"a non-empty folder that srhm did not write (no {MARKER}); choose a new or empty folder"
        return None
    if marker["kind"] != kind:
        return f"holds a {marker['kind']} written by srhm, not a {kind}; choose another folder"
    foreign = _foreign(path, set(marker["entries"])) if replace else []
    if foreign:
        return (
            f"holds entries srhm did not write ({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); "
            "refusing to replace it; move them away or choose another folder"
        )
    return None


def check_output_folder(path: str | Path, kind: str, *, replace: bool, parameter: str = "out") -> Path:
    """Check, before any work, that the package may write a folder of ``kind`` at ``path``.

    Refused with ``ValueError`` naming ``parameter``: the current folder or one of its
    parents; an existing path that is not a folder; a non-empty folder without the
    package's marker, or with the marker of another kind. With ``replace=True`` (the
    call will replace content, e.g. ``--overwrite``), also a folder holding entries the
    markers do not account for, at any depth (files someone else put there, see
    ``_foreign``). A missing or empty folder is always accepted. Returns the absolute
    folder to write (:func:`output_path`: the target of a symbolic link).
    """
    given = Path(path).absolute()
    why = _refusal(output_path(given), kind, replace, parameter)
    if why is not None:
        raise ValueError(f"invalid parameter {parameter}={str(given)!r}: {why}")
    return output_path(given)


def replace_dir(tmp: Path, out: Path, replace: bool = True) -> None:
    """Move the finished folder ``tmp`` (marked by :func:`mark_owned`) to ``out`` by renames only.

    Called under ``out``'s lock (:func:`claim_output`), ``out`` being a folder, not a link
    (:func:`output_path`). A missing or empty ``out`` is replaced by one rename. Otherwise
    (refused with ``FileExistsError`` when not ``replace``: a folder that appeared since the
    check) the old ``out`` is moved aside and checked again, now, with the rules of
    :func:`check_output_folder` for replacing a folder of ``tmp``'s kind: when anything
    there is not the package's (a file that appeared since the first check), it is moved
    back and ``ValueError`` names it (nothing replaced, ``tmp`` left to the caller).
    Else ``tmp`` takes its place and the old folder's entries the markers account for are
    removed; anything else (appearing in the instant between) is kept, with a warning naming
    where.
    """
    kind = (read_marker(tmp) or {}).get("kind", "")
    try:
        os.rename(tmp, out)  # out missing, or an empty folder (a rename replaces an empty folder)
        return
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    if not replace:
        names = sorted(os.listdir(out))
        raise FileExistsError(
            f"invalid parameter out={str(out)!r}: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''} "
            "appeared in it since the check; nothing replaced"
        )
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old = aside / out.name
    os.rename(out, old)
    why = _refusal(old, kind, replace=True, parameter="out")
    if why is not None:
        os.rename(old, out)
        os.rmdir(aside)
        raise ValueError(f"invalid parameter out={str(out)!r}: {why} (it changed since the first check)")
    os.rename(tmp, out)
    kept = _remove_owned(old, set((read_marker(old) or {}).get("entries", [])))
    if kept:
        warnings.warn(f"kept {', '.join(kept[:5])} of the replaced {out} in {old} (not srhm's)", stacklevel=2)
    else:
        os.rmdir(aside)


def _remove_owned(folder: Path, listed: set[str], prefix: str = "") -> list[str]:
    """Remove what the markers account for below ``folder`` (the entries ``_foreign`` accepts), then the
    folder when nothing else is left in it; returns the relative paths kept."""
    kept = []
    for path in sorted(folder.iterdir()):
        rel = prefix + path.name
        if path.name == MARKER or _is_temporary(path.name):
            continue
        inner = read_marker(path) if path.is_dir() and not path.is_symlink() else None
        if inner is not None:
            kept += [f"{rel}/{x}" for x in _remove_owned(path, set(inner["entries"]))]
        elif rel not in listed:
            kept.append(rel)
        elif path.is_dir() and not path.is_symlink():
            kept += _remove_owned(path, listed, rel + "/")
        else:
            path.unlink()
    if not kept:
        try:
            for path in folder.iterdir():  # the marker and temporary files
                path.unlink()
            folder.rmdir()
        except OSError:
            kept.append(prefix or folder.name)
    return kept


# ---------------------------------------------------------------------------------------
# one writer per folder
# ---------------------------------------------------------------------------------------
#: Name of the lock file of an output folder ``<name>``, beside it: ``.<name>`` + this suffix.
LOCK_SUFFIX = ".srhm-lock"
#: Locks this process holds: (pid, lock path) -> the token written in the lock file.
_HELD: dict[tuple[int, Path], str] = {}


class FolderInUse(RuntimeError):
    """An output folder is being written by another process, which holds its lock (:func:`folder_lock`)."""


def lock_path(out: str | os.PathLike) -> Path:
    """The lock file of the output folder ``out``: ``.<name>.srhm-lock`` beside the folder written (a link's target)."""
    out = output_path(out)
    return out.parent / f".{out.name}{LOCK_SUFFIX}"


def process_exists(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (a zombie does not; unknown counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (PermissionError), or unknown: taken as running
        return True
    try:  # a killed process not yet reaped (a zombie) still answers kill(pid, 0)
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _start_ticks(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat``), None where unknown:
    tells a process from a later one given the same pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _this_holder() -> dict:
    """What a lock file records of its holder: pid, host, start time (UTC), command line, a random token."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(sys.argv)[:1000],
        "token": secrets.token_hex(8),
        "start_ticks": _start_ticks(os.getpid()),
    }


def _read_lock(path: Path) -> dict | None:
    """The holder recorded in the lock file ``path``: None when there is no lock file, {} when it cannot be read."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _is_stale(holder: dict) -> bool:
    """Whether ``holder`` is a process of this host that has ended (its pid gone, or now another process's).
    A holder on another host cannot be checked: never stale."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int) or isinstance(pid, bool):
        return False
    if pid == os.getpid():
        return holder.get("token") not in _HELD.values()
    if not process_exists(pid):
        return True
    ticks = holder.get("start_ticks")
    return ticks is not None and _start_ticks(pid) not in (None, ticks)


def lock_holder(out: str | os.PathLike) -> dict | None:
    """The holder of the lock of the output folder ``out`` (``pid``, ``host``, ``started``, ``command``), or None
    when no process holds it (no lock file, or a stale one)."""
    holder = _read_lock(lock_path(out))
    return None if holder is None or _is_stale(holder) else holder


def _create_lock(path: Path, holder: dict) -> bool:
    """Create the lock file ``path`` holding ``holder`` (``O_CREAT | O_EXCL``: atomic, also on NFSv3 and later);
    False when it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(holder) + "\n")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return True


def _break_stale(path: Path, holder: dict) -> None:
    """Remove the stale lock file ``path`` of ``holder``: renamed aside, then removed if it still is that
    holder's (another process may have recovered it first and taken the lock: its lock is put back)."""
    aside = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if (_read_lock(aside) or {}).get("token") != holder.get("token"):
        with contextlib.suppress(OSError):
            os.link(aside, path)  # a live lock taken meanwhile goes back (unless a newer one is there)
    aside.unlink(missing_ok=True)


def _in_use(out: Path, path: Path, holder: dict, parameter: str) -> FolderInUse:
    if not holder:
        who = "a process that left an unreadable lock file"
    else:
        command = " ".join(str(holder.get("command", "?")).split())
        who = f"process {holder.get('pid')} on {holder.get('host')}, started {holder.get('started')}: {command}"
    here = holder.get("host") == socket.gethostname()
    hint = (
        "wait for it to end"
        if here
        else "if that process has ended, remove the lock file (a lock of another host is never broken)"
    )
    return FolderInUse(f"{parameter}={str(out)!r} is being written by {who} (lock file {path}); {hint}")


@contextlib.contextmanager
def folder_lock(out: str | os.PathLike, parameter: str = "out"):
    """Hold the lock of the output folder ``out`` for the body; yields the folder to write (:func:`output_path`).

    The lock file (:func:`lock_path`) is created atomically with ``O_CREAT | O_EXCL``, holds
    its holder (:func:`_this_holder`) and is removed at the end. Another holder is refused at
    once with :class:`FolderInUse` naming it; the lock of a process of this host that has
    ended (its pid gone or given to a later process) is recovered; a lock of another host is
    reported, never broken. Re-entrant within a process. The parent folders are created.
    """
    out = output_path(out)
    path = lock_path(out)
    key = (os.getpid(), path)
    if key in _HELD:
        yield out
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    holder = _this_holder()
    for attempt in range(50):
        if _create_lock(path, holder):
            break
        found = _read_lock(path)
        if found and _is_stale(found):
            _break_stale(path, found)
        elif found or (found is not None and attempt >= 5):
            raise _in_use(out, path, found, parameter)
        elif found is not None:
            time.sleep(0.02)  # an empty lock file: its holder is writing it
    else:
        raise _in_use(out, path, _read_lock(path) or {}, parameter)
    _HELD[key] = holder["token"]
    try:
        yield out
    finally:
        del _HELD[key]
        if (_read_lock(path) or {}).get("token") == holder["token"]:
            path.unlink(missing_ok=True)


def remove_locks(folder: str | os.PathLike) -> None:
    """Remove the lock of ``folder`` and every lock file below it: for a caller that knows their holders
    have ended (a sweep's SLURM job that left the queue, killed on its node)."""
    folder = output_path(folder)
    for path in [lock_path(folder), *(folder.rglob(f".*{LOCK_SUFFIX}") if folder.is_dir() else [])]:
        path.unlink(missing_ok=True)


def _first_missing(path: Path) -> Path | None:
    """``path`` or its highest ancestor that does not exist (what creating ``path`` creates); None if it exists."""
    if os.path.lexists(path):
        return None
    missing = path
    for parent in path.parents:
        if os.path.lexists(parent):
            return missing
        missing = parent
    return missing


def _undo_new(out: Path, marked: bool, created: Path | None) -> None:
    """After a failed command: remove a marker it added to ``out`` when nothing else is in the folder, then
    ``out`` and the parents it created (``created``: the highest) while they are empty."""
    if not marked and out.is_dir() and not _entries(out):
        (out / MARKER).unlink(missing_ok=True)
    if created is None:
        return
    for folder in (out, *out.parents):
        try:
            folder.rmdir()
        except FileNotFoundError:
            pass
        except OSError:  # not empty
            return
        if folder == created:
            return


@contextlib.contextmanager
def claim_output(path: str | os.PathLike, kind: str, *, replace: bool, parameter: str = "out"):
    """Hold the output folder ``path`` of a command (kind ``kind``) for the body; yields the folder to write.

    Locks it (:func:`folder_lock`; another writer: :class:`FolderInUse`) and checks it under
    the lock (:func:`check_output_folder`). When the body raises (an error, a full or
    read-only disk, Ctrl-C, SIGTERM's ``SystemExit``), what the command created is undone:
    the marker it added when nothing else is in the folder, then the folder and the parents
    it created while empty. Finished files (a learning curve's runs) are kept.
    """
    given = Path(path).absolute()
    out = output_path(given)
    created, marked = _first_missing(out), (out / MARKER).is_file()
    try:
        with folder_lock(out, parameter):
            check_output_folder(given, kind, replace=replace, parameter=parameter)
            try:
                yield out
            except BaseException:
                _undo_new(out, marked, None)
                raise
    except FolderInUse:
        raise
    except BaseException:
        _undo_new(out, True, created)  # the lock file is gone: empty parents can go
        raise


__all__ = [
    "LOCK_SUFFIX",
    "MARKER",
    "FolderInUse",
    "atomic_write",
    "check_output_folder",
    "claim_output",
    "folder_lock",
    "lock_holder",
    "lock_path",
    "mark_owned",
    "output_path",
    "process_exists",
    "read_marker",
    "remove_locks",
    "replace_dir",
    "umask",
]
