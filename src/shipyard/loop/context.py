"""What every stage of a run can see: the run's fixed inputs (``RunContext``, rebuilt by
``resume``) and what the process working on it holds (``Session``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.config import Config
from shipyard.loop.implementers import Implementer
from shipyard.loop.state import RunState
from shipyard.loop.step import Step
from shipyard.spec import Spec
from shipyard.store.ledger import Event, Ledger

if TYPE_CHECKING:
    from pydantic_ai.models import Model

    from shipyard.agents.chat import Conversation


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    model: str | None = None
    """``--model``: one model for every role."""
    yes: bool = False
    merge: bool = False
    spec_file: str | None = None
    start_branch: str | None = None
    """The branch checked out when the run started: the only one ``--merge`` may move."""
    implementer: str | None = None
    """Who implements (:data:`shipyard.loop.implementers.IMPLEMENTERS`); None: the model."""
    naive: bool = False
    """``--naive``: implement until the implementer submits, then ship; no gates, no review, no
    diagnosis, no knowledge (the baseline ``shipyard bench`` compares the loop with)."""

    def to_json(self) -> dict[str, Any]:
        named = {"implementer": self.implementer} if self.implementer is not None else {}
        return {
            "model": self.model,
            "yes": self.yes,
            "merge": self.merge,
            "spec_file": self.spec_file,
            "start_branch": self.start_branch,
            **named,  # absent for the model: a default run's options read as before
            **({"naive": True} if self.naive else {}),  # absent unless set, likewise
        }


def _print(event: Event) -> None:
    print(event.summary)


def _accept(_spec: str) -> bool:
    return True


@dataclass(frozen=True, kw_only=True)
class Locked:
    """The locked spec: its text, verbatim, and what it says."""

    text: str
    spec: Spec


@dataclass(kw_only=True)
class Session:
    """What this process holds for a run: made by each start or resume, never stored."""

    say: Callable[[Event], None] = _print
    confirm: Callable[[str], bool] = _accept
    """Shows the planner's spec; False when the user does not accept it."""
    models: dict[str, Model] = field(default_factory=dict)
    """Each role's model, built and checked by this process."""
    locked: Locked | None = None
    """The locked spec, once the run has one (read back by ``resume``)."""
    conversations: dict[str, Conversation] = field(default_factory=dict)
    """Conversations kept in memory between steps (the ledger has them whole)."""


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """The run's fixed inputs, and the ``session`` of the process that works on it."""

    run_id: str
    task: str
    project: Path
    """The user's project folder (never written before ship)."""
    worktree: Path
    """The root of the run's git worktree."""
    workdir: Path
    """The project folder inside the worktree."""
    base_sha: str
    branch: str
    config: Config
    options: RunOptions
    ledger: Ledger[RunState]
    evidence: Path
    """``.shipyard/runs/<run-id>/`` in the user's project."""
    implementer: Implementer
    """Who makes the change of each attempt (resolved once, when the run starts or resumes)."""
    session: Session = field(default_factory=Session)

    @property
    def spec_lock(self) -> Path:
        return self.evidence / "spec.lock.yaml"

    @property
    def models(self) -> Mapping[str, Model]:
        return self.session.models

    @property
    def locked(self) -> Locked:
        """The locked spec, for a stage that runs after the lock."""
        assert self.session.locked is not None, "the spec is locked before this stage"
        return self.session.locked

    def say(self, event: Event) -> None:
        self.session.say(event)

    def retry_notice(self, n: int, exc: BaseException, wait: float) -> None:
        """Shown (not stored) while a provider error is retried."""
        what = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        self.say(Event(kind="provider", summary=f"{what}; retry {n} in {wait:.1f}s"))

    def say_events(self, step: Step) -> None:
        for event in step.events[step.shown :]:
            self.say(event)
