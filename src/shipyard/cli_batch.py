"""``shipyard batch SUITE`` and ``shipyard stats --batch DIR``.

Exit codes: 0 every task shipped · 1 some task blocked · 2 bad input (the suite, arguments)
· 3 some task could not be run (``error``) or the engine could not start.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer

from shipyard.cli_fail import WORKING, fail
from shipyard.exceptions import ShipyardError
from shipyard.store.batchdb import TaskRow

STATS_SCHEMA = "shipyard.batch-stats/1"


def batch(
    suite_path: Path, engine: str, address: str | None, workers: int, out: Path | None, redo: bool
) -> None:
    from shipyard.batch.driver import BatchOptions, run_batch
    from shipyard.batch.suite import load_suite
    from shipyard.environment import hide_from_proc

    hide_from_proc()  # the runs' code may read /proc of every process above it
    started = time.monotonic()
    try:
        suite = load_suite(suite_path)
        target = out or suite.path.parent / f"{suite.path.stem}.batch"
        options = BatchOptions(engine=engine, workers=workers, address=address, redo=redo)
        rows = run_batch(suite, target, options, _say)
    except ShipyardError as exc:
        fail(exc, WORKING)
    except KeyboardInterrupt:
        print("shipyard: interrupted: every run of the batch was stopped", file=sys.stderr)
        raise typer.Exit(130) from None
    print()
    print(_table(rows))
    counts = {o: sum(r.outcome == o for r in rows) for o in ("shipped", "blocked", "error")}
    summary = " · ".join(f"{n} {o}" for o, n in counts.items())
    print(f"\n{summary} in {time.monotonic() - started:.1f}s · database {target / 'batch.db'}")
    raise typer.Exit(3 if counts["error"] else 1 if counts["blocked"] else 0)


def _say(task_id: str, state: str, detail: str) -> None:
    print(f"{state:<8} {task_id}" + (f"  {detail}" if detail else ""), flush=True)


def _table(rows: list[TaskRow]) -> str:
    head = ("task", "outcome", "attempts", "tokens", "seconds")
    body = [(r.task_id, r.outcome, _n(r.attempts), _n(r.tokens), f"{r.seconds:.1f}") for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=False)]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True))
        for line in [head, *body]
    ]
    return "\n".join(line.rstrip() for line in lines)


def _n(value: int | None) -> str:
    return "unknown" if value is None else f"{value:,}"


def stats(folder: Path, as_json: bool) -> None:
    from shipyard.store.batchdb import BatchDB

    try:
        db = BatchDB.open(folder, create=False)
    except ShipyardError as exc:
        fail(exc, WORKING)
    try:
        rows = db.rows()
    finally:
        db.close()
    doc = figures(rows)
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    print(_table(rows))
    rate = doc["ship_rate"]
    print(
        f"\nship rate {doc['shipped']}/{len(rows)}" + (f" ({rate:.0%})" if rate is not None else "")
    )


def figures(rows: list[TaskRow]) -> dict[str, Any]:
    """The ``shipyard.batch-stats/1`` document of these rows (also the dashboard's)."""
    shipped = [r for r in rows if r.outcome == "shipped"]
    tasks = [
        {"id": r.task_id, "outcome": r.outcome, "attempts": r.attempts, "tokens": r.tokens,
         "seconds": r.seconds, "run_id": r.run_id, "reason": r.reason, "evidence": r.evidence}
        for r in rows
    ]  # fmt: skip
    return {
        "schema": STATS_SCHEMA, "tasks": tasks, "shipped": len(shipped),
        "blocked": sum(r.outcome == "blocked" for r in rows),
        "error": sum(r.outcome == "error" for r in rows),
        "ship_rate": len(shipped) / len(rows) if rows else None,
        "attempts_per_shipped": _mean([r.attempts for r in shipped]),
        "tokens_per_shipped": _mean([r.tokens for r in shipped]),
    }  # fmt: skip


def _mean(values: list[int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None
