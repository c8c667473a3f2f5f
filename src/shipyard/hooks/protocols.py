"""Each agent's hook protocol: its JSON event on stdin, its answer on stdout.

Claude Code (``Stop``, ``SessionStart``) and Codex (the same names and fields) block with
``{"decision": "block", "reason": …}``; Gemini CLI (``AfterAgent``) with ``{"decision": "deny",
"reason": …}``; Cursor (``stop``) with ``{"followup_message": …}``. A warning the user sees is
``systemMessage`` where the agent has one, else a line on stderr. Allowing is ``{}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

AGENTS = ("claude", "codex", "gemini", "cursor")
Kind = Literal["stop", "session_start", "other"]

STOP_EVENTS = {"claude": "Stop", "codex": "Stop", "gemini": "AfterAgent", "cursor": "stop"}
START_EVENTS = {
    "claude": "SessionStart",
    "codex": "SessionStart",
    "gemini": "SessionStart",
    "cursor": "sessionStart",
}
TIMEOUTS = {"claude": 600, "codex": 600, "gemini": 60, "cursor": 60}
"""Each agent's default hook timeout, in seconds."""
SUPPORTS_SYSTEM_MESSAGE = {"claude", "codex", "gemini"}


class BadEvent(ValueError):
    """The event on stdin is not one this agent sends."""


@dataclass(frozen=True, kw_only=True)
class Event:
    agent: str
    kind: Kind
    session: str
    cwd: str
    aborted: bool = False
    """Cursor: the agent stopped because the user aborted it or it errored: nothing to check."""


def parse(agent: str, data: bytes) -> Event:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadEvent(f"stdin is not a JSON event ({exc})") from exc
    if not isinstance(doc, dict):
        raise BadEvent("stdin is not a JSON object")
    name = doc.get("hook_event_name")
    kind: Kind = (
        "stop"
        if name == STOP_EVENTS[agent]
        else "session_start"
        if name == START_EVENTS[agent]
        else "other"
    )
    cwd = doc.get("cwd")
    if agent == "cursor" and not cwd:
        roots = doc.get("workspace_roots")
        cwd = roots[0] if isinstance(roots, list) and roots else None
    if not isinstance(cwd, str) or not cwd:
        raise BadEvent(f"the {name or 'hook'} event has no cwd")
    session = doc.get("conversation_id" if agent == "cursor" else "session_id") or "default"
    status = doc.get("status")
    return Event(
        agent=agent,
        kind=kind,
        session=str(session),
        cwd=cwd,
        aborted=agent == "cursor" and status in ("aborted", "error"),
    )


@dataclass(frozen=True, kw_only=True)
class Answer:
    block: str | None = None
    """The reason the agent may not stop yet (its next instruction), or None: allow."""
    warning: str | None = None
    """What the user should see (the stop is allowed)."""

    def render(self, agent: str) -> tuple[dict[str, Any], str]:
        """(stdout JSON, stderr text) in ``agent``'s protocol."""
        out: dict[str, Any] = {}
        if self.block is not None:
            if agent == "cursor":
                out["followup_message"] = self.block
            else:
                out["decision"] = "deny" if agent == "gemini" else "block"
                out["reason"] = self.block
        err = ""
        if self.warning:
            if agent in SUPPORTS_SYSTEM_MESSAGE:
                out["systemMessage"] = self.warning
            err = self.warning + "\n"
        return out, err
