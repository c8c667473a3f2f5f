"""One run of the test command with a JUnit report Shipyard asked for, read into outcomes.

Shipyard adds the report option itself for pytest, ``node --test`` (its own reporter) and mocha
(its own reporter); for another runner ``commands.junit`` names the file the runner writes.
A run at the base revision (``at_base``) also keeps going past collection errors (pytest), is
stopped with SIGINT at its time limit so the runner writes what finished, and says which test
was running then.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shipyard import process
from shipyard.exceptions import ConfigError
from shipyard.gates import Context
from shipyard.gates.junit import (
    INTERRUPTED,
    ReportError,
    TestOutcome,
    complete_report,
    from_project,
    read_report,
)

NODE_REPORTER = Path(__file__).with_name("node_junit_reporter.mjs")
MOCHA_REPORTER = Path(__file__).with_name("mocha_junit_reporter.js")
PYTEST_PLUGIN_DIR = Path(__file__).with_name("pytest_plugin")
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
    pytest: bool = False


def _is_pytest(word: str) -> bool:
    return word == "pytest" or word.endswith("/pytest")


def _is_mocha(word: str) -> bool:
    return word in ("mocha", "_mocha") or word.endswith(("/mocha", "/_mocha", "/mocha.js"))


def runs_pytest(command: str) -> bool:
    return any(_is_pytest(w) for w in _words(command))


def with_report(
    command: str, report: Path, junit: str | None, project: Path, at_base: bool = False
) -> tuple[str, Path]:
    """The test command with the runner's JUnit option added, and where the report will be."""
    words = _words(command)
    if any(_is_pytest(w) for w in words):
        extra = [f"--junitxml={report}", "-o", "junit_family=xunit1"]
        if at_base:
            extra += ["--continue-on-collection-errors", "-p", "shipyard_running"]
        return _append_to_runner(command, shlex.join(extra), _is_pytest), report
    node = re.search(r"\bnode\b(?:\s+\S+)*?\s+--test(?=\s|$)", command)
    if node:
        flags = shlex.join([
            "--test-reporter=spec", "--test-reporter-destination=stdout",
            f"--test-reporter={NODE_REPORTER}", f"--test-reporter-destination={report}",
        ])  # fmt: skip
        return f"{command[: node.end()]} {flags}{command[node.end() :]}", report
    if any(_is_mocha(w) for w in words):
        extra = shlex.join(
            ["--reporter", str(MOCHA_REPORTER), "--reporter-option", f"output={report}"]
        )
        return _append_to_runner(command, extra, _is_mocha), report
    if junit:
        return command, project / junit
    raise ConfigError(
        "Shipyard adds a JUnit report itself only for pytest, node --test and mocha; "
        "for another runner set commands.junit to the JUnit XML file it writes",
        field="commands.test",
    )


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


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


def _append_to_runner(command: str, extra: str, is_runner: Callable[[str], bool]) -> str:
    """``extra`` added to the arguments of the last simple command that runs the runner: not to
    a ``| tee`` after it, not inside a quoted ``-k "a|b"``, not to a ``pytest --version`` before."""
    ends = []
    for start, end in _simple_commands(command):
        try:
            words = shlex.split(command[start:end])
        except ValueError:
            continue
        if any(is_runner(w) for w in words):
            ends.append(end)
    if not ends:
        return f"{command} {extra}"
    cut = len(command[: ends[-1]].rstrip())
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


def run_suite(
    ctx: Context,
    cwd: Path,
    label: str,
    env: dict[str, str] | None = None,
    *,
    at_base: bool = False,
) -> SuiteRun:
    command = ctx.config.commands.test
    assert command is not None
    own = ctx.run.file(f"{label}/junit.xml")
    full, report = with_report(command, own, ctx.config.commands.junit, cwd, at_base)
    _clear(report, None if report == own else cwd, ctx.config.source)
    env = dict(env or ctx.env)
    running = ctx.run.file(f"{label}/running.txt")
    if at_base:
        env["SHIPYARD_RUNNING_FILE"] = str(running)
    result = process.run(
        full, cwd=cwd, env=env, timeout=ctx.timeout, log=ctx.run.file(f"{label}/output.log"),
        what="commands.test", interrupt=at_base,
    )  # fmt: skip
    pytest = runs_pytest(command)
    stopped = f"killed at its timeout of {ctx.timeout:g}s"
    if result.timed_out and not at_base:
        return SuiteRun(result=result, outcomes=None, problem=stopped, pytest=pytest)
    if result.timed_out:
        complete_report(report)
    try:
        outcomes = read_report(report, cwd)
    except ReportError as exc:
        why = stopped if result.timed_out else f"exit {result.exit_code}"
        return SuiteRun(result=result, outcomes=None, problem=f"{exc} ({why})", pytest=pytest)
    if result.timed_out:
        outcomes = _with_running(outcomes, running, cwd)
    ctx.run.write_json(f"{label}/outcomes.json", [o.__dict__ for o in outcomes.values()])
    problem = stopped if result.timed_out else _problem(outcomes, result)
    return SuiteRun(result=result, outcomes=outcomes, problem=problem, pytest=pytest)


def _problem(outcomes: dict[str, TestOutcome], result: process.CommandResult) -> str | None:
    bad = [o for o in outcomes.values() if o.outcome in ("failed", "error")]
    if not outcomes:
        return "the suite ran zero tests"
    if bad:
        names = ", ".join(o.id for o in bad[:5]) + (
            f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        )
        return f"{len(bad)} of {len(outcomes)} tests failed: {names}"
    if result.exit_code != 0:
        return f"the test command exited {result.exit_code} although its report shows no failure"
    return None


def _with_running(
    outcomes: dict[str, TestOutcome], running: Path, cwd: Path
) -> dict[str, TestOutcome]:
    """The test that was running when the run was stopped, as failed (timed out) there: a
    pytest node id, a mocha ``FILE::TITLES``, or (``node --test``) the test file being run."""
    try:
        nodeid = running.read_text(encoding="utf-8").strip()
    except OSError:
        return outcomes
    if not nodeid:
        return outcomes
    file, sep, rest = nodeid.partition("::")
    if not sep and file in outcomes:
        return outcomes  # the file finished, with a result of its own
    test_id = f"{from_project(file, cwd)}{sep}{rest}"
    if test_id in outcomes:
        return outcomes
    timed_out = TestOutcome(id=test_id, outcome="failed", message=INTERRUPTED, interrupted=True)
    return {**outcomes, test_id: timed_out}
