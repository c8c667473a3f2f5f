"""The reviewer: a fresh context with the spec, the diff and the evidence, never the
implementer's messages. It can only veto: the gates have already passed."""

from __future__ import annotations

from shipyard import workspace
from shipyard.agents import prompts
from shipyard.agents.roles import REVIEWER, Finding, ReviewVerdict
from shipyard.loop import learn
from shipyard.loop.ask import ask
from shipyard.loop.attempts import end_attempt
from shipyard.loop.context import RunContext
from shipyard.loop.fingerprint import failure
from shipyard.loop.state import RunState
from shipyard.loop.step import Step
from shipyard.loop.verify import last_gates
from shipyard.store.knowledge import Entry

__all__ = ["Finding", "ReviewVerdict", "review"]


def review(ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
    state, step = state.model_copy(deep=True), Step()
    locked = ctx.locked
    brief = prompts.reviewer_brief(
        locked.text,
        workspace.diff(ctx.workdir, ctx.base_sha, state.tree or ctx.base_sha),
        prompts.evidence_text(last_gates(ctx, state)),
    )
    ids = {a.id for a in locked.spec.acceptance}

    def problem(v: ReviewVerdict) -> str | None:
        if v.decision == "changes" and not v.findings:
            return "decision 'changes' needs at least one finding"
        unknown = sorted({f.acceptance_id for f in v.findings} - ids)
        if unknown:
            return f"unknown acceptance ids {unknown}; the spec has {sorted(ids)}"
        return None

    query = f"{ctx.task}\n{locked.text}"
    verdict = ask(ctx, state, step, REVIEWER, brief=brief, query=query, check=problem)
    if verdict is None:
        return state, step
    findings = [f.model_dump() for f in verdict.findings]
    if verdict.decision == "approve":
        step.event(REVIEWER.event, f"approved: {verdict.summary[:200]}", findings=findings)
        state.stage = "ship"
        return state, step
    step.event(REVIEWER.event, f"changes asked: {verdict.summary[:200]}", findings=findings)
    learn.remember(
        state,
        [
            Entry(kind="finding", text=f"{f.problem} Change: {f.change}", role=REVIEWER.name,
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
