"""One run of the test command with a JUnit report Shipyard asked for, read into outcomes.

Shipyard adds the report option itself for pytest, ``node --test`` and mocha (its own reporters),
vitest (its built-in ``junit`` reporter) and jest (``jest-junit``, which the project installs);
for another runner ``commands.junit`` names the file the runner writes. Reports go to the run's
evidence folder under ``.shipyard/``, never into the project.
A run at the base revision (``at_base``) also keeps going past collection errors (pytest), is
stopped with SIGINT at its time limit so the runner writes what finished, and says which test
was running then.
"""

from __future__ import annotations

import re
import shlex
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from shipyard import process
from shipyard.exceptions import ConfigError
from shipyard.gates import Context
from shipyard.gates.jest import is_jest, jest_env
from shipyard.gates.junit import (
    INTERRUPTED,
    ReportError,
    TestOutcome,
    complete_report,
    from_project,
    read_report,
)
from shipyard.lanes import Limit

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


def _is_vitest(word: str) -> bool:
    return word == "vitest" or word.endswith(("/vitest", "/vitest.mjs"))


def runs_pytest(command: str) -> bool:
    return any(_is_pytest(w) for w in _words(command))


NODE_TEST = re.compile(r"\bnode\b(?:\s+\S+)*?\s+--test(?=\s|$)")


def runner(command: str) -> str | None:
    """The runner Shipyard adds a report option for, from the command's words, in this order:
    ``pytest``, ``node`` (``node --test``), ``mocha``, ``vitest``, ``jest``; else None."""
    words = _words(command)
    if any(_is_pytest(w) for w in words):
        return "pytest"
    if NODE_TEST.search(command):
        return "node"
    for name, test in (("mocha", _is_mocha), ("vitest", _is_vitest), ("jest", is_jest)):
        if any(test(w) for w in words):
            return name
    return None


def with_report(
    command: str, report: Path, junit: str | None, project: Path, at_base: bool = False
) -> tuple[str, Path]:
    """The test command with the runner's JUnit option added, and where the report will be."""
    kind = runner(command)
    if kind == "pytest":
        extra = [f"--junitxml={report}", "-o", "junit_family=xunit1"]
        if at_base:
            extra += ["--continue-on-collection-errors", "-p", "shipyard_running"]
        return _append_to_runner(command, shlex.join(extra), _is_pytest), report
    node = NODE_TEST.search(command)
    if kind == "node" and node:
        flags = shlex.join([
            "--test-reporter=spec", "--test-reporter-destination=stdout",
            f"--test-reporter={NODE_REPORTER}", f"--test-reporter-destination={report}",
        ])  # fmt: skip
        return f"{command[: node.end()]} {flags}{command[node.end() :]}", report
    if kind == "mocha":
        mocha = ["--reporter", str(MOCHA_REPORTER), "--reporter-option", f"output={report}"]
        return _append_to_runner(command, shlex.join(mocha), _is_mocha), report
    if kind == "vitest":
        words = set(_words(command))
        run = [] if {"run", "--run"} & words else ["--run"]  # never watch mode
        vitest = [*run, "--reporter=default", "--reporter=junit", f"--outputFile={report}"]
        return _append_to_runner(command, shlex.join(vitest), _is_vitest), report
    if kind == "jest":
        jest = shlex.join(["--reporters=default", "--reporters=jest-junit"])
        return _append_to_runner(command, jest, is_jest), report
    if junit:
        return command, project / junit
    raise ConfigError(
        "Shipyard adds a JUnit report itself only for pytest, node --test, mocha, vitest and "
        "jest; for another runner set commands.junit to the JUnit XML file it writes"
        + _script_hint(command, project),
        field="commands.test",
    )


def _script_hint(command: str, project: Path) -> str:
    """For ``npm test`` and the like: the script it runs, to name in ``commands.test``."""
    import json

    words = _words(command)
    if not words or words[0] not in ("npm", "yarn", "pnpm"):
        return ""
    name = words[-1] if words[1:2] in (["run"], ["run-script"]) and len(words) > 2 else "test"
    try:
        scripts = json.loads((project / "package.json").read_text(encoding="utf-8"))["scripts"]
        script = str(scripts[name])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return (
        f" ({words[0]} passes no reporter option through: name the runner of its "
        f"{name!r} script instead, e.g. test = {json.dumps('node_modules/.bin/' + script)})"
    )


def report_env(
    command: str, report: Path, cwd: Path, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What the runner's reporter reads from the environment (jest: :func:`jest.jest_env`)."""
    return jest_env(command, report, cwd, env) if runner(command) == "jest" else {}


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
    limit: Limit | None = None,
    command: str | None = None,
) -> SuiteRun:
    """``command``: the test command with this run's own placeholders (``ctx.isolated``)."""
    command = command or ctx.config.commands.test
    assert command is not None
    own = ctx.run.file(f"{label}/junit.xml")
    full, report = with_report(command, own, ctx.config.commands.junit, cwd, at_base)
    _clear(report, None if report == own else cwd, ctx.config.source)
    root, cwd = cwd, ctx.config.commands.folder(cwd)
    if not cwd.is_dir():  # the head's is checked before anything runs (shipyard.services)
        what = "is not a folder" if cwd.exists() else "does not exist"
        return not_run(ctx, label, command, f"could not check: commands.cwd {what} there: {cwd}")
    env = {**(env or ctx.env), **report_env(command, report, cwd, env or ctx.env)}
    running = ctx.run.file(f"{label}/running.txt")
    if at_base:
        env["SHIPYARD_RUNNING_FILE"] = str(running)
    with ctx.lanes.slot():
        result = process.run(
            full, cwd=cwd, env=env, timeout=ctx.timeout, log=ctx.run.file(f"{label}/output.log"),
            what="commands.test", interrupt=at_base, limit=limit,
        )  # fmt: skip
    pytest = runs_pytest(command)
    stopped = f"killed at its timeout of {ctx.timeout:g}s"
    if limit is not None and limit.seconds is not None and limit.seconds < ctx.timeout:
        stopped = f"stopped at {limit.seconds:.3g}s, {limit.why} (SIGINT, then SIGKILL)"
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
    outcomes = _rooted(outcomes, cwd, root)
    ctx.run.write_json(f"{label}/outcomes.json", [o.__dict__ for o in outcomes.values()])
    problem = stopped if result.timed_out else _problem(outcomes, result)
    return SuiteRun(result=result, outcomes=outcomes, problem=problem, pytest=pytest)


def not_run(ctx: Context, label: str, command: str, problem: str) -> SuiteRun:
    """A run that could not happen: no results, ``problem`` why (also in its output log)."""
    log = ctx.run.file(f"{label}/output.log")
    log.write_text(f"{problem}\n", encoding="utf-8")
    result = process.CommandResult(
        command=command, exit_code=None, duration=0.0, timed_out=False, log=log, tail=""
    )
    return SuiteRun(result=result, outcomes=None, problem=problem)


def _rooted(outcomes: dict[str, TestOutcome], cwd: Path, root: Path) -> dict[str, TestOutcome]:
    """Ids of a suite run in ``[commands] cwd``, made relative to the project root again."""
    if cwd == root:
        return outcomes
    prefix = cwd.relative_to(root).as_posix()
    rooted = {}
    for outcome in outcomes.values():
        file, sep, rest = outcome.id.partition("::")
        if file and (cwd / file).is_file():
            outcome = replace(outcome, id=f"{prefix}/{file}{sep}{rest}")
        rooted[outcome.id] = outcome
    return rooted


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


ADDRESS_IN_USE = re.compile(r"address already in use|EADDRINUSE", re.IGNORECASE)
"""A run that failed on this could not bind a fixed port another test run held."""


PORT_IN_USE_LOG = "output.port-in-use.log"
"""The first run's output, when it found its port in use and ran again alone."""


class TestRuns:
    """The test runs of one tests gate (the head's suite, the runs at the base).

    They overlap when the verify runs in parallel. A run that failed on a port another run
    held ("address already in use") waits until the other runs have ended and runs again,
    alone: a suite that binds a fixed port gets the verdict it gets one run after another.
    Test runs that share one ``[services]`` instance (a database, a queue) must never
    overlap: such runs pass ``overlap=False`` and run one at a time."""

    def __init__(self, ctx: Context, overlap: bool | None = None) -> None:
        self.ctx = ctx
        self.overlap = ctx.lanes.parallel if overlap is None else overlap
        self._changed = threading.Condition()
        self._running = 0
        self._alone = threading.Lock()

    def run(
        self, cwd: Path, label: str, env: dict[str, str] | None = None, *,
        at_base: bool = False, limit: Limit | None = None, command: str | None = None,
    ) -> SuiteRun:  # fmt: skip
        if not self.overlap:
            with self._alone:
                return run_suite(self.ctx, cwd, label, env, at_base=at_base, limit=limit,
                                 command=command)  # fmt: skip
        found = self._counted(cwd, label, env, at_base, limit, command, wait=False)
        if found.result.ok or not ADDRESS_IN_USE.search(process.tail_of(found.result.log, 200)):
            return found
        found.result.log.replace(found.result.log.with_name(PORT_IN_USE_LOG))  # kept beside
        again = self._counted(cwd, label, env, at_base, limit, command, wait=True)
        note = "(run again alone: its first run found a port in use)"
        return replace(again, problem=again.problem and f"{again.problem} {note}")

    def _counted(
        self, cwd: Path, label: str, env: dict[str, str] | None, at_base: bool,
        limit: Limit | None, command: str | None, *, wait: bool,
    ) -> SuiteRun:  # fmt: skip
        """One run, counted while it runs; with ``wait``, only once no other run is going."""
        with self._changed:
            if wait:
                self._changed.wait_for(lambda: self._running == 0)
            self._running += 1
        try:
            return run_suite(
                self.ctx, cwd, label, env, at_base=at_base, limit=limit, command=command
            )
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()
