"""Process pools that never outlive their use: for the block workers of ``srhm build`` (``release.build``)
and the local jobs of ``srhm sweep`` (``sweep.executors``).

:func:`process_pool` is a ``concurrent.futures`` pool of spawned workers (torch and numpy start clean
in each) that

- ends its workers at once when the body raises, a ``SystemExit`` from SIGTERM / SIGHUP
  (``cli._exit_on_signal``) or a ``KeyboardInterrupt`` included: the caller does not wait for the
  running tasks to finish;
- has workers that ignore SIGINT (Ctrl-C reaches the whole process group; the parent alone handles
  it) and end themselves when the parent dies (a SIGKILLed parent leaves no orphan running on).

No torch here: this module sits below everything that uses it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor


@contextlib.contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` spawned processes; on leaving, shut down after the tasks finish, or, when the
    body raised, terminate the workers first (module docstring)."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init)
    try:
        yield pool
    except BaseException:
        stop_pool(pool, terminate=True)
        raise
    stop_pool(pool, terminate=False)


def stop_pool(pool: ProcessPoolExecutor | None, terminate: bool) -> None:
    """Shut ``pool`` down and wait for its workers; ``terminate``: end them now (error or interrupt)."""
    if pool is None:
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    if terminate:
        for process in processes:
            process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)
    for process in processes:
        process.join()


def _worker_init() -> None:
    """Worker initializer: ignore SIGINT; end when the parent process has exited."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(sentinel: int) -> None:
    """Wait until ``sentinel`` (the parent's) is ready, that is the parent has exited, then end this process."""
    multiprocessing.connection.wait([sentinel])
    os._exit(1)
