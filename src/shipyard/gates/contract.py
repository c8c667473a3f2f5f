"""The contract gate: every acceptance id is covered by at least one check."""

from __future__ import annotations

from shipyard.gates import Context
from shipyard.results import CheckResult, GateResult


class ContractGate:
    name = "contract"

    def run(self, ctx: Context, blocked_by: str | None = None) -> GateResult:
        if ctx.spec is None:
            return GateResult(name=self.name, checks=(), message="no spec")
        checks = []
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
