"""The build gate: each build command in order, stopping at the first that fails."""

from __future__ import annotations

import time

from shipyard import excerpt, process
from shipyard.gates import Context
from shipyard.results import CheckResult, GateResult


class BuildGate:
    name = "build"

    def run(self, ctx: Context, blocked_by: str | None = None) -> GateResult:
        started = time.monotonic()
        checks: list[CheckResult] = []
        failed = blocked_by
        for index, command in enumerate(ctx.config.commands.build, start=1):
            check_id = f"build-{index}"
            if failed:
                checks.append(_not_run(check_id, command, failed))
                continue
            log = ctx.run.file(f"commands/{check_id}.log")
            result = process.run(
                command,
                cwd=ctx.project,
                env=ctx.env,
                timeout=ctx.timeout,
                log=log,
                what=f"commands.build[{index - 1}]",
            )
            checks.append(command_check(check_id, "build", result, ctx))
            if not result.ok:
                failed = f"{check_id} failed"
        return GateResult(name=self.name, checks=tuple(checks), duration=time.monotonic() - started)


def command_check(
    check_id: str, kind: str, result: process.CommandResult, ctx: Context
) -> CheckResult:
    if result.timed_out:
        status, message = "failed", f"{result.command}: killed at its timeout of {ctx.timeout:g}s"
    elif result.exit_code != 0:
        status, message = "failed", f"{result.command}: exit {result.exit_code}"
    else:
        status, message = "passed", f"{result.command}: exit 0"
    if status == "failed":
        last = excerpt.tail(result.tail)
        if last:
            message += "\n" + last
    return CheckResult(
        id=check_id,
        kind=kind,  # type: ignore[arg-type]
        status=status,
        message=message,
        evidence=ctx.run.rel(result.log),
        duration=result.duration,
    )


def _not_run(check_id: str, command: str, reason: str) -> CheckResult:
    return CheckResult(id=check_id, kind="build", status="not_run", message=f"{command}: {reason}")
