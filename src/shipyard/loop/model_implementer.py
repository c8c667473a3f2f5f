"""The in-process model implementer: one durable step at a time.

A step is either one model request (its answer is written before any tool runs) or the running
of that answer's tool calls (each written as it finishes). A crash between the two, or between
tools, resumes with the calls not yet run; none runs twice.
"""

from __future__ import annotations

from pydantic_ai.messages import ModelRequest, ToolCallPart, ToolReturnPart
from pydantic_ai.models import ModelRequestParameters

from shipyard.agents import prompts
from shipyard.agents.chat import Conversation, calls_of, signature, text_of, tool_definitions
from shipyard.agents.roles import RoleName
from shipyard.agents.tools import Toolbox
from shipyard.loop import guard
from shipyard.loop.context import RunContext
from shipyard.loop.implementers import brief, open_attempt
from shipyard.loop.state import RunState
from shipyard.loop.step import Step
from shipyard.loop.usage import add_usage

ROLE = RoleName.IMPLEMENTER
NO_TOOL = (
    "No tool was called. Work only through the tools, and call submit when the change is made "
    "and tested; words are not a result."
)


class ModelImplementer:
    """A model working through Shipyard's tools (:mod:`shipyard.agents.tools`): each call of
    :meth:`advance` is one model request or the running of its tool calls."""

    name = "model"
    step_budgets = True

    def preflight(self) -> str:
        return "the implementer model, through Shipyard's tools"

    def advance(self, ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
        return advance(ctx, state)


def advance(ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
    state, step = state.model_copy(deep=True), Step()
    conv = conversation(ctx)
    if state.pending_calls:
        return _run_calls(ctx, state, step, conv)
    if state.step == 0:
        _open_attempt(ctx, state, step, conv)
    answer = conv.ask(_params(ctx))
    state.step += 1
    add_usage(state, step, ROLE, conv.model, [answer])
    calls = calls_of(answer.response)
    if calls:
        state.pending_calls = [c.tool_call_id for c in calls]
        state.done_calls = {}
        names = ", ".join(_short(c) for c in calls)
        step.event("model", f"step {state.step}: {names}", step=state.step)
        step.messages = conv.take_unsaved()
        return state, step
    # words only: not a result
    said = text_of(answer.response)
    state.text_only += 1
    state.idle_steps += 1
    step.event("model", f"step {state.step}: no tool call: {said[:120]!r}", step=state.step)
    conv.say(NO_TOOL)
    step.messages = conv.take_unsaved()
    return state, step


def conversation(ctx: RunContext) -> Conversation:
    kept = ctx.session.conversations
    conv = kept.get(ROLE)
    if conv is None:
        rows = ctx.ledger.messages(ctx.run_id, ROLE)
        conv = Conversation.restore(
            ROLE, ctx.models[ROLE], ctx.config.models, rows, on_retry=ctx.retry_notice
        )
        kept[ROLE] = conv
    return conv


def toolbox(ctx: RunContext) -> Toolbox:
    wrap = None
    if ctx.config.sandbox.kind == "bwrap":
        from shipyard import bwrap

        wrap = bwrap.tool_wrapper(ctx)
    return Toolbox(
        ctx.workdir, run_timeout=ctx.config.budget.run_timeout, config=ctx.config, wrap=wrap
    )


def _params(ctx: RunContext) -> ModelRequestParameters:
    return ModelRequestParameters(
        function_tools=tool_definitions(toolbox(ctx).specs()), allow_text_output=True
    )


def _open_attempt(ctx: RunContext, state: RunState, step: Step, conv: Conversation) -> None:
    open_attempt(state, step)
    if not conv.messages:
        told = brief(ctx, state, step)
        conv.start(
            prompts.with_knowledge(prompts.implementer_system(ctx.options.naive), told.knowledge),
            prompts.implementer_brief(told.task, told.spec_text, told.commands),
        )
    if state.feedback:
        conv.say("\n\n".join(state.feedback))
        state.feedback = []


def _run_calls(
    ctx: RunContext, state: RunState, step: Step, conv: Conversation
) -> tuple[RunState, Step]:
    response = conv.last_response
    assert response is not None, "pending tool calls without the answer that made them"
    box = toolbox(ctx)
    calls = calls_of(response)
    changed = False
    for call in calls:
        if call.tool_call_id not in state.pending_calls:
            continue
        outcome = box.call(call.tool_name, call.args)
        undone = guard.after_run_tool(ctx) if call.tool_name == "run" else []
        text = outcome.text if outcome.ok else f"error: {outcome.text}"
        if undone:
            text += "\n" + "\n".join([guard.NOTE, *undone])
        changed = changed or outcome.changed
        if outcome.submitted is not None:
            state.submitted = outcome.submitted
        state.recent_calls = (state.recent_calls + [signature(call)])[
            -ctx.config.budget.repeat_calls :
        ]
        state.pending_calls.remove(call.tool_call_id)
        state.done_calls[call.tool_call_id] = text
        first = (outcome.text.strip().splitlines() or [""])[0][:140]
        if not outcome.ok:
            shown = f"✗ {call.tool_name}: {first}"
        elif call.tool_name == "run":
            shown = f"✓ run: {first}"
        else:
            shown = f"✓ {call.tool_name}" + (" (changed)" if outcome.changed else "")
        tool_step = Step()
        tool_step.event("tool", shown, ok=outcome.ok, changed=outcome.changed)
        for line in undone:
            tool_step.event("guard", line)
        if state.pending_calls:  # written now: a crash before the next tool does not repeat it
            ctx.ledger.commit(ctx.run_id, state, tool_step)
            ctx.say_events(tool_step)
        else:
            step.events.extend(tool_step.events)
    conv.add(
        ModelRequest(parts=[_return(c, state.done_calls.get(c.tool_call_id, "")) for c in calls])
    )
    state.done_calls = {}
    state.idle_steps = 0 if changed else state.idle_steps + 1
    state.text_only = 0
    step.messages = conv.take_unsaved()
    if state.submitted is not None:
        state.stage = "verify"
        step.event("submit", f"submitted: {state.submitted[:200]}")
    return state, step


def _return(call: ToolCallPart, text: str) -> ToolReturnPart:
    return ToolReturnPart(tool_name=call.tool_name, content=text, tool_call_id=call.tool_call_id)


def _short(call: ToolCallPart) -> str:
    try:
        args = call.args_as_dict(raise_if_invalid=True)
    except (ValueError, AssertionError):
        return f"{call.tool_name}(malformed arguments)"
    key = next((k for k in ("path", "command", "pattern", "summary") if k in args), None)
    value = str(args.get(key, ""))[:80] if key else ""
    return f"{call.tool_name} {value}".strip()
