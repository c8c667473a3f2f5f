"""Token and cost accounting: into the ledger and the run's totals, per role."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard.loop.state import RunState
from shipyard.loop.step import Step
from shipyard.store.rows import UsageRow

if TYPE_CHECKING:
    from shipyard.agents.chat import Answer


def add_usage(
    state: RunState, step: Step, role: str, model: Any, answers: Sequence[Answer]
) -> None:
    if not answers:
        return
    cost = [a.cost for a in answers if a.cost is not None]
    row = UsageRow(
        role=role,
        model=getattr(model, "model_name", str(model)),
        input_tokens=sum(a.input_tokens for a in answers),
        output_tokens=sum(a.output_tokens for a in answers),
        cost=sum(cost) if cost else None,
    )
    step.usage.append(row)
    state.usage.requests += len(answers)
    state.usage.input_tokens += row.input_tokens
    state.usage.output_tokens += row.output_tokens
    state.usage.cost += row.cost or 0.0
