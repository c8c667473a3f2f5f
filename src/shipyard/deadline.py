"""A wall-clock bound on a blocking call that offers none of its own (an HTTP exchange whose
headers trickle in: httpx's timeouts bound each read, not the whole)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class DeadlineExceeded(TimeoutError):
    pass


def call_within(seconds: float, fn: Callable[[], T]) -> T:
    """``fn()``, or DeadlineExceeded after ``seconds``. The call goes on in a daemon thread that
    is abandoned; it ends when its socket does (the app is stopped at the end of the gate)."""
    value: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            value.append(fn())
        except BaseException as exc:  # handed to the caller below, as raised
            error.append(exc)

    worker = threading.Thread(target=target, daemon=True, name="shipyard-deadline")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise DeadlineExceeded(f"no result within {seconds:g}s")
    if error:
        raise error[0]
    return value[0]
