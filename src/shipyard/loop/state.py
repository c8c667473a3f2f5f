"""Where a run is: saved in the ledger after every step, read back by ``resume``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shipyard.store.knowledge import Entry

Stage = Literal["plan", "implement", "verify", "review", "diagnose", "ship", "shipped", "blocked"]
FINAL: frozenset[str] = frozenset({"shipped", "blocked"})


class Usage(BaseModel):
    """A run's totals of what was reported: unknown tokens are counted in ``unreported``, never
    added as 0; ``cost`` sums the prices that were reported."""

    model_config = ConfigDict(extra="forbid")
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    unreported: int = 0
    """Requests (or agent invocations) whose tokens were not reported: not in the totals."""

    @property
    def tokens(self) -> int:
        """The tokens reported (those of ``unreported`` requests are unknown)."""
        return self.input_tokens + self.output_tokens


class Failure(BaseModel):
    """One failed check of an attempt, with its fingerprint."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fingerprint: str
    gate: str
    check: str
    kind: str
    message: str


class Diagnosed(BaseModel):
    """A diagnosis waiting for its fix to pass the gates; then it becomes a pitfall."""

    model_config = ConfigDict(extra="forbid")
    failures: list[Failure]
    """The failures that repeated."""
    root_cause: str
    fix_plan: str
    attempt: int
    """The attempt that failed twice."""


class RunState(BaseModel):
    """Everything the loop needs to continue; nothing else is kept between steps."""

    model_config = ConfigDict(extra="forbid")
    stage: Stage = "plan"
    attempt: int = 1
    step: int = 0
    """Implementer steps taken in this attempt."""
    pending_calls: list[str] = Field(default_factory=list)
    """Tool call ids of the last model answer not yet executed (a crash between tools)."""
    done_calls: dict[str, str] = Field(default_factory=dict)
    """Of the last answer's calls, those already executed: call id → result sent back."""
    idle_steps: int = 0
    recent_calls: list[str] = Field(default_factory=list)
    text_only: int = 0
    submitted: str | None = None
    agent_session: str | None = None
    """An external implementer's own session id, resumed by its next attempt."""
    feedback: list[str] = Field(default_factory=list)
    """What the implementer receives at the start of its next attempt."""
    failures: list[Failure] = Field(default_factory=list)
    """The failures of the last attempt."""
    seen: dict[str, int] = Field(default_factory=dict)
    """Fingerprint → attempts it failed in."""
    diagnosed: list[str] = Field(default_factory=list)
    verify_runs: int = 0
    last_verify: str | None = None
    usage: Usage = Field(default_factory=Usage)
    elapsed: float = 0.0
    """Seconds of work so far, over every process that worked on the run."""
    worktree_ready: bool = False
    """The worktree was made whole; until then a resume makes it again."""
    tree: str | None = None
    """The git tree of the last submission: what the gates checked, the reviewer read, and the
    ship commit holds (build artefacts made later by the gates are not in it)."""
    artefacts: list[str] = Field(default_factory=list)
    """Paths (from the repository root) that the gates built: never part of a submission."""
    commit: str | None = None
    merged: str | None = None
    """Why the user's branch was or was not fast-forwarded."""
    reason: str | None = None
    """Why the run is blocked."""
    learned: list[Entry] = Field(default_factory=list)
    """Knowledge not verified yet (the planner's decisions, review findings): written when the
    run ships, dropped when it is blocked."""
    diagnoses: list[Diagnosed] = Field(default_factory=list)
    """Diagnoses waiting for their fix to pass the gates; then they become pitfalls."""
    recorded: list[str] = Field(default_factory=list)
    """Commands already recorded as verified in this run."""
    pitfalls: list[int] = Field(default_factory=list)
    """Known pitfalls handed to the implementer in this run."""
