"""The implement stage: the run's implementer (:mod:`shipyard.loop.implementers`) advances the
attempt by one step; the step budgets bound it when it declares them (``step_budgets``)."""

from __future__ import annotations

from shipyard.loop.attempts import end_attempt
from shipyard.loop.context import RunContext
from shipyard.loop.fingerprint import failure
from shipyard.loop.state import RunState
from shipyard.loop.step import Step


def implement(ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
    implementer = ctx.implementer
    if implementer.step_budgets and not state.pending_calls:
        steps = ctx.config.budget.steps
        if state.step >= steps:
            state, step = state.model_copy(deep=True), Step()
            found = failure("implement", "steps", f"no submit within {steps} steps", "step_limit")
            return end_attempt(ctx, state, step, [found], "step limit"), step
    state, step = implementer.advance(ctx, state)
    if ctx.options.naive and state.stage == "verify" and state.submitted is not None:
        # the implementer said it is done: that is taken as the result
        from shipyard.loop.verify import snapshot

        state.tree, state.stage = snapshot(ctx, state.artefacts), "ship"
        step.event("naive", "shipped as submitted: no gates, no review (--naive)")
        return state, step
    if implementer.step_budgets and state.stage == "implement" and not state.pending_calls:
        state = _check_loops(ctx, state, step)
    return state, step


def _check_loops(ctx: RunContext, state: RunState, step: Step) -> RunState:
    budget = ctx.config.budget
    recent = state.recent_calls
    if len(recent) >= budget.repeat_calls and len(set(recent)) == 1:
        name = recent[-1].split(":", 1)[0]
        message = f"the same {name} call with the same arguments {len(recent)} times in a row"
        return end_attempt(
            ctx, state, step, [failure("implement", "loop", message, "loop")], "loop"
        )
    if state.idle_steps >= budget.idle_steps:
        message = f"{state.idle_steps} steps in a row without changing the worktree"
        if state.text_only:
            message += " (answering in words instead of calling tools)"
        return end_attempt(
            ctx, state, step, [failure("implement", "idle", message, "loop")], "loop"
        )
    return state
