"""The contract gate: every acceptance id is covered by at least one check."""

from __future__ import annotations

from shipyard.config import Config
from shipyard.gates import Context, VerifiedCommand
from shipyard.results import CheckResult, GateResult, Status

NO_SPEC = (
    "no spec: only the build and the test suite ran, nothing checked the acceptance criteria "
    "or the running app (`shipyard init` writes a spec.yaml skeleton; docs/spec.md)"
)


class ContractGate:
    name = "contract"
    blocking = False

    def preflight(self, ctx: Context) -> None:
        pass

    def verified(self, config: Config, result: GateResult) -> list[VerifiedCommand]:
        return []

    def run(self, ctx: Context, blocked_by: str | None = None) -> GateResult:
        if ctx.spec is None:
            return GateResult(name=self.name, checks=(), message=NO_SPEC)
        checks = []
        status: Status
        for acc in ctx.spec.acceptance:
            by = [check.id for _, check in ctx.spec.all_checks() if acc.id in check.covers]
            if by:
                status, message = "passed", f"covered by {', '.join(by)}"
            else:
                status, message = "failed", f"no check covers it: {acc.text}"
            checks.append(
                CheckResult(
                    id=acc.id, kind="coverage", status=status, message=message, covers=(acc.id,)
                )
            )
        return GateResult(name=self.name, checks=tuple(checks))
