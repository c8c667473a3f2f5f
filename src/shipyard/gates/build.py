"""The build gate: each build command in order, stopping at the first that fails."""

from __future__ import annotations

import time

from shipyard import excerpt, process
from shipyard.config import Config
from shipyard.gates import Context, VerifiedCommand
from shipyard.results import CheckKind, CheckResult, GateResult, Status


class BuildGate:
    name = "build"
    blocking = True
    """Nothing else is checked against a build that failed."""

    def preflight(self, ctx: Context) -> None:
        pass

    def verified(self, config: Config, result: GateResult) -> list[VerifiedCommand]:
        found = []
        commands = config.commands.build
        for index, command in enumerate(commands, start=1):
            check_id = f"build-{index}"
            if any(c.id == check_id and c.status == "passed" for c in result.checks):
                key = "build" if len(commands) == 1 else f"build {index}"
                found.append(
                    VerifiedCommand(key=key, command=command, what=f"the build gate's {check_id}")
                )
        return found

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
                cwd=ctx.config.commands.folder(ctx.project),
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
    check_id: str, kind: CheckKind, result: process.CommandResult, ctx: Context
) -> CheckResult:
    status: Status
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
        kind=kind,
        status=status,
        message=message,
        evidence=ctx.run.rel(result.log),
        duration=result.duration,
    )


def _not_run(check_id: str, command: str, reason: str) -> CheckResult:
    return CheckResult(id=check_id, kind="build", status="not_run", message=f"{command}: {reason}")
