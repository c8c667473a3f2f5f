"""The runs at the base revision (``--base``) and the two checks they serve.

* **Baseline**: the base's own suite, run as it is in a worktree of the base. Its passing tests
  must still pass now (no weakening). A baseline that could not be established (no report, a
  crash of the runner) is ``error``, never a pass; a base with no tests is an empty baseline.
* **Fail-to-pass**: the same worktree with the required test files copied in. Every acceptance
  id the required tests cover must be *demonstrated*: one of its required tests fails (or is
  missing, or errors) at the base and passes now. A required test that passes at the base fails
  its check only when an id it covers is demonstrated by none of its tests; one without
  ``covers`` is judged alone. When the required files are byte-identical at the base, the
  baseline run serves both.
* A run stopped at its time limit (SIGINT, then SIGKILL) keeps what finished; the test running
  then failed there (timed out at the base); a test it never reached proves nothing either way.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shipyard import workspace
from shipyard.exceptions import CommandNotFound
from shipyard.excerpt import decisive_line, first_and_decisive
from shipyard.gates import Context
from shipyard.gates.junit import TestOutcome
from shipyard.gates.suite import NOT_PASSING, PYTEST_PLUGIN_DIR, SuiteRun, TestRuns, not_run
from shipyard.lanes import Limit
from shipyard.results import CheckResult, Status
from shipyard.spec import RequiredTest

ORIGINAL, WITH_REQUIRED = "base/original", "base/with-required-tests"
IMPORT_ERROR = re.compile(r"^(?:E\s+)?(?:ImportError|ModuleNotFoundError)\b|Cannot find module")
"""An error that shows a name is new at the base, not that the behaviour is tested."""
LINKED = ("node_modules", ".venv", "venv")
"""The project's own environments, linked into the base worktree when it has none."""


@dataclass(frozen=True, kw_only=True)
class BaseRuns:
    baseline: SuiteRun
    required: SuiteRun | None
    """The run with the required test files copied in (the baseline itself when they are
    byte-identical at the base); None without required tests, or when it was not needed
    (``skipped``)."""
    required_label: str
    skipped: str | None = None
    """Why the run with the required tests was stopped or never started: its fail-to-pass
    verdict could not change the outcome."""


@dataclass(frozen=True, kw_only=True)
class Bounds:
    """The base runs' time limits, which the head's suite shortens when it ends."""

    baseline: Limit
    required: Limit


def run_at_base(
    ctx: Context, files: Sequence[str], runs: TestRuns, bounds: Bounds | None = None
) -> BaseRuns:
    """The baseline and (when the required files differ at the base) the run with them copied
    in, each in a worktree of the base of its own, at once when the verify runs in parallel."""
    assert ctx.base is not None
    bounds = bounds or Bounds(baseline=Limit(), required=Limit())
    with workspace.worktree(ctx.project, ctx.base) as tree:
        identical = all(_same_file(ctx.project / f, tree / f) for f in files)
        if not files or identical:
            baseline = _run(runs, tree, ORIGINAL, bounds.baseline)
            return BaseRuns(baseline=baseline, required=baseline if files else None,
                            required_label=ORIGINAL)  # fmt: skip
        with workspace.worktree(ctx.project, ctx.base) as other:
            for f in files:
                source, target = ctx.project / f, other / f
                if source.is_file():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, target)

            def required() -> SuiteRun | None:
                if bounds.required.stopped:
                    return None
                return _run(runs, other, WITH_REQUIRED, bounds.required)

            ran, found = ctx.lanes.map(
                [lambda: _run(runs, tree, ORIGINAL, bounds.baseline), required]
            )
    assert ran is not None
    skipped = bounds.required.why if bounds.required.stopped else None
    return BaseRuns(baseline=ran, required=None if skipped else found,
                    required_label=WITH_REQUIRED, skipped=skipped)  # fmt: skip


def _same_file(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()


def _run(runs: TestRuns, tree: Path, label: str, limit: Limit) -> SuiteRun:
    """One run at the base, with services and a ``{tmp}`` of its own (``ctx.isolated``); one
    whose services could not be had is a run without results, never one that shares the
    head's."""
    ctx = runs.ctx
    assert ctx.base is not None
    try:
        if ctx.isolated is None:
            return runs.run(tree, label, base_env(ctx, tree), at_base=True, limit=limit)
        with ctx.isolated(label) as own:
            if own.problem is not None:
                command = ctx.config.commands.test or ""
                return not_run(ctx, label, command, f"not run: the run {own.problem}")
            env = base_env(ctx, tree, own.env)
            return runs.run(tree, label, env, at_base=True, limit=limit, command=own.test)
    except CommandNotFound as exc:
        raise CommandNotFound(f"the run at the base revision {ctx.base[:12]}: {exc}") from exc


def base_env(ctx: Context, tree: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The project's environments (at its root and in the ``[commands] cwd``) linked in, and
    the old code importable first: src/ and the root of the base worktree on PYTHONPATH (then
    Shipyard's small pytest plugin). ``env``: the run's own (``ctx.isolated``), else
    ``ctx.env``."""
    folders = {Path(), Path(ctx.config.commands.cwd or ".")}  # the root, the [commands] cwd
    for folder in folders:
        for name in LINKED:
            source, target = ctx.project / folder / name, tree / folder / name
            if source.is_dir() and target.parent.is_dir() and not target.exists():
                target.symlink_to(source)
    env = dict(ctx.env if env is None else env)
    paths = [str(p) for p in (tree / "src", tree) if p.is_dir()]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    paths.append(str(PYTEST_PLUGIN_DIR))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def missing_baseline(run: SuiteRun) -> str | None:
    """Why ``run`` gives no baseline, or None (an empty report is an empty baseline)."""
    code = run.result.exit_code
    if run.outcomes is None:
        if run.pytest and code == 5:
            return None  # pytest: no tests collected
        return run.problem or "no report"
    if run.pytest and code in (3, 4):
        line = decisive_line(run.result.tail) or run.result.tail.splitlines()[-1:]
        return f"pytest exited {code} (an internal or usage error): {line}"
    return None


def weakening(runs: BaseRuns, now: SuiteRun) -> list[CheckResult]:
    base = runs.baseline
    evidence = f"{ORIGINAL}/outcomes.json"
    if (why := missing_baseline(base)) is not None:
        message = f"no baseline: the base revision's own suite gave no results ({why})"
        return [_weak("no-weakening", "error", message, f"{ORIGINAL}/output.log")]
    old = base.outcomes or {}
    if not old:
        return [_weak("no-weakening", "passed", "nothing to compare: the base has no tests", None)]
    current = now.outcomes or {}
    weakened = []
    for test_id, before in old.items():
        if before.outcome != "passed":
            continue
        new = current.get(test_id)
        if new is None or new.outcome != "passed":
            how = "missing now" if new is None else f"{NOT_PASSING[new.outcome]} now"
            detail = first_and_decisive(new.message) if new is not None else ""
            message = f"passed at the base revision, {how}" + (f": {detail}" if detail else "")
            weakened.append(_weak(test_id, "failed", message, evidence))
    passing = sum(1 for o in old.values() if o.outcome == "passed")
    stopped = (
        f" (the base run was stopped at its time limit after {len(old)} tests: {base.problem})"
        if base.result.timed_out
        else ""
    )
    message = f"all {passing} tests passing at the base revision still pass{stopped}"
    return weakened or [_weak("no-weakening", "passed", message, evidence)]


def _weak(check_id: str, status: Status, message: str, evidence: str | None) -> CheckResult:
    return CheckResult(
        id=check_id, kind="weakening", status=status, message=message, evidence=evidence
    )


@dataclass(frozen=True, kw_only=True)
class _AtBase:
    state: str
    """passes | fails | unknown (a stopped run never reached it)"""
    how: str


def fail_to_pass(
    required: Sequence[RequiredTest], runs: BaseRuns, passing_now: set[str]
) -> list[CheckResult]:
    run, label = runs.required, runs.required_label
    assert run is not None
    evidence = f"{label}/outcomes.json"
    if (why := missing_baseline(run)) is not None:
        message = f"could not run the required tests at the base revision: {why}"
        return [_ftp(r, "error", message, f"{label}/output.log") for r in required]
    at_base = {r.id: _at_base(r.id, run) for r in required}
    shown = {
        key
        for r in required
        if at_base[r.id].state == "fails" and r.id in passing_now
        for key in _keys(r)
    }
    checks = []
    for r in required:
        found = at_base[r.id]
        if found.state == "fails":
            checks.append(_ftp(r, "passed", found.how, evidence))
            continue
        lacking = [k for k in _keys(r) if k not in shown]
        if not lacking:
            ids = ", ".join(_keys(r))
            why = "already passes at the base revision" if found.state == "passes" else found.how
            message = f"{why}; {ids} shown by another required test failing there"
            checks.append(_ftp(r, "passed", message, evidence))
        elif found.state == "unknown":
            checks.append(_ftp(r, "error", f"{found.how}: nothing shows the change", evidence))
        elif not r.covers:
            message = f"{found.how}: it cannot detect the change"
            checks.append(_ftp(r, "failed", message, evidence))
        else:
            ids = ", ".join(lacking)
            message = (
                f"{found.how}: it cannot detect the change, and no required test of "
                f"{ids} fails at the base revision"
            )
            checks.append(_ftp(r, "failed", message, evidence))
    return checks


def _keys(r: RequiredTest) -> tuple[str, ...]:
    """What a required test must help demonstrate: its acceptance ids, or itself."""
    return tuple(r.covers) or (f"test {r.id}",)


def _at_base(test_id: str, run: SuiteRun) -> _AtBase:
    outcomes = run.outcomes or {}
    found = outcomes.get(test_id)
    if found is None:
        whole = outcomes.get(test_id.partition("::")[0])
        if whole is not None and whole.interrupted:
            how = "fails against the base code (timed out at the base: its file was running)"
            return _AtBase(state="fails", how=how)
        if whole is not None and whole.outcome in ("error", "failed"):
            return _AtBase(state="fails", how=_errored(whole))
        if run.result.timed_out:
            return _AtBase(state="unknown", how="not reached at the base revision before the "
                           "run was stopped at its time limit")  # fmt: skip
        return _AtBase(state="fails", how="fails against the base code (missing there)")
    if found.interrupted:
        return _AtBase(state="fails", how="fails against the base code (timed out at the base)")
    if found.outcome == "passed":
        return _AtBase(state="passes", how="passes against the base code")
    if IMPORT_ERROR.search(decisive_line(found.message) or ""):
        return _AtBase(state="fails", how=_errored(found))
    detail = first_and_decisive(found.message)
    more = f": {detail}" if detail else ""
    how = f"fails against the base code ({NOT_PASSING[found.outcome]} there{more})"
    return _AtBase(state="fails", how=how)


def _errored(found: TestOutcome) -> str:
    line = decisive_line(found.message) or first_and_decisive(found.message) or "an error"
    return (
        f"errored at the base: {line}; it shows the name is new, not that its behaviour is tested"
    )


def _ftp(r: RequiredTest, status: Status, message: str, evidence: str | None) -> CheckResult:
    return CheckResult(
        id=r.id, kind="fail_to_pass", status=status, message=message, covers=tuple(r.covers),
        evidence=evidence,
    )  # fmt: skip
