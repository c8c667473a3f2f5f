"""The test gate: the suite's own report, required tests, fail-to-pass and no weakening.

Per-test outcomes come from a JUnit XML report that Shipyard asks the runner for (pytest and
``node --test``) or that the config names (``commands.junit``); never from the exit code alone.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from shipyard import process, workspace
from shipyard.exceptions import ConfigError
from shipyard.gates import Context
from shipyard.gates.build import command_check
from shipyard.gates.junit import ReportError, TestOutcome, read_report
from shipyard.results import CheckResult, GateResult

NODE_REPORTER = Path(__file__).with_name("node_junit_reporter.mjs")
NOT_PASSING = {
    "failed": "failed",
    "error": "errored",
    "skipped": "was skipped",
    "xfail": "is marked xfail (expected to fail)",
}


@dataclass(frozen=True, kw_only=True)
class SuiteRun:
    result: process.CommandResult
    outcomes: dict[str, TestOutcome] | None
    problem: str | None
    """Why the suite run is not a pass, or None."""


def with_report(command: str, report: Path, junit: str | None, project: Path) -> tuple[str, Path]:
    """The test command with the runner's JUnit option added, and where the report will be."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if any(w == "pytest" or w.endswith("/pytest") for w in words):
        extra = shlex.join([f"--junitxml={report}", "-o", "junit_family=xunit1"])
        return _append_to_pytest(command, extra), report
    node = re.search(r"\bnode\b(?:\s+\S+)*?\s+--test(?=\s|$)", command)
    if node:
        flags = shlex.join([
            "--test-reporter=spec", "--test-reporter-destination=stdout",
            f"--test-reporter={NODE_REPORTER}", f"--test-reporter-destination={report}",
        ])  # fmt: skip
        return f"{command[: node.end()]} {flags}{command[node.end() :]}", report
    if junit:
        return command, project / junit
    raise ConfigError(
        "Shipyard adds a JUnit report itself only for pytest and node --test; "
        "for another runner set commands.junit to the JUnit XML file it writes",
        field="commands.test",
    )


def _simple_commands(command: str) -> list[tuple[int, int]]:
    """(start, end) of each simple command: split at unquoted ``|``, ``;``, ``&`` and newlines."""
    spans, start, quote, i = [], 0, "", 0
    while i < len(command):
        ch = command[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "\\":
            i += 1
        elif ch in "|;&\n" and not command[max(0, i - 1) : i + 1].endswith((">&", "<&")):
            spans.append((start, i))
            start = i + 1
        i += 1
    spans.append((start, len(command)))
    return spans


def _append_to_pytest(command: str, extra: str) -> str:
    """``extra`` added to the arguments of the last simple command that runs pytest: not to a
    ``| tee`` after it, not inside a quoted ``-k "a|b"``, not to a ``pytest --version`` before."""
    runs_pytest = []
    for start, end in _simple_commands(command):
        try:
            words = shlex.split(command[start:end])
        except ValueError:
            continue
        if any(w == "pytest" or w.endswith("/pytest") for w in words):
            runs_pytest.append(end)
    if not runs_pytest:
        return f"{command} {extra}"
    end = runs_pytest[-1]
    cut = len(command[:end].rstrip())
    return f"{command[:cut]} {extra}{command[cut:]}"


def _clear(report: Path, project: Path | None, source: str) -> None:
    """Remove a stale report before the run. One named by ``commands.junit`` must resolve inside
    the project (a symlink may not lead out of it); only a regular file is ever removed."""
    if project is not None and not report.resolve().is_relative_to(project.resolve()):
        raise ConfigError(
            f"{report} leads outside the project (through a symlink): the report must be "
            "inside the project",
            file=source or None,
            field="commands.junit",
        )
    if report.is_file() and not report.is_symlink():
        report.unlink()


def run_suite(ctx: Context, cwd: Path, label: str, env: dict[str, str] | None = None) -> SuiteRun:
    command = ctx.config.commands.test
    assert command is not None
    own = ctx.run.file(f"{label}/junit.xml")
    full, report = with_report(command, own, ctx.config.commands.junit, cwd)
    _clear(report, None if report == own else cwd, ctx.config.source)
    result = process.run(
        full,
        cwd=cwd,
        env=env or ctx.env,
        timeout=ctx.timeout,
        log=ctx.run.file(f"{label}/output.log"),
        what="commands.test",
    )
    if result.timed_out:
        return SuiteRun(
            result=result, outcomes=None, problem=f"killed at its timeout of {ctx.timeout:g}s"
        )
    try:
        outcomes = read_report(report, cwd)
    except ReportError as exc:
        return SuiteRun(result=result, outcomes=None, problem=f"{exc} (exit {result.exit_code})")
    ctx.run.write_json(f"{label}/outcomes.json", [o.__dict__ for o in outcomes.values()])
    bad = [o for o in outcomes.values() if o.outcome in ("failed", "error")]
    if not outcomes:
        problem: str | None = "the suite ran zero tests"
    elif bad:
        names = ", ".join(o.id for o in bad[:5]) + (
            f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        )
        problem = f"{len(bad)} of {len(outcomes)} tests failed: {names}"
    elif result.exit_code != 0:
        problem = f"the test command exited {result.exit_code} although its report shows no failure"
    else:
        problem = None
    return SuiteRun(result=result, outcomes=outcomes, problem=problem)


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
            checks += _against_base(ctx, suite)
        return GateResult(name=self.name, checks=tuple(checks), duration=time.monotonic() - started)


def _suite_check(suite: SuiteRun, ctx: Context) -> CheckResult:
    base = command_check("suite", "suite", suite.result, ctx)
    if suite.problem is None:
        counts = _counts(suite.outcomes or {})
        code = suite.result.exit_code
        return replace(base, message=f"{ctx.config.commands.test}: exit {code}, {counts}")
    tail = "\n".join(suite.result.tail.splitlines()[-8:])
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
        status, message = (
            "failed",
            "missing: no test with this id is in the report" + _near(test_id, suite.outcomes),
        )
    elif found.outcome != "passed":
        detail = f": {found.message.splitlines()[0]}" if found.message else ""
        status, message = "failed", f"{NOT_PASSING[found.outcome]}{detail}"
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


def _against_base(ctx: Context, now: SuiteRun) -> list[CheckResult]:
    assert ctx.base is not None
    required = ctx.spec.checks.tests.required if ctx.spec else ()
    files = sorted({r.file for r in required})
    with workspace.worktree(ctx.project, ctx.base) as tree:
        env = _base_env(ctx, tree)
        reuse = not any(workspace.exists_at(ctx.project, ctx.base, f) for f in files)
        baseline = None if reuse else run_suite(ctx, tree, "base/original", env)
        for f in files:
            source, target = ctx.project / f, tree / f
            if source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        with_new = run_suite(ctx, tree, "base/with-required-tests", env) if reuse or files else None
    if baseline is None:
        baseline = with_new
    only = ctx.fail_to_pass_only
    checks = [
        _fail_to_pass(r.id, r.covers, with_new) for r in required if only is None or r.id in only
    ]
    label = "base/with-required-tests" if reuse else "base/original"
    checks += _weakening(baseline, now, exclude=set(files) if reuse else set(), label=label)
    return checks


def _base_env(ctx: Context, tree: Path) -> dict[str, str]:
    """Make the old code importable first: src/ and the root of the base worktree."""
    modules = ctx.project / "node_modules"
    if modules.is_dir() and not (tree / "node_modules").exists():
        (tree / "node_modules").symlink_to(modules)
    env = dict(ctx.env)
    paths = [str(p) for p in (tree / "src", tree) if p.is_dir()]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _fail_to_pass(test_id: str, covers: tuple[str, ...], at_base: SuiteRun | None) -> CheckResult:
    found = at_base.outcomes.get(test_id) if at_base and at_base.outcomes else None
    if found is not None and found.outcome == "passed":
        status, message = "failed", "passes against the base code: it cannot detect the change"
    else:
        how = "missing" if found is None else NOT_PASSING[found.outcome]
        status, message = "passed", f"fails against the base code ({how} there)"
    return CheckResult(
        id=test_id,
        kind="fail_to_pass",
        status=status,
        message=message,
        covers=covers,
        evidence="base/with-required-tests/outcomes.json",
    )


def _weakening(
    base: SuiteRun | None, now: SuiteRun, exclude: set[str], label: str
) -> list[CheckResult]:
    if base is None or base.outcomes is None:
        why = base.problem if base else "no tests"
        return [
            CheckResult(
                id="no-weakening",
                kind="weakening",
                status="passed",
                message=f"nothing to compare: the base revision's suite gave no report ({why})",
            )
        ]
    current = now.outcomes or {}
    weakened = []
    for test_id, old in base.outcomes.items():
        if old.outcome != "passed" or test_id.partition("::")[0] in exclude:
            continue
        new = current.get(test_id)
        if new is None or new.outcome != "passed":
            how = "missing now" if new is None else f"{NOT_PASSING[new.outcome]} now"
            weakened.append(
                CheckResult(
                    id=test_id,
                    kind="weakening",
                    status="failed",
                    message=f"passed at the base revision, {how}",
                    evidence=f"{label}/outcomes.json",
                )
            )
    passing = sum(1 for o in base.outcomes.values() if o.outcome == "passed")
    return weakened or [
        CheckResult(
            id="no-weakening",
            kind="weakening",
            status="passed",
            message=f"all {passing} tests passing at the base revision still pass",
        )
    ]
