"""The run commands: ``run``, ``resume``, ``status``, ``log``, ``report``, ``stats``.

Exit codes: 0 shipped · 1 blocked · 2 bad input · 3 could not work (no model, a provider that
kept failing: the run is paused and ``resume`` continues it).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from shipyard.cli_fail import WORKING, fail
from shipyard.exceptions import InputError, ShipyardError

if TYPE_CHECKING:
    from shipyard.loop.context import RunContext
    from shipyard.loop.state import RunState
    from shipyard.store.ledger import Event, Ledger, RunRecord

INDENT = {"model": "  ", "tool": "    ", "attempt": ""}
NAMED = ("implementer",)
"""Kinds whose summary starts with the kind itself, so it is not printed before it."""


def say(event: Event) -> None:
    if event.kind in ("model", "tool"):
        print(f"{INDENT[event.kind]}{event.summary}", flush=True)
    else:
        print(line(event), flush=True)


def line(event: Event) -> str:
    """The event's kind, then its summary (once: ``implementer claude-code: …``)."""
    if event.kind in NAMED:
        return event.summary
    return f"{event.kind:<9} {event.summary}"


def start(
    task: str,
    spec: Path | None,
    model: str | None,
    yes: bool,
    merge: bool,
    project: Path,
    implementer: str | None = None,
    *,
    naive: bool = False,
) -> None:
    from shipyard.environment import hide_from_proc
    from shipyard.loop.context import RunOptions
    from shipyard.loop.setup import start_run

    hide_from_proc()
    if not task.strip():
        fail(InputError("the task is empty: say what to build", field="TASK"))
    if model is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+:.+", model):
        fail(InputError(f"{model!r} is not provider:model (say openai:gpt-4.1)", field="--model"))
    if spec is None and not yes and not sys.stdin.isatty():
        fail(InputError("the planner's spec must be confirmed: run in a terminal, or pass --yes"))
    if implementer is not None:
        from shipyard.config_agents import implementer_name

        try:
            implementer_name(implementer)
        except ValueError as exc:
            fail(InputError(str(exc), field="--implementer"))
    options = RunOptions(
        model=model, yes=yes, merge=merge, spec_file=str(spec) if spec else None,
        implementer=implementer, naive=naive,
    )  # fmt: skip
    with ledger_guard(project):
        if _db_file(project).is_file():
            _ledger(project).close()  # warns of lost runs
        try:
            ctx = start_run(project, task, options, say=say, confirm=_confirm(yes))
        except ShipyardError as exc:
            fail(exc, WORKING)
        _drive(ctx, None)


def resume(run: str, project: Path) -> None:
    from shipyard.environment import hide_from_proc
    from shipyard.loop.setup import resume_run

    hide_from_proc()

    def confirm(spec_text: str) -> bool:  # a run resumed while planning still asks
        if not sys.stdin.isatty():
            print("the planner's spec must be confirmed: resume in a terminal", file=sys.stderr)
            return False
        return _confirm(False)(spec_text)

    with ledger_guard(project):
        if _db_file(project).is_file():
            _ledger(project).close()  # warns of lost runs
        try:
            ctx, state = resume_run(project, run, say=say, confirm=confirm)
        except ShipyardError as exc:
            fail(exc, WORKING)
        if state.stage == "plan" and not ctx.options.yes and not sys.stdin.isatty():
            ctx.ledger.release(ctx.run_id, "paused", "the planner's spec waits to be confirmed")
            fail(InputError("the planner's spec must be confirmed: resume in a terminal"))
        if ctx.options.yes:
            ctx.session.confirm = _confirm(True)
        _drive(ctx, state)


def _drive(ctx: RunContext, state: RunState | None) -> None:
    from shipyard.loop import guard, report
    from shipyard.loop.loop import drive
    from shipyard.loop.setup import block_run, remove_worktree

    started = time.monotonic()
    state = state or ctx.ledger.run(ctx.run_id).state
    status: str = "paused"
    reason: str | None = "interrupted"
    try:
        state = drive(ctx, state)
        status, reason = state.stage, state.reason
    except ShipyardError as exc:
        reason = str(exc)
        if exc.exit_code == 2:  # bad input found only now: the run cannot go on as it is
            status, reason = "blocked", f"bad input: {exc}"
            block_run(ctx, ctx.ledger.run(ctx.run_id).state, reason, say=False)
        print(f"{status:<9} {reason}", file=sys.stderr)
        if status == "paused":
            print(f"          continue with: shipyard resume {ctx.run_id}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:
        reason = f"internal error: {type(exc).__name__}: {exc}"
        raise
    finally:
        guard.end_of_run(ctx, state.attempt)
        ctx.ledger.release(ctx.run_id, status, reason)
        # mypy takes status as narrowed by the try's last line, though a signal may end it sooner
        if status == "paused" and reason == "interrupted":  # type: ignore[comparison-overlap]
            print(f"\npaused    continue with: shipyard resume {ctx.run_id}", file=sys.stderr)
    path = report.write(ctx.ledger, ctx.run_id, ctx.evidence)
    if state.stage == "shipped":
        remove_worktree(ctx)
    took = time.monotonic() - started
    usage = state.usage
    code = 0 if state.stage == "shipped" else 1
    print(
        f"{state.stage} (exit {code}) in {took:.1f}s · {state.attempt} attempt(s) · "
        f"{usage.tokens:,} tokens · report {_rel(path)}"
    )
    if state.stage == "blocked":
        print(f"          {state.reason}")
        print(f"          the worktree is kept for a look: {_rel(ctx.worktree)}")
    raise typer.Exit(code)


def _confirm(yes: bool) -> Callable[[str], bool]:
    def confirm(spec_text: str) -> bool:
        print("\nThe planner's spec:\n")
        print(spec_text.rstrip() + "\n")
        return yes or typer.confirm("Implement against this spec?", default=False)

    return confirm


@contextmanager
def ledger_guard(project: Path) -> Iterator[None]:
    """A corrupt ledger found at any point of a command: exit 3 saying so, never a traceback."""
    import sqlite3

    from shipyard.store.db import damage

    try:
        yield
    except sqlite3.DatabaseError as exc:
        problem = damage(exc, _db_file(project))
        if problem is None:
            raise
        fail(problem, WORKING)


def _db_file(project: Path) -> Path:
    from shipyard.evidence import STATE_DIR
    from shipyard.store.db import DB_FILE

    return project / STATE_DIR / DB_FILE


def warn_lost_runs(project: Path, ledger: Ledger[RunState]) -> None:
    """A ledger with no runs next to the evidence folders of runs: it was emptied (a 0-byte
    file) or replaced. Say so each time, rather than treat the project as new in silence."""
    runs = project / ".shipyard" / "runs"
    folders = sorted(p.name for p in runs.glob("r-*") if p.is_dir()) if runs.is_dir() else []
    if not folders or ledger.runs(limit=1):
        return
    shown = ", ".join(folders[-3:]) + (", ..." if len(folders) > 3 else "")
    print(
        f"shipyard: warning: the ledger .shipyard/shipyard.db holds no runs, but "
        f".shipyard/runs/ has {len(folders)} run folder(s) ({shown}): the ledger was emptied "
        "or replaced. Those runs cannot be resumed; their evidence and reports are kept there.",
        file=sys.stderr,
    )


def status(project: Path, as_json: bool) -> None:
    with ledger_guard(project):
        _status(project, as_json)


def _status(project: Path, as_json: bool) -> None:
    ledger = _ledger(project, must_exist=False)
    runs = ledger.runs()
    if as_json:
        print(json.dumps([_run_json(r) for r in runs], indent=2))
        return
    if not runs:
        print('no runs yet (start one with `shipyard run "TASK"`)')
        return
    for r in runs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
        where = r.state.stage if r.status == "running" else r.status
        if r.status == "running" and not _alive(r.pid):
            where = "stopped"  # the process working on it died: `shipyard resume` continues it
        print(f"{r.id}  {when}  {where:<8} attempts {r.state.attempt}  {r.task[:60]}")
        if r.reason:
            print(f"    {r.reason[:160]}")


def log(run: str, project: Path, as_json: bool) -> None:
    with ledger_guard(project):
        _log(run, project, as_json)


def _log(run: str, project: Path, as_json: bool) -> None:
    ledger = _ledger(project)
    try:
        record = ledger.run(run)
    except ShipyardError as exc:
        fail(exc, WORKING)
    events = ledger.events(record.id)
    if as_json:
        print(json.dumps([e.__dict__ for e in events], indent=2, default=str))
        return
    start_at = events[0].at if events else 0
    for e in events:
        since = max(0.0, (e.at or 0) - (start_at or 0))  # the first events share one second
        print(f"{since:8.1f}s  a{e.attempt}  {line(e)}")


def show_report(run: str, project: Path) -> None:
    from shipyard.loop import report

    with ledger_guard(project):
        ledger = _ledger(project)
        try:
            print(report.build(ledger, ledger.run(run)), end="")
        except ShipyardError as exc:
            fail(exc, WORKING)


def _ledger(project: Path, *, must_exist: bool = True) -> Ledger[RunState]:
    """The project's ledger. Where there is none, nothing is created: an empty one in memory
    (status, stats), or exit 2 (log, report)."""
    from shipyard.loop.state import RunState
    from shipyard.store.db import DB_FILE, open_db
    from shipyard.store.ledger import Ledger

    if not (project / ".shipyard" / DB_FILE).is_file():
        if must_exist:
            fail(InputError(f"no runs in {project.resolve()} (no .shipyard/{DB_FILE})"))
        return Ledger(open_db(Path(":memory:")), RunState.model_validate_json)
    try:
        ledger = Ledger.open(project.resolve(), RunState.model_validate_json)
    except ShipyardError as exc:
        fail(exc, WORKING)
    warn_lost_runs(project, ledger)
    return ledger


def _alive(pid: int | None) -> bool:
    from shipyard.store.ledger import alive

    return pid is not None and alive(pid)


def _run_json(r: RunRecord[RunState]) -> dict[str, Any]:
    return {
        "id": r.id, "task": r.task, "status": r.status, "stage": r.state.stage,
        "attempts": r.state.attempt, "created_at": r.created_at, "branch": r.branch,
        "reason": r.reason, "tokens": r.state.usage.tokens, "commit": r.state.commit,
    }  # fmt: skip


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


STATS_LABELS = {
    "first_pass_build_rate": "first-pass build rate",
    "required_tests_first_verify": "required tests, first verify",
    "runtime_checks_passing": "runtime checks passing",
    "ui_flows_passing": "ui flows passing",
    "attempts_per_shipped_run": "attempts per shipped run",
    "diagnosis_rate": "diagnosis rate",
    "blocked_rate": "blocked rate",
    "tokens_per_shipped_run": "tokens per shipped run",
    "knowledge_entries_per_run": "knowledge entries per run",
    "pitfalls_matched": "failures with a known pitfall",
    "attempts_with_knowledge": "attempts, with knowledge",
    "attempts_without_knowledge": "attempts, without",
    "tokens_with_knowledge": "tokens, with knowledge",
    "tokens_without_knowledge": "tokens, without",
}


def stats(project: Path, as_json: bool) -> None:
    from shipyard.stats import Spread, compute

    with ledger_guard(project):
        ledger = _ledger(project, must_exist=False)
        try:
            figures = compute(ledger)
        finally:
            ledger.close()
    if as_json:
        print(json.dumps(figures.to_json(), indent=2))
        return
    runs = figures.runs
    if not runs.total:
        print('no runs yet (start one with `shipyard run "TASK"`)')
        return
    print(
        f"{'runs':<30}{runs.total:<12}{runs.shipped} shipped, {runs.blocked} blocked, "
        f"{runs.unfinished} unfinished"
    )
    for name, figure in figures.figures():
        base, value = f"{figure.numerator:,}/{figure.denominator:,}", figure.value
        if value is None:
            shown = "n/a"
        elif isinstance(figure, Spread):
            shown = f"{value:,.2f}  (min {figure.min}, max {figure.max})"
        elif name.startswith("tokens_") or name == "knowledge_entries_per_run":
            shown = f"{value:,.0f}" if name.startswith("tokens_") else f"{value:,.1f}"
        else:
            shown = f"{value:.0%}"
        print(f"{STATS_LABELS.get(name, name):<30}{base:<12}{shown}")
