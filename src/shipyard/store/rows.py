"""What the ledger writes and reads back, as typed values. The store knows nothing of the loop:
a run's state is any value that says its stage and reason and serialises itself as JSON; what
one step writes is anything shaped like :class:`StepRecord`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from shipyard.results import GateResult
from shipyard.store.knowledge import Entry

FINAL_STATUSES = ("shipped", "blocked")
"""A run whose state reaches one of these stages has that status; any other stage is running."""


class SavedState(Protocol):
    """A run's state as the ledger keeps it: JSON, with its stage and reason in columns too."""

    @property
    def stage(self) -> str: ...

    @property
    def reason(self) -> str | None: ...

    @property
    def attempt(self) -> int: ...

    def model_dump_json(self) -> str: ...


S = TypeVar("S", bound=SavedState)


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: str
    summary: str
    data: dict[str, Any] | None = None
    attempt: int | None = None
    at: float | None = None
    id: int | None = None


@dataclass(frozen=True, kw_only=True)
class UsageRow:
    """What one request (or one agent invocation) used; None: not reported, unknown."""

    role: str
    model: str
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None = None


class StepRecord(Protocol):
    """What one step writes, all at once (the loop's ``Step``)."""

    @property
    def events(self) -> Sequence[Event]: ...

    @property
    def messages(self) -> Sequence[tuple[str, str]]:
        """(conversation, one ModelMessage as JSON)."""
        ...

    @property
    def usage(self) -> Sequence[UsageRow]: ...

    @property
    def gates(self) -> Sequence[tuple[str, dict[str, Any]]]:
        """(verify id, GateResult.to_json()) for each gate."""
        ...

    @property
    def attempt_started(self) -> bool: ...

    @property
    def attempt_outcome(self) -> tuple[str, str] | None:
        """(outcome, detail) ending the attempt that is open."""
        ...

    @property
    def spec_hash(self) -> str | None: ...

    @property
    def knowledge(self) -> Sequence[Entry]: ...

    @property
    def uses(self) -> Sequence[tuple[str, list[int]]]:
        """(role, ids of the knowledge entries it was given)."""
        ...


@dataclass(frozen=True, kw_only=True)
class RunRecord(Generic[S]):
    id: str
    task: str
    status: str
    created_at: float
    updated_at: float
    base_sha: str
    branch: str
    worktree: str
    spec_hash: str | None
    state: S
    options: dict[str, Any]
    pid: int | None
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class AttemptRow:
    n: int
    started_at: float
    ended_at: float | None
    outcome: str | None
    """None while the attempt is open."""
    detail: str | None


@dataclass(frozen=True, kw_only=True)
class GateRow:
    """One gate of one verify of a run."""

    run_id: str
    attempt: int
    verify_id: str
    result: GateResult


@dataclass(frozen=True, kw_only=True)
class RoleUsage:
    role: str
    model: str
    input_tokens: int | None
    """None when a request of the role did not report its tokens."""
    output_tokens: int | None
