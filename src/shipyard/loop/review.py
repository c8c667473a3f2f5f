"""The reviewer: a fresh context with the spec, the diff and the evidence, never the
implementer's messages. It can only veto: the gates have already passed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shipyard import workspace
from shipyard.agents import prompts
from shipyard.agents.chat import Conversation, NoValidAnswer, structured
from shipyard.loop import learn
from shipyard.loop.attempts import block, end_attempt
from shipyard.loop.context import RunContext
from shipyard.loop.fingerprint import failure
from shipyard.loop.state import RunState
from shipyard.loop.step import Step
from shipyard.loop.usage import add_usage
from shipyard.loop.verify import last_gates
from shipyard.store.knowledge import Entry


class Finding(BaseModel):
    acceptance_id: str = Field(description="The acceptance id this finding is about.")
    problem: str = Field(min_length=1)
    change: str = Field(min_length=1, description="What the implementer should change.")


class ReviewVerdict(BaseModel):
    """approve, or changes with findings tied to acceptance ids."""

    decision: Literal["approve", "changes"]
    summary: str = ""
    findings: list[Finding] = Field(default_factory=list)


def review(ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
    state, step = state.model_copy(deep=True), Step()
    conv = Conversation(
        f"reviewer-{state.attempt}", ctx.models["reviewer"], ctx.config.models,
        on_retry=ctx.retry_notice,
    )  # fmt: skip
    assert ctx.spec_text is not None and ctx.spec is not None
    known = learn.tell(ctx, step, "reviewer", f"{ctx.task}\n{ctx.spec_text}")
    conv.start(
        prompts.with_knowledge(prompts.REVIEWER, known),
        prompts.reviewer_brief(
            ctx.spec_text,
            workspace.diff(ctx.workdir, ctx.base_sha, state.tree or ctx.base_sha),
            prompts.evidence_text(last_gates(ctx, state)),
        ),
    )
    ids = {a.id for a in ctx.spec.acceptance}

    def problem(v: ReviewVerdict) -> str | None:
        if v.decision == "changes" and not v.findings:
            return "decision 'changes' needs at least one finding"
        unknown = sorted({f.acceptance_id for f in v.findings} - ids)
        if unknown:
            return f"unknown acceptance ids {unknown}; the spec has {sorted(ids)}"
        return None

    try:
        verdict, answers = structured(
            conv, ReviewVerdict, retries=ctx.config.models.output_retries, check=problem
        )
    except NoValidAnswer as exc:
        step.messages = conv.take_unsaved()
        add_usage(state, step, "reviewer", conv.model, exc.answers)
        return block(state, step, f"the reviewer gave no valid verdict: {exc}"), step
    step.messages = conv.take_unsaved()
    add_usage(state, step, "reviewer", conv.model, answers)
    findings = [f.model_dump() for f in verdict.findings]
    if verdict.decision == "approve":
        step.event("review", f"approved: {verdict.summary[:200]}", findings=findings)
        state.stage = "ship"
        return state, step
    step.event("review", f"changes asked: {verdict.summary[:200]}", findings=findings)
    learn.remember(
        state,
        [
            Entry(kind="finding", text=f"{f.problem} Change: {f.change}", role="reviewer",
                  run_id=ctx.run_id, evidence=f"review of attempt {state.attempt}")
            for f in verdict.findings
        ],
    )  # fmt: skip
    failures = [
        failure("review", f.acceptance_id, f"{f.problem} -> {f.change}", "changes")
        for f in verdict.findings
    ]
    state = end_attempt(ctx, state, step, failures, "changes")
    if state.stage == "implement":
        lines = ["The gates passed, but the independent reviewer asks for changes:"]
        lines += [f"- [{f.acceptance_id}] {f.problem} Change: {f.change}" for f in verdict.findings]
        state.feedback = ["\n".join(lines)]
    return state, step
