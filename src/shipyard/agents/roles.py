"""The roles of a run: who is asked what, and what a valid answer is.

Every role has a name (:class:`RoleName`: the key of its model in ``[models]``, of its usage
rows and of the knowledge it is given). The planner, the reviewer and the diagnoser are *asked*:
each is a :class:`Role` (its instructions, the structured answer it must give, its tools and
how many requests it may make), run by :func:`shipyard.loop.ask.ask`. The implementer is not
asked once but works an attempt step by step, through the ``Implementer`` seam
(:mod:`shipyard.loop.implementers`).

A new asked role is a ``Role`` here (its answer a pydantic model) and a stage that calls
``ask`` with it; :mod:`shipyard.loop.review` is the one to copy from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from shipyard.agents import prompts
from shipyard.config import Budget


class RoleName(StrEnum):
    """The one definition of the role names (a ``str``: ``RoleName.PLANNER == "planner"``)."""

    PLANNER = "planner"
    IMPLEMENTER = "implementer"
    REVIEWER = "reviewer"
    DIAGNOSER = "diagnoser"


ROLES: tuple[RoleName, ...] = tuple(RoleName)
"""Every role, in the order a run meets them."""

T = TypeVar("T", bound=BaseModel)
Tools = Literal["none", "read-only"]


def _one(_budget: Budget) -> int:
    return 1


@dataclass(frozen=True, kw_only=True)
class Role(Generic[T]):
    """A role that is asked once for a structured answer (``final_result``)."""

    name: RoleName
    prompt: str
    """Its instructions (the system prompt, before what the project's knowledge adds)."""
    output: type[T]
    """The answer it must give; an invalid one goes back with its validation error."""
    tools: Tools = "none"
    """``read-only``: it may list, read and search the worktree before it answers."""
    budget: Callable[[Budget], int] = _one
    """How many requests it may make for tool calls (from the run's ``[budget]``)."""
    per_attempt: bool = False
    """A fresh conversation each attempt (``reviewer-2``), else one for the run."""
    event: str
    """The kind of the event its answer (or the lack of one) is told in."""
    no_answer: str
    """What is said when it gives no valid answer within the allowed tries."""
    blocks: bool = True
    """No valid answer blocks the run; False: the stage goes on without it."""

    def conversation(self, attempt: int) -> str:
        """The name of its conversation in the ledger."""
        return f"{self.name}-{attempt}" if self.per_attempt else str(self.name)


# -- the planner ---------------------------------------------------------------------------------


class Decision(BaseModel):
    choice: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class Plan(BaseModel):
    """The spec as YAML text, and the design decisions behind it."""

    spec_yaml: str = Field(min_length=1)
    decisions: list[Decision] = Field(default_factory=list)


PLANNER = Role(
    name=RoleName.PLANNER, prompt=prompts.PLANNER, output=Plan, event="plan",
    no_answer="the planner wrote no valid spec",
)  # fmt: skip


# -- the reviewer --------------------------------------------------------------------------------


class Finding(BaseModel):
    acceptance_id: str = Field(description="The acceptance id this finding is about.")
    problem: str = Field(min_length=1)
    change: str = Field(min_length=1, description="What the implementer should change.")


class ReviewVerdict(BaseModel):
    """approve, or changes with findings tied to acceptance ids."""

    decision: Literal["approve", "changes"]
    summary: str = ""
    findings: list[Finding] = Field(default_factory=list)


REVIEWER = Role(
    name=RoleName.REVIEWER, prompt=prompts.REVIEWER, output=ReviewVerdict, per_attempt=True,
    event="review", no_answer="the reviewer gave no valid verdict",
)  # fmt: skip


# -- the diagnoser -------------------------------------------------------------------------------


class Diagnosis(BaseModel):
    """The root cause of the repeated failure, the evidence for it, and a fix plan."""

    root_cause: str = Field(min_length=1)
    evidence: str = Field(min_length=1)
    fix_plan: str = Field(min_length=1)
    confidence: float = Field(ge=0, le=1)


def _diagnosis_steps(budget: Budget) -> int:
    return budget.diagnosis_steps


DIAGNOSER = Role(
    name=RoleName.DIAGNOSER, prompt=prompts.DIAGNOSER, output=Diagnosis, tools="read-only",
    budget=_diagnosis_steps, per_attempt=True, event="diagnosis", no_answer="no diagnosis",
    blocks=False,
)  # fmt: skip
