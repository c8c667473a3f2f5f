"""Running a verify's independent chains at once, and deadlines that come closer while they run.

* ``Lanes``: at most ``os.cpu_count()`` units of work at a time (a test-suite run, one runtime
  check), so parallel runs do not time each other out. ``map`` runs jobs in threads and returns
  their results in the jobs' order; with ``parallel=False`` it runs them one after another in
  the caller's thread. Only the leaves take a slot (``slot()``); a thread waiting on others
  holds none, so nesting cannot deadlock.
* ``Limit``: a command's time limit that another chain may shorten after it started
  (``process.run(limit=...)``): the base runs get a bound once the head's suite finished.
* On Ctrl-C (any exception in the caller) every command started here is killed, so the
  worker threads return at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class Lanes:
    def __init__(self, parallel: bool = False, width: int | None = None) -> None:
        self.parallel = parallel
        self.width = max(1, width or os.cpu_count() or 1) if parallel else 1
        self._slots = threading.BoundedSemaphore(self.width)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the ``width`` slots while the block runs (a leaf of work)."""
        if not self.parallel:
            yield
            return
        with self._slots:
            yield

    def map(self, jobs: Sequence[Callable[[], T]]) -> list[T]:
        """Every job's result, in the jobs' order (a job's exception is raised, the first in
        order); one after another when not parallel. The first job runs in the caller's
        thread (what it holds there, a browser, stays usable), the others in threads."""
        if not self.parallel or len(jobs) < 2:
            return [job() for job in jobs]
        pool = ThreadPoolExecutor(max_workers=len(jobs) - 1, thread_name_prefix="shipyard-lane")
        try:
            futures = [pool.submit(job) for job in jobs[1:]]
            first = jobs[0]()
            return [first, *(f.result() for f in futures)]
        except BaseException:
            from shipyard import process

            process.kill_started()  # Ctrl-C or a failed job: the others' commands end now
            raise
        finally:
            pool.shutdown(wait=True)


class Limit:
    """A time limit in seconds from a command's own start, which may be shortened later."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: float | None = None
        """The shortened limit, once ``cut``."""
        self.why: str | None = None
        self.stopped = False

    def cut(self, seconds: float, why: str) -> None:
        """From now on the command gets at most ``seconds`` from its own start."""
        with self._lock:
            self.seconds, self.why = seconds, why

    def stop(self, why: str) -> None:
        """Stop the command now (one not started yet need not start)."""
        with self._lock:
            self.stopped, self.why = True, why

    def allowed(self, started: float, timeout: float) -> float:
        """Seconds the command started at ``started`` may run in all: ``timeout`` at most."""
        with self._lock:
            if self.stopped:
                return time.monotonic() - started
            return timeout if self.seconds is None else min(timeout, self.seconds)
