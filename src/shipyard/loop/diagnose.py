"""The diagnoser: called when the same failure comes back. A fresh context with the evidence
and read-only tools; its fix plan goes to the implementer with the next attempt."""

from __future__ import annotations

from pydantic import BaseModel, Field

from shipyard.agents import prompts
from shipyard.agents.chat import Conversation, NoValidAnswer, structured
from shipyard.agents.tools import Toolbox
from shipyard.excerpt import shorten
from shipyard.loop import learn
from shipyard.loop.attempts import feedback, next_attempt
from shipyard.loop.context import RunContext
from shipyard.loop.state import RunState
from shipyard.loop.step import Step
from shipyard.loop.usage import add_usage
from shipyard.loop.verify import last_gates


class Diagnosis(BaseModel):
    """The root cause of the repeated failure, the evidence for it, and a fix plan."""

    root_cause: str = Field(min_length=1)
    evidence: str = Field(min_length=1)
    fix_plan: str = Field(min_length=1)
    confidence: float = Field(ge=0, le=1)


def diagnose(ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
    state, step = state.model_copy(deep=True), Step()
    repeated = [f for f in state.failures if state.seen.get(f.fingerprint, 0) >= 2]
    conv = Conversation(
        f"diagnoser-{state.attempt}", ctx.models["diagnoser"], ctx.config.models,
        on_retry=ctx.retry_notice,
    )  # fmt: skip
    assert ctx.spec_text is not None
    query = f"{ctx.task}\n" + "\n".join(f"{f.check} {shorten(f.message, 500)}" for f in repeated)
    known = learn.tell(ctx, step, "diagnoser", query)
    conv.start(
        prompts.with_knowledge(prompts.DIAGNOSER, known),
        prompts.diagnoser_brief(
            ctx.spec_text, feedback(repeated), _history(ctx), _evidence(ctx, state)
        ),
    )
    box = Toolbox(ctx.workdir, read_only=True)
    budget = ctx.config.budget
    state.diagnosed += [f.fingerprint for f in repeated]
    try:
        found, answers = structured(
            conv, Diagnosis, retries=ctx.config.models.output_retries, toolbox=box,
            max_steps=budget.diagnosis_steps,
        )  # fmt: skip
    except NoValidAnswer as exc:
        step.messages = conv.take_unsaved()
        add_usage(state, step, "diagnoser", conv.model, exc.answers)
        step.event("diagnosis", f"no diagnosis: {exc}")
        next_attempt(state, [feedback(state.failures)])
        return state, step
    step.messages = conv.take_unsaved()
    add_usage(state, step, "diagnoser", conv.model, answers)
    step.event(
        "diagnosis",
        f"diagnosis ({found.confidence:.0%}): {found.root_cause[:200]}",
        **found.model_dump(),
        fingerprints=[f.fingerprint for f in repeated],
    )
    state.diagnoses.append(
        {"failures": [f.model_dump() for f in repeated], "root_cause": found.root_cause,
         "fix_plan": found.fix_plan, "attempt": state.attempt}
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
