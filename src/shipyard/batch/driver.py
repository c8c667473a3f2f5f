"""The batch driver: which tasks to run, where their rows and evidence go, what is printed.

Resubmitting a suite skips each task whose (id, digest) already reached shipped or blocked in
the batch database (``--redo`` runs them anyway); ``error`` rows are run again. A row is
written the moment its task finishes, so a driver killed and restarted continues from the
database. Ctrl-C stops the engine, and with it every run it started; unfinished tasks have no
row and run again next time.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shipyard.batch.engines import make_engine
from shipyard.batch.suite import Suite, TaskPlan
from shipyard.batch.task import TaskResult
from shipyard.store.batchdb import BatchDB, TaskRow

Say = Callable[[str, str, str], None]
"""``say(task_id, state, detail)``: queued, running, skipped, shipped, blocked, error."""


@dataclass(frozen=True, kw_only=True)
class BatchOptions:
    engine: str = "local"
    workers: int = 2
    address: str | None = None
    redo: bool = False


def run_batch(suite: Suite, out: Path, options: BatchOptions, say: Say) -> list[TaskRow]:
    """Run the suite's unfinished tasks; return every task's newest row."""
    db = BatchDB.open(out)
    try:
        todo = _todo(suite, db, options.redo, say)
        if todo:
            _run(todo, out, db, options, say)
        wanted = {p.id for p in suite.tasks}
        return [row for row in db.rows() if row.task_id in wanted]
    finally:
        db.close()


def _todo(suite: Suite, db: BatchDB, redo: bool, say: Say) -> list[TaskPlan]:
    done = set() if redo else db.finished()
    todo = []
    for plan in suite.tasks:
        if (plan.id, plan.digest) in done:
            say(plan.id, "skipped", "finished before (--redo runs it again)")
        else:
            say(plan.id, "queued", "")
            todo.append(plan)
    return todo


def _run(todo: list[TaskPlan], out: Path, db: BatchDB, options: BatchOptions, say: Say) -> None:
    engine = make_engine(options.engine, options.workers, options.address)
    try:
        for result in engine.results(todo, lambda plan: say(plan.id, "running", "")):
            evidence = _unpack(result, out)
            db.record(_row(result, evidence))
            say(result.id, result.outcome, _detail(result))
    finally:
        engine.close()


def _row(result: TaskResult, evidence: Path | None) -> TaskRow:
    return TaskRow(
        task_id=result.id, digest=result.digest, outcome=result.outcome,
        attempts=result.attempts, tokens=result.tokens, seconds=result.seconds,
        run_id=result.run_id, exit_code=result.exit_code, reason=result.reason,
        evidence=str(evidence.relative_to(evidence.parents[1])) if evidence else None,
    )  # fmt: skip


def _unpack(result: TaskResult, out: Path) -> Path | None:
    """The packed evidence into ``OUT/evidence/<task id>/``, replacing an older try's."""
    if not result.evidence:
        return None
    target = out / "evidence" / result.id
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(result.evidence), mode="r:gz") as tar:
        tar.extractall(target, filter="data")  # no absolute paths, no escapes, no devices
    return target


def _detail(result: TaskResult) -> str:
    parts = [f"{result.seconds:.1f}s"]
    if result.attempts is not None:
        parts.append(f"{result.attempts} attempt(s)")
    if result.tokens is not None:
        parts.append(f"{result.tokens:,} tokens")
    if result.outcome != "shipped":
        parts.append(result.reason)
    return " · ".join(parts)
