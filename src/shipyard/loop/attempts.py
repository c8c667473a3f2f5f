"""How an attempt ends: fingerprints counted, then another attempt, a diagnosis, or *blocked*.

The same fingerprint twice calls the diagnoser; a third time, or no attempts left, ends the run
blocked. Stages return the new state; nothing here is kept anywhere else.
"""

from __future__ import annotations

from collections.abc import Sequence

from shipyard.excerpt import shorten
from shipyard.loop.context import RunContext
from shipyard.loop.state import Failure, RunState
from shipyard.loop.step import Step

DIAGNOSE_AT = 2
BLOCK_AT = 3


def end_attempt(
    ctx: RunContext, state: RunState, step: Step, failures: Sequence[Failure], outcome: str
) -> RunState:
    state.failures = list(failures)
    for fingerprint in {f.fingerprint for f in failures}:
        state.seen[fingerprint] = state.seen.get(fingerprint, 0) + 1
    worst = max(failures, key=lambda f: state.seen[f.fingerprint])
    count = state.seen[worst.fingerprint]
    step.attempt_outcome = (outcome, describe(failures))
    step.event(
        "failed",
        f"attempt {state.attempt} {outcome}: {worst.gate} {worst.check}: {_first_line(worst)}",
        failures=[f.model_dump() for f in failures],
        repeats=count,
    )
    if ctx.options.naive:  # no feedback, no second attempt: nothing checked what it did
        return block(state, step, f"no submission ({_where(worst)})")
    if count >= BLOCK_AT:
        return block(state, step, f"the same failure a {_nth(count)} time: {_where(worst)}")
    if state.attempt >= ctx.config.budget.attempts:
        limit = ctx.config.budget.attempts
        return block(state, step, f"budget: {limit} attempts used; last failure: {_where(worst)}")
    if count >= DIAGNOSE_AT and worst.fingerprint not in state.diagnosed:
        state.stage = "diagnose"
        return state
    from shipyard.loop.learn import known_pitfalls

    known = known_pitfalls(ctx, state, step, failures)
    next_attempt(state, [feedback(failures), *([known] if known else [])])
    return state


def next_attempt(state: RunState, feedback_: list[str]) -> None:
    state.stage = "implement"
    state.attempt += 1
    state.step = 0
    state.idle_steps = 0
    state.text_only = 0
    state.recent_calls = []
    state.submitted = None
    state.feedback = feedback_


def feedback(failures: Sequence[Failure]) -> str:
    lines = ["Your last submission did not pass. What failed, as the gates saw it:"]
    for f in failures:
        lines.append(f"- [{f.gate}] {f.check} ({f.kind}): {shorten(f.message.strip(), 1500)}")
    lines.append("Fix the cause, run the tests yourself, then submit again.")
    return "\n".join(lines)


def describe(failures: Sequence[Failure]) -> str:
    return "; ".join(f"{f.gate} {f.check}: {_first_line(f)}" for f in failures)[:2000]


def block(state: RunState, step: Step, reason: str) -> RunState:
    """End the run *blocked*, saying why (and the open attempt with it)."""
    state.stage, state.reason = "blocked", reason
    if step.attempt_outcome is None:
        step.attempt_outcome = ("blocked", reason)
    step.event("blocked", reason)
    return state


def _where(f: Failure) -> str:
    return f"{f.gate} {f.check}: {_first_line(f)}"


def _first_line(f: Failure) -> str:
    return (f.message.strip().splitlines() or [""])[0][:200]


def _nth(n: int) -> str:
    return {3: "third", 4: "fourth"}.get(n, f"{n}th")
