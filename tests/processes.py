"""Helpers for tests that start real ``srhm`` processes and check that their workers end with them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
from pathlib import Path


def interruptible() -> None:
    """``preexec_fn`` of a child that a test interrupts with Ctrl-C (SIGINT): the default disposition.

    A suite started as a background job (``nohup``, ``&`` in a non-interactive shell) ignores
    SIGINT, and a child inherits that: ``srhm`` rightly leaves an ignored SIGINT ignored, so
    the test would wait for an interruption that never comes.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def children(pid: int) -> set[int]:
    """Live (non-zombie) child processes of ``pid``, from /proc."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_lock(folder: Path, pid: int, host: str | None = None, start_ticks: str | None = None) -> Path:
    """Write the lock file of the output folder ``folder`` (format.md §13.4) naming process ``pid`` of ``host``
    (default: this host); returns its path."""
    path = folder.parent / f".{folder.name}.srhm-lock"
    holder = {
        "pid": pid,
        "host": host or socket.gethostname(),
        "started": "2026-01-02T03:04:05+00:00",
        "command": "srhm train --out elsewhere",
        "token": "0123456789abcdef",
        "start_ticks": start_ticks,
    }
    path.write_text(json.dumps(holder) + "\n")
    return path


@contextlib.contextmanager
def lock_held_elsewhere(folder: Path, host: str | None = None):
    """``folder``'s lock held by another live process (a ``sleep``) of ``host``; yields its pid."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(["sleep", "120"])
    path = write_lock(folder, proc.pid, host)
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()
        path.unlink(missing_ok=True)


def ended_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
