"""The one place a role (:class:`shipyard.agents.roles.Role`) is asked: a fresh conversation with
its instructions and what the project's knowledge tells it, a structured answer validated on
arrival, its messages and usage into the step, and, when it gives no valid answer, the run
blocked (or the stage told, for a role that does not block)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

from shipyard.agents import prompts
from shipyard.agents.chat import Conversation, NoValidAnswer, structured
from shipyard.agents.roles import Role
from shipyard.agents.tools import Toolbox
from shipyard.loop import learn
from shipyard.loop.attempts import block
from shipyard.loop.context import RunContext
from shipyard.loop.state import RunState
from shipyard.loop.step import Step
from shipyard.loop.usage import add_usage

T = TypeVar("T", bound=BaseModel)


def ask(
    ctx: RunContext,
    state: RunState,
    step: Step,
    role: Role[T],
    *,
    brief: str,
    query: str,
    check: Callable[[T], str | None] | None = None,
) -> T | None:
    """The role's valid answer to ``brief``; ``query`` finds the knowledge it is given. None:
    no valid answer (``state`` is blocked if the role blocks, else ``step`` says so)."""
    conv = Conversation(
        role.conversation(state.attempt), ctx.models[role.name], ctx.config.models,
        on_retry=ctx.retry_notice,
    )  # fmt: skip
    known = learn.tell(ctx, step, role.name, query)
    conv.start(prompts.with_knowledge(role.prompt, known), brief)
    box = Toolbox(ctx.workdir, read_only=True) if role.tools == "read-only" else None
    try:
        answer, answers = structured(
            conv, role.output, retries=ctx.config.models.output_retries, toolbox=box,
            check=check, max_steps=role.budget(ctx.config.budget),
        )  # fmt: skip
    except NoValidAnswer as exc:
        step.messages = conv.take_unsaved()
        add_usage(state, step, role.name, conv.model, exc.answers)
        if role.blocks:
            block(state, step, f"{role.no_answer}: {exc}")
        else:
            step.event(role.event, f"{role.no_answer}: {exc}")
        return None
    step.messages = conv.take_unsaved()
    add_usage(state, step, role.name, conv.model, answers)
    return answer
