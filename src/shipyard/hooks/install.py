"""``shipyard init --agent AGENT``: merge the hook into that agent's project settings, leaving
every other setting alone, idempotently."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from shipyard.exceptions import ConfigError
from shipyard.hooks.protocols import AGENTS, START_EVENTS, STOP_EVENTS, TIMEOUTS

SETTINGS = {
    "claude": ".claude/settings.json",
    "codex": ".codex/hooks.json",
    "gemini": ".gemini/settings.json",
    "cursor": ".cursor/hooks.json",
}


def hook_command(agent: str) -> str:
    """``shipyard hook AGENT``, with the full path when ``shipyard`` on PATH is not this one."""
    here = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    found = shutil.which("shipyard")
    if here is None or here.name != "shipyard" or (found and Path(found).resolve() == here):
        return f"shipyard hook {agent}"
    return f"{here} hook {agent}"


def _entry(agent: str, command: str) -> dict[str, Any]:
    if agent == "cursor":
        return {"command": command}
    handler: dict[str, Any] = {"type": "command", "command": command}
    if agent == "gemini":
        handler.update(name="shipyard", timeout=TIMEOUTS[agent] * 1000)  # milliseconds
    else:
        handler["timeout"] = TIMEOUTS[agent]
    return {"hooks": [handler]}


def _has(entries: list[Any], agent: str) -> bool:
    marker = f"hook {agent}"
    text = json.dumps(entries)
    return marker in text and "shipyard" in text


def install(project: Path, agent: str) -> tuple[Path, list[str]]:
    """Add the Stop (and SessionStart) hook; returns the file and what changed (none: already)."""
    if agent not in AGENTS:
        raise ConfigError(f"unknown agent {agent!r}; one of: {', '.join(AGENTS)}", field="--agent")
    path = project / SETTINGS[agent]
    settings = _read(path)
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise ConfigError("hooks must be an object", file=str(path), field="hooks")
    if agent == "cursor":
        settings.setdefault("version", 1)
    command = hook_command(agent)
    changed = []
    for event in (START_EVENTS[agent], STOP_EVENTS[agent]):
        entries = hooks.setdefault(event, [])
        if not isinstance(entries, list):
            raise ConfigError("must be a list", file=str(path), field=f"hooks.{event}")
        if not _has(entries, agent):
            entries.append(_entry(agent, command))
            changed.append(f"hooks.{event}: added `{command}`")
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=2) + "\n")
    return path, changed


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid JSON: {exc}", file=str(path)) from exc
    if not isinstance(data, dict):
        raise ConfigError("must be a JSON object", file=str(path))
    return data
