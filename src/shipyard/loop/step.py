"""What one stage did: a ``Step``, written with the state after it in one transaction
(``Ledger.commit``) before the next stage starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shipyard.store.knowledge import Entry
from shipyard.store.rows import Event, UsageRow


@dataclass(kw_only=True)
class Step:
    """What one step writes, all at once."""

    events: list[Event] = field(default_factory=list)
    messages: list[tuple[str, str]] = field(default_factory=list)
    """(conversation, one ModelMessage as JSON)."""
    usage: list[UsageRow] = field(default_factory=list)
    gates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(verify id, GateResult.to_json()) for each gate."""
    attempt_started: bool = False
    attempt_outcome: tuple[str, str] | None = None
    """(outcome, detail) ending the current attempt."""
    spec_hash: str | None = None
    knowledge: list[Entry] = field(default_factory=list)
    """Knowledge learned by this step (merged and superseded as it is written)."""
    uses: list[tuple[str, list[int]]] = field(default_factory=list)
    """(role, ids of the knowledge entries it was given)."""
    shown: int = 0
    """How many of the leading events were already shown as they happened (an agent's stream)."""

    def event(self, kind: str, summary: str, **data: Any) -> None:
        self.events.append(Event(kind=kind, summary=summary, data=data or None))
