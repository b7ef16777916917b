"""Helpers for tests that start real ``srhm`` processes and check that their workers end with them."""

from __future__ import annotations

import os
import signal
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
