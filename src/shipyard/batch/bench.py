"""``shipyard bench SUITE``: every task through Shipyard's loop and through a naive one, both
judged by checks the agents never see.

Three passes, each a batch with its own database under ``OUT/<pass>/``:

- ``shipyard``: the loop as ``shipyard run`` runs it. Tasks on the same project run in suite
  order, each importing (``shipyard memory import``) what the one before it left
  (``shipyard memory export`` of its evidence);
- ``no-knowledge``: the same loop with ``[knowledge] enabled = false``, every task from scratch;
- ``naive``: ``shipyard run --naive`` with the same model, tools and brief: implement until the
  model submits, then ship (no gates, review, diagnosis or knowledge).

Every shipped tree is judged with the task's hidden spec (``judge.py``) on the driver, once
the batch that ran it has ended: no run is live while hidden checks are on disk or on a command
line. The judgments are held in memory until the benchmark ends (those of an earlier benchmark
in ``OUT`` too), then written to ``OUT/<pass>/evidence/<id>/judge/``: no run can read them.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
    implementer: str | None = None
    """``--implementer``: every task's implementer, in every pass."""
    batch: BatchOptions = BatchOptions()


@dataclass(frozen=True, kw_only=True)
class BenchTask:
    plan: TaskPlan
    hidden: Spec
    has_build: bool = True
    """The project has build commands (else it counts in no first-pass build rate)."""


@dataclass(kw_only=True)
class Judgments:
    """Judgments held in memory while runs are live: ``(pass, task id)`` → (commit, packed)."""

    held: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)


def bench_tasks(suite: Suite, model: str | None, implementer: str | None = None) -> list[BenchTask]:
    """The suite's tasks with their hidden specs read (bad input, exit 2, when one is missing
    or invalid), and ``model`` and ``implementer`` set on every task when given."""
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
        if model is not None or implementer is not None:
            plan = redigest(
                plan,
                model=plan.model if model is None else model,
                implementer=plan.implementer if implementer is None else implementer,
            )
        spec = load_spec(Path(hidden))
        if uncovered := spec.uncovered():
            raise SuiteError(
                f"no hidden check covers the acceptance ids {', '.join(uncovered)}", file=hidden
            )
        tasks.append(BenchTask(plan=plan, hidden=spec, has_build=_has_build(plan)))
    return tasks


def _has_build(plan: TaskPlan) -> bool:
    """Whether the project's ``shipyard.toml`` names build commands (True when unknown)."""
    from shipyard.config import load_config
    from shipyard.workspace import git

    try:
        if plan.commit is None:
            return bool(load_config(Path(plan.project), missing_ok=True).commands.build)
        if "://" in plan.project:
            return True
        shown = git("show", f"{plan.commit}:shipyard.toml", cwd=Path(plan.project), check=False)
        if shown.returncode != 0:
            return False
        import tomllib

        commands = tomllib.loads(shown.stdout).get("commands", {})
        return bool(commands.get("build")) if isinstance(commands, dict) else True
    except (ShipyardError, OSError, ValueError):
        return True


def run_bench(
    suite: Suite, tasks: list[BenchTask], out: Path, options: BenchOptions, say: PassSay
) -> dict[str, list[TaskRow]]:
    """Run the three passes, judging each batch once it has ended; every pass's rows, in
    suite order. The judgments reach ``out`` only at the end (also on an interrupt)."""
    plans = [t.plan for t in tasks]
    rows: dict[str, list[TaskRow]] = {}
    judgments = take_judgments(out)
    try:
        rows["shipyard"] = _chained(suite, plans, out / "shipyard", options.batch, say, judgments)
        for name, change in (("naive", {"naive": True}), ("no-knowledge", {"knowledge": False})):
            variant = tuple(redigest(p, judge=True, **change) for p in plans)
            found = run_batch(
                Suite(path=suite.path, tasks=variant), out / name, options.batch, _for(name, say)
            )
            judge_batch(name, found, variant, out / name, options.batch.workers, judgments)
            rows[name] = _in_order(found, plans)
    finally:
        put_judgments(out, judgments)
    return rows


def _chained(
    suite: Suite,
    plans: list[TaskPlan],
    out: Path,
    options: BatchOptions,
    say: PassSay,
    judgments: Judgments,
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
        found = run_batch(batch, out, options, _for("shipyard", say))
        judge_batch("shipyard", found, batch.tasks, out, options.workers, judgments)
        for key, plan in todo:
            if (text := export_knowledge(out, plan.id)) is not None:
                latest[key] = text
    db = BatchDB.open(out)
    try:
        return _in_order(db.rows(), plans)
    finally:
        db.close()


def judge_batch(
    name: str,
    rows: list[TaskRow],
    plans: tuple[TaskPlan, ...],
    out: Path,
    workers: int,
    judgments: Judgments,
) -> None:
    """Judge every shipped task of a batch that has ended, unless its shipped commit was
    judged already (a task skipped as finished keeps its judgment)."""
    from shipyard.batch.judge import judge

    by_id = {p.id: p for p in plans}
    todo = []
    for row in rows:
        plan = by_id.get(row.task_id)
        if plan is None or plan.digest != row.digest:
            continue
        if row.outcome != "shipped" or not row.evidence:
            continue
        evidence = out / row.evidence
        held = judgments.held.get((name, row.task_id))
        if held is not None and held[0] == shipped_commit(evidence):
            continue
        todo.append((plan, evidence))

    def one(item: tuple[TaskPlan, Path]) -> None:
        plan, evidence = item
        verdict = judge(plan, evidence, _environ())
        try:
            judgments.held[(name, plan.id)] = (shipped_commit(evidence), _packed(verdict))
        finally:
            shutil.rmtree(verdict.parent, ignore_errors=True)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, todo))


def shipped_commit(evidence: Path) -> str:
    try:
        doc = json.loads((evidence / "shipped" / "commits.json").read_text(encoding="utf-8"))
        return str(doc["commit"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def take_judgments(out: Path) -> Judgments:
    """The judgments an earlier benchmark left in ``out``, into memory and off the disk."""
    judgments = Judgments()
    for name in PASSES:
        evidence = out / name / "evidence"
        for folder in sorted(evidence.glob("*/judge")) if evidence.is_dir() else []:
            if folder.is_symlink() or not folder.is_dir():
                continue
            commit = ""
            try:
                doc = json.loads((folder / "judged.json").read_text(encoding="utf-8"))
                commit = str(doc["commit"])
            except (OSError, ValueError, KeyError, TypeError):
                pass
            judgments.held[(name, folder.parent.name)] = (commit, _packed(folder))
            shutil.rmtree(folder)
    return judgments


def put_judgments(out: Path, judgments: Judgments) -> None:
    """Every held judgment into ``OUT/<pass>/evidence/<id>/judge/`` (when that task's evidence
    is there and still the tree it judged)."""
    for (name, task_id), (commit, packed) in judgments.held.items():
        evidence = out / name / "evidence" / task_id
        if not evidence.is_dir() or (commit and shipped_commit(evidence) != commit):
            continue
        target = evidence / "judge"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
            tar.extractall(target, filter="data")


def _packed(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


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
