"""A coding agent (Claude Code, Codex, aider, ``cmd:``) as the implementer: one whole headless
invocation per attempt, in the run's worktree, and Shipyard stays the judge.

Before the agent starts, a step records the invocation (``state.step = 1`` in the ``implement``
stage: one in flight). A ``kill -9`` of Shipyard takes the agent with it (the launcher dies with
Shipyard, and ``resume`` kills whatever still carries the run's id); ``resume`` then finds the
attempt in flight and starts the invocation again, in the same attempt, counting nothing twice.
The agent's claim goes to ``state.submitted`` and the stage moves to ``verify``; a timeout or a
crash ends the attempt as failed with its reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard import process
from shipyard.agents.external import agent_for
from shipyard.agents.external.base import ExternalAgent, Outcome, short
from shipyard.agents.roles import RoleName
from shipyard.config import Config
from shipyard.loop import guard
from shipyard.loop.attempts import end_attempt
from shipyard.loop.fingerprint import failure
from shipyard.loop.implementers import brief, open_attempt
from shipyard.loop.state import Failure, RunState
from shipyard.loop.step import Step
from shipyard.loop.usage import add_row
from shipyard.store.rows import Event, UsageRow

if TYPE_CHECKING:
    from shipyard.loop.context import RunContext
    from shipyard.loop.implementers import Brief

MIN_TIMEOUT = 5.0
"""The least an invocation is given when the run's wall budget is nearly spent."""

RULES = """\
You are the implementer in a Shipyard run. Make the change the locked spec below asks for, in \
this folder ({workdir}), with your own tools.

- When you stop, Shipyard checks the folder itself: it builds the project, runs the test suite \
(the required tests must exist, pass, and fail against the old code), launches the app and \
probes it. What you say about the result is not the result.
- The spec is locked: do not edit it, or a copy of it (that fails the attempt).
- Do not commit, and leave .git alone: Shipyard commits exactly what it verified.
- Do not delete, skip or weaken tests. Run the tests yourself before you stop."""

RULES_NAIVE = """\
You are the implementer of a coding task. Make the change the locked spec below asks for, in \
this folder ({workdir}), with your own tools.

- When you stop, what is in the folder is shipped as it is: nothing builds, tests or reviews it \
after you.
- The spec is locked: do not edit it, or a copy of it.
- Do not commit, and leave .git alone: Shipyard commits what you leave.
- Do not delete, skip or weaken tests. Run the tests yourself before you stop."""


class ExternalImplementer:
    """The :class:`~shipyard.loop.implementers.Implementer` for a coding agent CLI."""

    step_budgets = False

    def __init__(self, chosen: str, config: Config) -> None:
        self.agent = agent_for(chosen, config)
        self.name = self.agent.name

    def preflight(self) -> str:
        with tempfile.TemporaryDirectory(prefix="shipyard-preflight-") as scratch:
            return self.agent.preflight(Path(scratch))

    def advance(self, ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
        return advance(self.agent, ctx, state)


def advance(agent: ExternalAgent, ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
    """The ``implement`` stage for an external agent: one invocation, then ``verify``."""
    state, step = state.model_copy(deep=True), Step()
    again = state.step > 0
    if again:
        step.event(
            "agent", f"the {agent.name} invocation of attempt {state.attempt} was cut short "
            "(Shipyard stopped); starting it again"
        )  # fmt: skip
    else:
        open_attempt(state, step)
    text = render(brief(ctx, state, step), ctx.workdir, naive=ctx.options.naive)
    state.feedback = []
    prompt_file = _free(ctx.evidence / f"agent-{state.attempt}.prompt.md")
    prompt_file.write_text(text)
    session = state.agent_session if agent.resumable else None
    launch = agent.launch(text, prompt_file, ctx.workdir, ctx.worktree, session)
    state.step = 1
    how = f"resuming session {session}" if session else "new session"
    left = ctx.config.budget.wall - state.elapsed
    timeout = min(agent.settings.timeout, max(MIN_TIMEOUT, left))
    step.event(
        "agent", f"{agent.name}: attempt {state.attempt}, {how}",
        argv=launch.argv, prompt=str(prompt_file), timeout=timeout,
    )  # fmt: skip
    ctx.ledger.commit(ctx.run_id, state, step)  # in flight: a resume knows to start it again
    ctx.say_events(step)

    step = Step()
    log = prompt_file.with_name(prompt_file.name.replace(".prompt.md", ".log"))
    outcome = agent.invoke(
        launch, cwd=ctx.workdir, env=agent.environment(os.environ), log=log, timeout=timeout,
        on_event=lambda summary: ctx.say(Event(kind="agent", summary=summary)),
    )  # fmt: skip
    for summary in outcome.events:
        step.event("agent", summary)
    step.shown = len(step.events)  # each was shown by on_event as the agent streamed it
    for line in guard.after_run_tool(ctx):
        step.event("guard", line)
    if killed := process.kill_adopted():
        step.event("guard", f"killed {killed} process(es) the agent left running")
    _usage(agent, state, step, outcome)
    if agent.resumable and outcome.session:
        state.agent_session = outcome.session
    if (problem := _failed(agent, outcome, timeout)) is not None:
        return end_attempt(ctx, state, step, [problem], "failed"), step
    state.submitted = outcome.claim or f"({agent.name} ended without a final message)"
    state.stage = "verify"
    said = short(state.submitted, 200)
    step.event(
        "submit", f"{agent.name} finished in {outcome.duration:.0f}s: {said}",
        session=outcome.session, log=str(log),
    )  # fmt: skip
    return state, step


def render(brief: Brief, workdir: Path, *, naive: bool = False) -> str:
    """The prompt of one attempt: the rules, the task, the locked spec, the commands, what
    memory knows and, after a failure, the evidence and the diagnosis. ``naive``
    (``--naive``): rules that promise no gates, since none run."""
    parts = [(RULES_NAIVE if naive else RULES).format(workdir=workdir)]
    if brief.feedback:
        parts.append("## Your last attempt did not pass\n\n" + "\n\n".join(brief.feedback))
    parts.append(f"## Task\n\n{brief.task}")
    parts.append(f"## The locked spec\n\n```yaml\n{brief.spec_text.strip()}\n```")
    parts.append(f"## The project's commands\n\n{brief.commands}")
    if brief.knowledge.strip():
        parts.append(f"## What Shipyard knows about this project\n\n{brief.knowledge.strip()}")
    return "\n\n".join(parts) + "\n"


def _failed(agent: ExternalAgent, outcome: Outcome, timeout: float) -> Failure | None:
    if outcome.timed_out:
        limit = f"{timeout:.0f}s" + (
            " (what was left of the run's wall budget)" if timeout < agent.settings.timeout else ""
        )
        message = (
            f"{agent.name} ran past its timeout of {limit}; it was stopped with its whole "
            "process tree"
        )
        return failure("implement", "timeout", message, "timeout")
    if agent.exit_code_counts and outcome.exit_code != 0:
        said = outcome.error or outcome.tail[-1500:] or "(no output)"
        message = f"{agent.name} exited with {outcome.exit_code}: {said}"
        return failure("implement", "agent", message, "agent_error")
    return None


def _usage(agent: ExternalAgent, state: RunState, step: Step, outcome: Outcome) -> None:
    """What the agent reported using, into the ledger and the run's totals; what it did not
    report stays unknown (None), never 0."""
    model = outcome.model or agent.settings.model or agent.name
    row = UsageRow(
        role=RoleName.IMPLEMENTER, model=f"{agent.name}:{model}" if model != agent.name else model,
        input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens, cost=outcome.cost,
    )  # fmt: skip
    add_row(state, step, row)
    if outcome.input_tokens is None:
        step.event("usage", f"{agent.name} reported no usage: its tokens are unknown")


def _free(path: Path) -> Path:
    """``path``, or ``NAME.2.md`` … when an earlier invocation (cut short) left it."""
    n, candidate = 1, path
    while candidate.exists():
        n += 1
        candidate = path.with_name(path.name.replace(".prompt.md", f".{n}.prompt.md"))
    return candidate
