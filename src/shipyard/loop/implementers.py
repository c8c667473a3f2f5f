"""Who does the work of an attempt: the ``Implementer`` seam.

The ``implement`` stage (:mod:`shipyard.loop.implement`) hands every call to the run's
implementer. The in-process model (:class:`shipyard.loop.model_implementer.ModelImplementer`)
is the first; an external agent is another class with the same two methods, registered under
its name in :data:`IMPLEMENTERS`. Every implementer is told the same :class:`Brief`, built by
:func:`brief`; what it does is written to the ledger as the steps it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from shipyard.exceptions import InputError

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.loop.context import RunContext
    from shipyard.loop.state import RunState
    from shipyard.loop.step import Step

DEFAULT = "model"
"""The implementer of a run that names none: the in-process model."""


@dataclass(frozen=True, kw_only=True)
class Brief:
    """What any implementer is told for one attempt."""

    task: str
    spec_text: str
    """The locked spec, verbatim."""
    commands: str
    """The project's build, test and app commands, as text."""
    knowledge: str
    """What the project's knowledge tells the implementer role ('' when none)."""
    feedback: list[str]
    """After a failed attempt: the failure evidence and the diagnosis."""
    attempt: int
    workdir: Path
    """The project folder inside the run's worktree."""


class Implementer(Protocol):
    """Makes the change of an attempt, one step at a time."""

    @property
    def name(self) -> str:
        """The name a run is started with (``model`` for the in-process model)."""
        ...

    @property
    def step_budgets(self) -> bool:
        """True: ``budget.steps``, ``idle_steps`` and ``repeat_calls`` bound its attempts."""
        ...

    def preflight(self) -> str:
        """One line saying what will do the work; raises ``EnvironmentProblem`` (exit 3), with
        how to install it, when it cannot run."""
        ...

    def advance(self, ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
        """The next state and the step to commit. The attempt goes on while ``state.stage``
        stays ``implement``; a submission sets it to ``verify`` with ``state.submitted`` (the
        implementer's own claim, never trusted); a failure ends it through
        :func:`shipyard.loop.attempts.end_attempt`."""
        ...


def _model() -> Implementer:
    from shipyard.loop.model_implementer import ModelImplementer

    return ModelImplementer()


IMPLEMENTERS: dict[str, Callable[[], Implementer]] = {DEFAULT: _model}
"""Name → how to make that implementer."""


def resolve(name: str | None, config: Config | None = None) -> Implementer:
    """The implementer called ``name``, else the one ``[agents] implementer`` names, else the
    default; a coding agent (``claude-code``, ``codex``, ``aider``, ``cmd:…``) is driven by
    :mod:`shipyard.loop.external`. An unknown name is bad input."""
    from shipyard.config_agents import AGENT_NAMES, COMMAND_PREFIX

    chosen = name or (config.agents.implementer if config is not None else None) or DEFAULT
    if chosen in AGENT_NAMES or (
        chosen.startswith(COMMAND_PREFIX) and chosen[len(COMMAND_PREFIX) :].strip()
    ):
        from shipyard.config import Config
        from shipyard.loop.external import ExternalImplementer

        return ExternalImplementer(chosen, config or Config())
    make = IMPLEMENTERS.get(chosen)
    if make is None:
        known = ", ".join([*sorted(IMPLEMENTERS), *AGENT_NAMES, 'cmd:"COMMAND"'])
        raise InputError(f"unknown implementer {chosen!r}; known: {known}", field="implementer")
    return make()


def needs_model(implementer: Implementer) -> bool:
    """Whether it works through the run's ``implementer`` model (only the in-process one)."""
    return implementer.name == DEFAULT


def brief(ctx: RunContext, state: RunState, step: Step) -> Brief:
    """The brief of the current attempt; ``step`` records the knowledge it hands over."""
    from shipyard.agents.roles import RoleName
    from shipyard.loop import learn

    spec_text = ctx.locked.text  # an attempt starts after the spec is locked
    known = learn.tell(ctx, step, RoleName.IMPLEMENTER, f"{ctx.task}\n{spec_text}")
    return Brief(
        task=ctx.task, spec_text=spec_text, commands=commands(ctx), knowledge=known,
        feedback=list(state.feedback), attempt=state.attempt, workdir=ctx.workdir,
    )  # fmt: skip


def open_attempt(state: RunState, step: Step) -> None:
    """The first step of an attempt opens it in the ledger."""
    step.attempt_started = True
    step.event("attempt", f"attempt {state.attempt}")


def commands(ctx: RunContext) -> str:
    """The project's commands as the implementer is told them."""
    c = ctx.config.commands
    lines = [f"- build: {b}" for b in c.build] + [f"- test: {c.test or '(none)'}"]
    if ctx.config.app:
        lines.append(f"- app: {ctx.config.app.start}")
    return "\n".join(lines)
