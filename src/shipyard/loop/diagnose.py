"""The diagnoser: called when the same failure comes back. A fresh context with the evidence
and read-only tools; its fix plan goes to the implementer with the next attempt."""

from __future__ import annotations

from shipyard.agents import prompts
from shipyard.agents.roles import DIAGNOSER, Diagnosis
from shipyard.excerpt import shorten
from shipyard.loop.ask import ask
from shipyard.loop.attempts import feedback, next_attempt
from shipyard.loop.context import RunContext
from shipyard.loop.state import Diagnosed, RunState
from shipyard.loop.step import Step
from shipyard.loop.verify import last_gates

__all__ = ["Diagnosis", "diagnose"]


def diagnose(ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
    state, step = state.model_copy(deep=True), Step()
    repeated = [f for f in state.failures if state.seen.get(f.fingerprint, 0) >= 2]
    query = f"{ctx.task}\n" + "\n".join(f"{f.check} {shorten(f.message, 500)}" for f in repeated)
    brief = prompts.diagnoser_brief(
        ctx.locked.text, feedback(repeated), _history(ctx), _evidence(ctx, state)
    )
    state.diagnosed += [f.fingerprint for f in repeated]
    found = ask(ctx, state, step, DIAGNOSER, brief=brief, query=query)
    if found is None:
        next_attempt(state, [feedback(state.failures)])
        return state, step
    step.event(
        DIAGNOSER.event,
        f"diagnosis ({found.confidence:.0%}): {found.root_cause[:200]}",
        **found.model_dump(),
        fingerprints=[f.fingerprint for f in repeated],
    )
    state.diagnoses.append(
        Diagnosed(failures=repeated, root_cause=found.root_cause, fix_plan=found.fix_plan,
                  attempt=state.attempt)
    )  # fmt: skip
    plan = (
        "The same failure happened twice, so it was diagnosed.\n"
        f"Root cause: {found.root_cause}\nEvidence: {found.evidence}\nFix plan: {found.fix_plan}"
    )
    next_attempt(state, [feedback(state.failures), plan])
    return state, step


def _history(ctx: RunContext) -> str:
    rows = ctx.ledger.attempts(ctx.run_id)
    lines = [f"attempt {a.n}: {a.outcome or 'open'}: {a.detail or ''}" for a in rows]
    return "\n".join(lines) or "(none)"


def _evidence(ctx: RunContext, state: RunState) -> str:
    """The last verify's gates, check by check (the failures' full messages are above)."""
    if state.last_verify is None:
        return "(no verify ran: the attempt ended before submitting)"
    return f"{prompts.evidence_text(last_gates(ctx, state))}\n(evidence files: {state.last_verify})"
