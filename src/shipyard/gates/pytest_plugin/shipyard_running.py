"""A pytest plugin Shipyard loads into its runs at the base revision (``-p shipyard_running``):
the node id of the test that is running, in ``$SHIPYARD_RUNNING_FILE``, so that a run stopped at
its time limit still says which test was running. Nothing else; no import of Shipyard."""

from __future__ import annotations

import os


def _write(text: str) -> None:
    path = os.environ.get("SHIPYARD_RUNNING_FILE")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    _write(nodeid)


def pytest_runtest_logfinish(nodeid: str, location: object) -> None:
    _write("")
