"""Coding agents driven as ``shipyard run``'s implementer: Claude Code, Codex, aider, or any
command (``cmd:"…"``). Each is a class that knows how to start its agent headless and read what
it streams; :mod:`shipyard.loop.external` runs one per attempt and keeps Shipyard the judge."""

from __future__ import annotations

from shipyard.agents.external.base import ExternalAgent
from shipyard.config import Config
from shipyard.config_agents import COMMAND_PREFIX


def agent_for(name: str, config: Config) -> ExternalAgent:
    """The agent named ``claude-code``, ``codex``, ``aider`` or ``cmd:COMMAND``."""
    settings = config.agents.settings(name)
    if name.startswith(COMMAND_PREFIX):
        from shipyard.agents.external.command import Command

        return Command(name, settings, config)
    if name == "claude-code":
        from shipyard.agents.external.claude import ClaudeCode

        return ClaudeCode(settings, config)
    if name == "codex":
        from shipyard.agents.external.codex import Codex

        return Codex(settings, config)
    if name == "aider":
        from shipyard.agents.external.aider import Aider

        return Aider(settings, config)
    raise ValueError(f"unknown implementer {name!r}")


__all__ = ["ExternalAgent", "agent_for"]
