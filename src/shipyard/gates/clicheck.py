"""CLI checks: run a command in the project, read its exit code and its two output streams.

``{port}``, ``{tmp}`` and ``{workdir}`` expand in ``run`` and in ``env`` values; with an app
running, ``SHIPYARD_APP_URL`` is its base URL. A program that is not on PATH fails the check
(the command under test is usually what the change was meant to provide), it is not exit 3.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

from shipyard import process
from shipyard.exceptions import CommandNotFound
from shipyard.gates import Context
from shipyard.gates.app import expand
from shipyard.gates.http import safe_name
from shipyard.results import CheckResult, Status, result_of
from shipyard.spec import CliCheck

TRACEBACK = "Traceback (most recent call last)"
MAX_READ = 10_000_000
TAIL_LINES = 8


def run_cli_check(
    check: CliCheck, ctx: Context, variables: Mapping[str, str], app_url: str | None
) -> CheckResult:
    name = safe_name(check.id)
    stdout, stderr = ctx.run.file(f"cli/{name}.stdout.log"), ctx.run.file(f"cli/{name}.stderr.log")
    run = check.run
    command = (
        expand(run, variables) if isinstance(run, str) else [expand(w, variables) for w in run]
    )
    shown = command if isinstance(command, str) else shlex.join(command)
    try:
        result = process.run(
            command,
            cwd=ctx.project,
            env=_env(check, ctx, variables, app_url),
            timeout=check.timeout,
            log=stdout,
            stderr_log=stderr,
            stdin=check.stdin.encode() if check.stdin is not None else None,
            what=f"checks.cli {check.id}",
        )
    except CommandNotFound as exc:
        return _result(check, "failed", str(exc), ctx, stdout, None)
    problems = _problems(check, result, _read(stdout), _read(stderr))
    if not problems:
        return _result(check, "passed", f"{shown}: exit {result.exit_code}", ctx, stdout, result)
    details = [*problems[1:], *_tails(stdout, stderr)]
    message = "\n".join([f"{shown}: {problems[0]}", *details])
    return _result(check, "failed", message, ctx, stdout, result)


def _env(
    check: CliCheck, ctx: Context, variables: Mapping[str, str], app_url: str | None
) -> dict[str, str]:
    env = {**ctx.env, **{k: expand(v, variables) for k, v in check.env.items()}}
    if app_url is not None:
        env["SHIPYARD_APP_URL"] = app_url
    return env


def _problems(check: CliCheck, result: process.CommandResult, out: str, err: str) -> list[str]:
    if result.timed_out:
        return [f"killed at its timeout of {check.timeout:g}s"]
    expect = check.expect
    problems = []
    if expect.exit is not None and result.exit_code != expect.exit:
        problems.append(f"expected exit {expect.exit}, got {result.exit_code}")
    problems += [f"stdout does not contain {t!r}" for t in expect.stdout_contains if t not in out]
    problems += [f"stderr does not contain {t!r}" for t in expect.stderr_contains if t not in err]
    if expect.stderr_empty and err.strip():
        problems.append("expected nothing on stderr")
    expects_failure = expect.exit not in (0, None) or expect.stderr_contains
    if not expects_failure and TRACEBACK in out + err:
        problems.append("it printed a traceback (an uncaught exception) even so")
    return problems


def _read(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_READ).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _tails(stdout: Path, stderr: Path) -> list[str]:
    lines = []
    for label, path in (("stdout", stdout), ("stderr", stderr)):
        tail = process.tail_of(path, TAIL_LINES)
        if tail.strip():
            lines.append(f"{label}:")
            lines += [f"  | {line}" for line in tail.splitlines()]
    return lines


def _result(
    check: CliCheck,
    status: Status,
    message: str,
    ctx: Context,
    evidence: Path,
    result: process.CommandResult | None,
) -> CheckResult:
    duration = result.duration if result is not None else None
    return result_of(check, "cli", status, message, ctx.run.rel(evidence), duration)
