"""The figures of ``shipyard bench``: per pass, from its batch rows, the judgments of the
shipped trees (``OUT/<pass>/evidence/<id>/judge/verify.json``) and the runs' own ledgers.

Every rate is over all tasks of the suite unless said otherwise, and a task that shipped
nothing counts as delivering nothing (its hidden checks are not passing):

- ship rate: shipped / tasks;
- false-ship rate: shipped with a ``failed`` hidden verdict / shipped and judged (a judgment
  that could not check, verdict ``error``, is a *judge error*: counted apart, neither a false
  ship nor a pass);
- hidden checks passing: shipped with a ``passed`` hidden verdict / tasks;
- first-pass build: the first submission built / tasks with build commands and a submission
  (a project without build commands counts in neither). For the loop, its
  first verify's ``build`` gate; for the naive loop, which submits once and runs no gate, the
  ``build`` gate of the judgment of what it shipped;
- required tests present and passing: tasks whose hidden required tests all exist and pass /
  tasks whose hidden spec names any;
- runtime (``http``, ``cli``) and UI checks passing: hidden checks that passed / hidden checks;
- attempts and tokens per shipped task: means over shipped tasks that reported them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.batch.bench import BenchTask
from shipyard.batch.judge import read_verdict
from shipyard.stats import Figure
from shipyard.store.batchdb import TaskRow

SCHEMA = "shipyard.bench/1"
RUNTIME_KINDS = ("http", "cli")


@dataclass(frozen=True, kw_only=True)
class Judged:
    """One task of one pass."""

    row: TaskRow | None
    verdict: dict[str, Any] | None
    """The hidden verify document of the shipped tree; None when nothing shipped."""
    first_build: str | None
    """The first submission's build status; None when nothing was submitted."""

    @property
    def shipped(self) -> bool:
        return self.row is not None and self.row.outcome == "shipped"

    commit: str | None = None
    """The shipped commit that was judged."""

    @property
    def hidden(self) -> str | None:
        return None if self.verdict is None else str(self.verdict.get("verdict"))

    @property
    def judge_error(self) -> bool:
        """Shipped, but the judgment could not check it (not a verdict on the tree)."""
        return self.shipped and self.hidden not in ("passed", "failed")

    @property
    def false_ship(self) -> bool:
        return self.shipped and self.hidden == "failed"

    def checks(self, gate: str, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
        gates = (self.verdict or {}).get("gates") or []
        return [
            c
            for g in gates
            if isinstance(g, dict) and g.get("name") == gate
            for c in g.get("checks") or []
            if isinstance(c, dict) and c.get("kind") in kinds
        ]


def judged(task: BenchTask, row: TaskRow | None, out: Path, naive: bool) -> Judged:
    verdict, commit = None, None
    if row is not None and row.outcome == "shipped" and row.evidence:
        folder = out / row.evidence / "judge"
        verdict = read_verdict(folder / "verify.json")
        try:
            commit = str(json.loads((folder / "judged.json").read_text())["commit"])
        except (OSError, ValueError, KeyError, TypeError):
            commit = None
    first: str | None = None
    if not task.has_build:
        first = None
    elif naive:
        if verdict is not None:
            build = [g for g in verdict.get("gates") or [] if g.get("name") == "build"]
            first = str(build[0].get("status")) if build else "error"
    elif row is not None and row.evidence:
        first = _first_build(out / row.evidence / ".shipyard" / "shipyard.db")
    return Judged(row=row, verdict=verdict, first_build=first, commit=commit)


def _first_build(db: Path) -> str | None:
    from shipyard.store.figures import per_run

    if not db.is_file():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        runs = per_run(conn)
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if not runs or not runs[0].verified:
        return None
    return runs[0].first_build or "passed"  # no build commands: a build gate with no checks


def figures(tasks: list[BenchTask], results: list[Judged]) -> dict[str, Any]:
    n = len(tasks)
    shipped = [j for j in results if j.shipped]
    submitted = [j for j in results if j.first_build is not None]
    with_required = [
        (t, j) for t, j in zip(tasks, results, strict=True) if t.hidden.checks.tests.required
    ]
    runtime_total = sum(len(t.hidden.checks.http) + len(t.hidden.checks.cli) for t in tasks)
    ui_total = sum(len(t.hidden.checks.ui) for t in tasks)
    runtime_passed = sum(_passed(j.checks("runtime", RUNTIME_KINDS)) for j in shipped)
    ui_passed = sum(_passed(j.checks("runtime", ("ui",))) for j in shipped)
    required_ok = sum(
        j.shipped
        and _all_passed(j.checks("tests", ("required",)), len(t.hidden.checks.tests.required))
        for t, j in with_required
    )
    judge_errors = sum(j.judge_error for j in results)
    errors = sum(j.row is None or j.row.outcome == "error" for j in results) + judge_errors
    return {
        "tasks": n,
        "shipped": len(shipped),
        "ship_rate": Figure(numerator=len(shipped), denominator=n).to_json(),
        "false_ship_rate": Figure(
            numerator=sum(j.false_ship for j in shipped),
            denominator=sum(not j.judge_error for j in shipped),
        ).to_json(),
        "hidden_passing": Figure(
            numerator=sum(j.hidden == "passed" for j in shipped), denominator=n
        ).to_json(),
        "first_pass_build_rate": Figure(
            numerator=sum(j.first_build == "passed" for j in submitted), denominator=len(submitted)
        ).to_json(),
        "required_tests_passing": Figure(
            numerator=required_ok, denominator=len(with_required)
        ).to_json(),
        "runtime_checks_passing": Figure(
            numerator=runtime_passed, denominator=runtime_total
        ).to_json(),
        "ui_checks_passing": Figure(numerator=ui_passed, denominator=ui_total).to_json(),
        "attempts_per_shipped": _mean([j.row.attempts for j in shipped if j.row]),
        "tokens_per_shipped": _mean([j.row.tokens for j in shipped if j.row]),
        "judge_errors": judge_errors,
        "errors": errors,
    }


def task_json(result: Judged) -> dict[str, Any]:
    row = result.row
    return {
        "outcome": row.outcome if row else None,
        "attempts": row.attempts if row else None,
        "tokens": row.tokens if row else None,
        "seconds": row.seconds if row else None,
        "reason": row.reason if row else "no row: the task did not finish",
        "hidden": result.hidden,
        "false_ship": result.false_ship,
        "judge_error": result.judge_error,
        "judged_commit": result.commit,
        "first_build": result.first_build,
        "evidence": row.evidence if row else None,
    }


def _passed(checks: list[dict[str, Any]]) -> int:
    return sum(c.get("status") == "passed" for c in checks)


def _all_passed(checks: list[dict[str, Any]], expected: int) -> bool:
    """Every required test the hidden spec names was found and passed."""
    return len(checks) >= expected and all(c.get("status") == "passed" for c in checks)


def _mean(values: list[int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 2) if known else None
