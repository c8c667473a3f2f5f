"""The test gate: the suite's own report, required tests, fail-to-pass and no weakening.

Per-test outcomes come from a JUnit XML report that Shipyard asks the runner for (``suite``);
never from the exit code alone. With ``--base``, the runs at the base revision (``base``).
"""

from __future__ import annotations

import time
from dataclasses import replace

from shipyard import excerpt
from shipyard.exceptions import ConfigError
from shipyard.gates import Context
from shipyard.gates.base import fail_to_pass, run_at_base, weakening
from shipyard.gates.build import command_check
from shipyard.gates.junit import TestOutcome
from shipyard.gates.suite import (
    MOCHA_REPORTER,
    NODE_REPORTER,
    NOT_PASSING,
    SuiteRun,
    run_suite,
    with_report,
)
from shipyard.results import CheckResult, GateResult

__all__ = ["MOCHA_REPORTER", "NODE_REPORTER", "TestGate", "with_report"]


class TestGate:
    name = "tests"

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
        suite = run_suite(ctx, ctx.project, "tests")
        checks = [_suite_check(suite, ctx)]
        checks += [_required_check(r.id, r.covers, suite) for r in required]
        if ctx.base is not None:
            runs = run_at_base(ctx, sorted({r.file for r in required}))
            passing = {c.id for c in checks if c.kind == "required" and c.status == "passed"}
            if runs.required is not None:
                only = ctx.fail_to_pass_only  # judged on all required tests, shown for these
                checks += [
                    c for c in fail_to_pass(required, runs, passing) if only is None or c.id in only
                ]
            checks += weakening(runs, suite)
        return GateResult(name=self.name, checks=tuple(checks), duration=time.monotonic() - started)


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
        status=status,  # type: ignore[arg-type]
        message=message,
        covers=covers,
        evidence=evidence,
    )


def _near(test_id: str, outcomes: dict[str, TestOutcome]) -> str:
    file = test_id.partition("::")[0]
    same_file = [k for k in outcomes if k.startswith(file + "::")]
    return f" (that file has: {', '.join(same_file[:5])})" if same_file else ""
