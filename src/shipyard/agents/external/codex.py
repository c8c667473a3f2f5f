"""Codex, headless: ``codex exec --json -C WORKDIR -s workspace-write -``, the prompt on standard
input; the next attempt resumes its thread (``codex exec resume --json ID -``, which takes no
``-C``/``-s``: it starts in the project folder, with ``-c sandbox_mode="workspace-write"``).

Its ``--json`` stream: ``thread.started`` (the thread id, its session), ``item.completed`` items
(``command_execution``, ``file_change``, ``agent_message``, ``error``), ``turn.completed`` with
the turn's usage, ``turn.failed`` / ``error`` when it fails. It reports tokens, not cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.agents.external.base import ExternalAgent, Launch, Outcome, json_line, short


class Codex(ExternalAgent):
    name = "codex"
    program = "codex"
    install = "install Codex: npm install -g @openai/codex"
    passes = ("OPENAI_*", "CODEX_HOME")
    resumable = True

    def launch(
        self, prompt: str, prompt_file: Path, workdir: Path, worktree: Path, session: str | None
    ) -> Launch:
        model = ["-m", self.settings.model] if self.settings.model else []
        if session:
            argv = [
                self.binary(), "exec", "resume", "--json", "-c", 'sandbox_mode="workspace-write"',
                *model, *self.settings.args, session, "-",
            ]  # fmt: skip
        else:
            argv = [
                self.binary(), "exec", "--json", "-C", str(workdir), "-s", "workspace-write",
                *model, *self.settings.args, "-",
            ]  # fmt: skip
        return Launch(argv=argv, stdin=prompt.encode())

    def read(self, line: str, outcome: Outcome) -> list[str]:
        event = json_line(line)
        if event is None:
            return []
        kind = event.get("type")
        if kind == "thread.started" and isinstance(event.get("thread_id"), str):
            outcome.session = event["thread_id"]
            return [f"session {outcome.session}"]
        if kind == "item.completed" and isinstance(event.get("item"), dict):
            return _item(event["item"], outcome)
        if kind == "turn.completed" and isinstance(event.get("usage"), dict):
            usage = event["usage"]
            inputs, outputs = usage.get("input_tokens"), usage.get("output_tokens")
            outcome.add_tokens(
                inputs if isinstance(inputs, int) else None,
                outputs if isinstance(outputs, int) else None,
            )
            return []
        if kind in ("turn.failed", "error"):
            error = event.get("error") if kind == "turn.failed" else event
            message = error.get("message") if isinstance(error, dict) else error
            outcome.error = short(message, 300)
            return [f"✗ {kind}: {outcome.error}"]
        return []


def _item(item: dict[str, Any], outcome: Outcome) -> list[str]:
    kind = item.get("type")
    if kind == "agent_message":
        outcome.claim = str(item.get("text") or "")
        return [f"says: {short(outcome.claim)}"]
    if kind == "command_execution":
        return [f"$ {short(item.get('command'), 90)} (exit {item.get('exit_code')})"]
    if kind == "file_change":
        changes = item.get("changes")
        paths = [str(c.get("path")) for c in changes or [] if isinstance(c, dict)]
        return [f"changed {short(', '.join(paths), 120)}"]
    if kind == "error":
        return [f"note: {short(item.get('message'), 160)}"]
    return []
