"""The test gate: the suite's own report, required tests, fail-to-pass and no weakening.

Per-test outcomes come from a JUnit XML report that Shipyard asks the runner for (``suite``);
never from the exit code alone. With ``--base``, the runs at the base revision (``base``).
"""

from __future__ import annotations

import time
from dataclasses import replace

from shipyard import excerpt
from shipyard.config import Config
from shipyard.exceptions import ConfigError
from shipyard.gates import Context, VerifiedCommand
from shipyard.gates.base import BaseRuns, Bounds, fail_to_pass, run_at_base, weakening
from shipyard.gates.build import command_check
from shipyard.gates.junit import TestOutcome
from shipyard.gates.suite import (
    MOCHA_REPORTER,
    NODE_REPORTER,
    NOT_PASSING,
    SuiteRun,
    TestRuns,
    with_report,
)
from shipyard.lanes import Limit
from shipyard.results import CheckResult, GateResult, Status
from shipyard.spec import RequiredTest

__all__ = ["MOCHA_REPORTER", "NODE_REPORTER", "TestGate", "with_report"]


class TestGate:
    name = "tests"
    blocking = False

    def preflight(self, ctx: Context) -> None:
        pass

    def verified(self, config: Config, result: GateResult) -> list[VerifiedCommand]:
        suite = any(c.kind == "suite" and c.status == "passed" for c in result.checks)
        if not suite or config.commands.test is None:
            return []
        return [VerifiedCommand(key="test", command=config.commands.test, what="the tests gate")]

    def run(self, ctx: Context, blocked_by: str | None = None) -> GateResult:
        started = time.monotonic()
        required = ctx.spec.checks.tests.required if ctx.spec else ()
        if ctx.config.commands.test is None:
            if required:
                raise ConfigError(
                    "the spec requires tests but no test command is configured",
                    file=ctx.config.source,
                    field="commands.test",
                )
            return GateResult(name=self.name, checks=(), message="no test command configured")
        if blocked_by:
            checks = [CheckResult(id="suite", kind="suite", status="not_run", message=blocked_by)]
            checks += [
                CheckResult(
                    id=r.id, kind="required", status="not_run", covers=r.covers, message=blocked_by
                )
                for r in required
            ]
            return GateResult(name=self.name, checks=tuple(checks))
        # with [services], one test run at a time; each run at the base has services of its
        # own (ctx.isolated), never the head's
        runs = TestRuns(ctx, overlap=False if ctx.config.services else None)
        if ctx.base is None:
            suite, base = runs.run(ctx.project, "tests"), None
        else:
            suite, base = _with_base(ctx, runs, sorted({r.file for r in required}))
        checks = [_suite_check(suite, ctx)]
        checks += [_required_check(r.id, r.covers, suite) for r in required]
        if base is not None:
            passing = {c.id for c in checks if c.kind == "required" and c.status == "passed"}
            only = ctx.fail_to_pass_only  # judged on all required tests, shown for these
            if base.skipped is not None:
                checks += [_skipped(r, base.skipped) for r in required
                           if only is None or r.id in only]  # fmt: skip
            elif base.required is not None:
                checks += [
                    c for c in fail_to_pass(required, base, passing) if only is None or c.id in only
                ]
            checks += weakening(base, suite)
        return GateResult(name=self.name, checks=tuple(checks), duration=time.monotonic() - started)


BASE_BOUND, BASE_BOUND_FACTOR = 10.0, 10.0
"""A base run still going when the head's suite has ended in T seconds gets max(10 T, this)
seconds from its own start: enough to show a test failing there, not a hang's full timeout."""
HEAD_FAILED = (
    "not run: the suite already fails at the head, so fail-to-pass cannot change the verdict"
)


def _with_base(ctx: Context, runs: TestRuns, files: list[str]) -> tuple[SuiteRun, BaseRuns]:
    """The head's suite and the runs at the base, at once when the verify runs in parallel.
    When the head's suite ends in T seconds, the base runs get ``max(10 T, 10 s)`` from their
    own start (within the command timeout); when it failed, the run that only serves
    fail-to-pass stops (the no-weakening baseline goes on)."""
    bounds = Bounds(baseline=Limit(), required=Limit())

    def head() -> SuiteRun:
        suite = runs.run(ctx.project, "tests")
        took = suite.result.duration
        bound = max(BASE_BOUND_FACTOR * took, BASE_BOUND)
        why = f"the bound max(10 x the head suite's {took:.2f}s, {BASE_BOUND:g}s)"
        bounds.baseline.cut(bound, why)
        if suite.problem is not None:
            bounds.required.stop(HEAD_FAILED)
        else:
            bounds.required.cut(bound, why)
        return suite

    def base() -> BaseRuns:
        return run_at_base(ctx, files, runs, bounds)

    suite, found = ctx.lanes.map([head, base])
    assert isinstance(suite, SuiteRun) and isinstance(found, BaseRuns)
    return suite, found


def _skipped(r: RequiredTest, why: str) -> CheckResult:
    return CheckResult(id=r.id, kind="fail_to_pass", status="not_run", message=why,
                       covers=tuple(r.covers))  # fmt: skip


def _suite_check(suite: SuiteRun, ctx: Context) -> CheckResult:
    base = command_check("suite", "suite", suite.result, ctx)
    if suite.problem is None:
        counts = _counts(suite.outcomes or {})
        code = suite.result.exit_code
        return replace(base, message=f"{ctx.config.commands.test}: exit {code}, {counts}")
    tail = excerpt.tail(suite.result.tail)
    return replace(base, status="failed", message=f"{suite.problem}\n{tail}".rstrip())


def _counts(outcomes: dict[str, TestOutcome]) -> str:
    tally: dict[str, int] = {}
    for o in outcomes.values():
        tally[o.outcome] = tally.get(o.outcome, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(tally.items()))


def _required_check(test_id: str, covers: tuple[str, ...], suite: SuiteRun) -> CheckResult:
    evidence = "tests/outcomes.json"
    status: Status
    if suite.outcomes is None:
        status, message = "failed", f"no per-test results: {suite.problem}"
    elif (found := suite.outcomes.get(test_id)) is None:
        whole = suite.outcomes.get(test_id.partition("::")[0])
        if whole is not None and whole.outcome in ("failed", "error"):
            why = excerpt.first_and_decisive(whole.message)
            status, message = "failed", f"missing: its file failed to load: {why}"
        else:
            status, message = (
                "failed",
                "missing: no test with this id is in the report" + _near(test_id, suite.outcomes),
            )
    elif found.outcome != "passed":
        detail = excerpt.first_and_decisive(found.message)
        status, message = "failed", NOT_PASSING[found.outcome] + (f": {detail}" if detail else "")
    else:
        status, message = "passed", "passed"
    return CheckResult(
        id=test_id,
        kind="required",
        status=status,
        message=message,
        covers=covers,
        evidence=evidence,
    )


def _near(test_id: str, outcomes: dict[str, TestOutcome]) -> str:
    file = test_id.partition("::")[0]
    same_file = [k for k in outcomes if k.startswith(file + "::")]
    return f" (that file has: {', '.join(same_file[:5])})" if same_file else ""
