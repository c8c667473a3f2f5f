"""Token and cost accounting: into the ledger and the run's totals, per role.

Tokens or a cost that were not reported stay unknown (``None`` in the ledger's row, counted in
``Usage.unreported``), never 0."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from shipyard.loop.state import RunState
from shipyard.loop.step import Step
from shipyard.store.rows import UsageRow

if TYPE_CHECKING:
    from pydantic_ai.models import Model

    from shipyard.agents.chat import Answer


def add_usage(
    state: RunState, step: Step, role: str, model: Model, answers: Sequence[Answer]
) -> None:
    if not answers:
        return
    cost = [a.cost for a in answers if a.cost is not None]
    row = UsageRow(
        role=role,
        model=model.model_name,
        input_tokens=sum(a.input_tokens for a in answers),
        output_tokens=sum(a.output_tokens for a in answers),
        cost=sum(cost) if cost else None,
    )
    add_row(state, step, row, requests=len(answers))


def add_row(state: RunState, step: Step, row: UsageRow, *, requests: int = 1) -> None:
    """One usage row into the step and the run's totals; unknown tokens are not summed."""
    step.usage.append(row)
    state.usage.requests += requests
    if row.input_tokens is None or row.output_tokens is None:
        state.usage.unreported += requests
    state.usage.input_tokens += row.input_tokens or 0
    state.usage.output_tokens += row.output_tokens or 0
    state.usage.cost += row.cost or 0.0
