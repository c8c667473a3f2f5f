"""``shipyard bench SUITE``: every task through Shipyard's loop and through a naive one, both
judged by checks the agents never see.

Three passes, each a batch with its own database under ``OUT/<pass>/``:

- ``shipyard``: the loop as ``shipyard run`` runs it. Tasks on the same project run in suite
  order, each importing (``shipyard memory import``) what the one before it left
  (``shipyard memory export`` of its evidence);
- ``no-knowledge``: the same loop with ``[knowledge] enabled = false``, every task from scratch;
- ``naive``: ``shipyard run --naive`` with the same model, tools and brief: implement until the
  model submits, then ship (no gates, review, diagnosis or knowledge).

Every shipped tree is judged on its worker with the task's hidden spec (``judge.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shipyard import process
from shipyard.batch.driver import BatchOptions, run_batch
from shipyard.batch.suite import Suite, SuiteError, TaskPlan, redigest
from shipyard.exceptions import ShipyardError
from shipyard.spec import Spec
from shipyard.store.batchdb import BatchDB, TaskRow

PASSES = ("shipyard", "naive", "no-knowledge")
PassSay = Callable[[str, str, str, str], None]
"""``say(pass, task_id, state, detail)``."""


@dataclass(frozen=True, kw_only=True)
class BenchOptions:
    model: str | None = None
    """``--model``: every task's model, in every pass (else each task's own)."""
    batch: BatchOptions = BatchOptions()


@dataclass(frozen=True, kw_only=True)
class BenchTask:
    plan: TaskPlan
    hidden: Spec


def bench_tasks(suite: Suite, model: str | None) -> list[BenchTask]:
    """The suite's tasks with their hidden specs read (bad input, exit 2, when one is missing
    or invalid), and ``model`` set on every task when given."""
    from shipyard.spec import load_spec

    tasks = []
    for index, plan in enumerate(suite.tasks):
        hidden = plan.hidden
        if hidden is None:
            raise SuiteError(
                "`shipyard bench` judges every task by its hidden checks: this task has no "
                "`hidden:` spec",
                file=str(suite.path), field=f"tasks[{index}].hidden",
            )  # fmt: skip
        if model is not None:
            plan = redigest(plan, model=model, implementer=None)
        spec = load_spec(Path(hidden))
        if uncovered := spec.uncovered():
            raise SuiteError(
                f"no hidden check covers the acceptance ids {', '.join(uncovered)}", file=hidden
            )
        tasks.append(BenchTask(plan=plan, hidden=spec))
    return tasks


def run_bench(
    suite: Suite, tasks: list[BenchTask], out: Path, options: BenchOptions, say: PassSay
) -> dict[str, list[TaskRow]]:
    """Run the three passes; every pass's rows, in suite order."""
    plans = [t.plan for t in tasks]
    rows: dict[str, list[TaskRow]] = {}
    rows["shipyard"] = _chained(suite, plans, out / "shipyard", options.batch, say)
    for name, change in (("naive", {"naive": True}), ("no-knowledge", {"knowledge": False})):
        variant = tuple(redigest(p, judge=True, **change) for p in plans)
        found = run_batch(
            Suite(path=suite.path, tasks=variant), out / name, options.batch, _for(name, say)
        )
        rows[name] = _in_order(found, plans)
    return rows


def _chained(
    suite: Suite, plans: list[TaskPlan], out: Path, options: BatchOptions, say: PassSay
) -> list[TaskRow]:
    """Tasks on one project in suite order, each given what the earlier ones left; tasks on
    different projects side by side (one wave: the next task of every project)."""
    groups: dict[tuple[str, str | None], list[TaskPlan]] = {}
    for plan in plans:
        groups.setdefault((plan.project, plan.commit), []).append(plan)
    latest: dict[tuple[str, str | None], str] = {}
    for wave in range(max(len(g) for g in groups.values())):
        todo = [
            (key, redigest(group[wave], judge=True, knowledge_in=latest.get(key)))
            for key, group in groups.items()
            if wave < len(group)
        ]
        batch = Suite(path=suite.path, tasks=tuple(plan for _, plan in todo))
        run_batch(batch, out, options, _for("shipyard", say))
        for key, plan in todo:
            if (text := export_knowledge(out, plan.id)) is not None:
                latest[key] = text
    db = BatchDB.open(out)
    try:
        return _in_order(db.rows(), plans)
    finally:
        db.close()


def export_knowledge(out: Path, task_id: str) -> str | None:
    """``shipyard memory export`` of a finished task's evidence (its ``.shipyard/``), or None
    when the task left no ledger."""
    evidence = out / "evidence" / task_id
    if not (evidence / ".shipyard" / "shipyard.db").is_file():
        return None
    folder = out / "knowledge"
    folder.mkdir(exist_ok=True)
    file, log = folder / f"{task_id}.md", folder / f"{task_id}.log"
    argv = [sys.executable, "-m", "shipyard", "memory", "export", "-o", str(file)]
    argv += ["-C", str(evidence)]
    from shipyard import environment

    env = environment.scrubbed(dict(_environ()), None)
    try:
        result = process.run(argv, cwd=evidence, env=env, timeout=120, log=log)
    except ShipyardError:
        return None
    if not result.ok or not file.is_file():
        return None
    return file.read_text(encoding="utf-8")


def _environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def _for(name: str, say: PassSay) -> Callable[[str, str, str], None]:
    return lambda task_id, state, detail: say(name, task_id, state, detail)


def _in_order(rows: list[TaskRow], plans: list[TaskPlan]) -> list[TaskRow]:
    by_id = {row.task_id: row for row in rows if row.digest}
    wanted = {p.id: p for p in plans}
    return [by_id[p.id] for p in plans if p.id in by_id and p.id in wanted]
