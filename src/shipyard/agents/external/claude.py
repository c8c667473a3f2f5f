"""Claude Code, headless: ``claude -p --output-format stream-json --verbose``, the prompt on
standard input; the next attempt resumes its session (``--resume ID``).

Its stream is one JSON object a line: ``system``/``init`` (the session id), ``assistant``
messages (text and ``tool_use`` blocks), ``user`` messages (tool results) and a closing
``result`` with the session's usage and ``total_cost_usd``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.agents.external.base import ExternalAgent, Launch, Outcome, json_line, short

DEFAULT_TOOLS = ("Read", "Write", "Edit", "MultiEdit", "Glob", "Grep", "Bash", "LS")


class ClaudeCode(ExternalAgent):
    name = "claude-code"
    program = "claude"
    install = "install Claude Code: npm install -g @anthropic-ai/claude-code"
    passes = ("ANTHROPIC_*", "CLAUDE_*")
    resumable = True

    def launch(
        self, prompt: str, prompt_file: Path, workdir: Path, worktree: Path, session: str | None
    ) -> Launch:
        tools = self.settings.allowed_tools or DEFAULT_TOOLS
        argv = [
            self.binary(), "-p", "--output-format", "stream-json", "--verbose",
            "--permission-mode", "acceptEdits", "--allowedTools", ",".join(tools),
        ]  # fmt: skip
        if self.settings.model:
            argv += ["--model", self.settings.model]
        if session:
            argv += ["--resume", session]
        return Launch(argv=[*argv, *self.settings.args], stdin=prompt.encode())

    def read(self, line: str, outcome: Outcome) -> list[str]:
        event = json_line(line)
        if event is None:
            return []
        kind = event.get("type")
        if kind == "system" and event.get("subtype") == "init":
            outcome.session = _str(event.get("session_id")) or outcome.session
            outcome.model = _str(event.get("model")) or outcome.model
            return [f"session {outcome.session} ({outcome.model or 'default model'})"]
        if kind == "assistant":
            return _assistant(event.get("message"))
        if kind == "user":
            return _tool_errors(event.get("message"))
        if kind == "result":
            outcome.session = _str(event.get("session_id")) or outcome.session
            outcome.claim = _str(event.get("result")) or outcome.claim
            usage = event.get("usage") if isinstance(event.get("usage"), dict) else {}
            assert isinstance(usage, dict)
            inputs = [usage.get(k) for k in ("input_tokens", "cache_creation_input_tokens",
                                             "cache_read_input_tokens")]  # fmt: skip
            counted = [n for n in inputs if isinstance(n, int)]
            output = usage.get("output_tokens")
            outcome.add_tokens(
                sum(counted) if counted else None, output if isinstance(output, int) else None
            )
            cost = event.get("total_cost_usd")
            if isinstance(cost, int | float):
                outcome.cost = float(cost)
            if event.get("is_error"):
                outcome.error = short(event.get("result") or event.get("subtype"), 300)
            turns = event.get("num_turns")
            return [f"result: {event.get('subtype')} after {turns} turns: {short(outcome.claim)}"]
        return []


def _assistant(message: object) -> list[str]:
    shown = []
    for block in _blocks(message):
        if block.get("type") == "tool_use":
            shown.append(f"{block.get('name')} {_target(block.get('input'))}".strip())
        elif block.get("type") == "text" and str(block.get("text") or "").strip():
            shown.append(f"says: {short(block.get('text'))}")
    return shown


def _tool_errors(message: object) -> list[str]:
    return [
        f"✗ tool error: {short(_text(block.get('content')))}"
        for block in _blocks(message)
        if block.get("type") == "tool_result" and block.get("is_error")
    ]


def _target(args: object) -> str:
    if not isinstance(args, dict):
        return ""
    for key in ("file_path", "path", "command", "pattern", "notebook_path"):
        if key in args:
            return short(args[key], 80)
    return ""


def _blocks(message: object) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _text(content: object) -> str:
    if isinstance(content, list):
        return " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return str(content or "")


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
