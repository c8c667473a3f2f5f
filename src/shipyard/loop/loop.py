"""The delivery loop: ``shipyard run`` and ``shipyard resume``.

    plan ─► implement ─► verify ─► review ─► ship
               ▲            │         │
               └─ diagnose ◄┴─────────┘   (a failure twice → diagnosis; three times → blocked)

Each stage takes the state and returns the next one with what it did (a ``Step``); the step and
the new state are written in one transaction before the next stage starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shipyard.config import Config
from shipyard.loop.attempts import block
from shipyard.loop.context import RunContext
from shipyard.loop.state import FINAL, RunState
from shipyard.loop.step import Step


def _stages() -> dict[str, Callable[[RunContext, RunState], tuple[RunState, Step]]]:
    from shipyard.loop.diagnose import diagnose
    from shipyard.loop.implement import implement
    from shipyard.loop.plan import plan
    from shipyard.loop.review import review
    from shipyard.loop.ship import ship
    from shipyard.loop.verify import verify

    return {
        "plan": plan, "implement": implement, "verify": verify,
        "review": review, "diagnose": diagnose, "ship": ship,
    }  # fmt: skip


def drive(ctx: RunContext, state: RunState) -> RunState:
    stages = _stages()
    clock = time.monotonic()
    while state.stage not in FINAL:
        spent = time.monotonic() - clock
        if state.stage != "ship" and (limit := budget_hit(ctx.config, state, spent)) is not None:
            step = Step()
            new_state = block(state.model_copy(deep=True), step, limit)
        else:
            new_state, step = stages[state.stage](ctx, state)
        now = time.monotonic()
        new_state.elapsed += now - clock
        clock = now
        ctx.ledger.commit(ctx.run_id, new_state, step, attempt=state.attempt)
        ctx.say_events(step)
        state = new_state
    return state


def budget_hit(config: Config, state: RunState, unsaved_seconds: float) -> str | None:
    budget = config.budget
    if state.usage.tokens >= budget.tokens:
        return f"budget: {state.usage.tokens:,} tokens used (limit {budget.tokens:,})"
    if budget.cost is not None and state.usage.cost >= budget.cost:
        return f"budget: ${state.usage.cost:.2f} spent (limit ${budget.cost:.2f})"
    if state.elapsed + unsaved_seconds >= budget.wall:
        return f"budget: {state.elapsed + unsaved_seconds:.0f}s of work (limit {budget.wall:.0f}s)"
    return None
