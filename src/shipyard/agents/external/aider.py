"""aider, headless: ``aider --message-file PROMPT --yes-always --no-auto-commits`` in the project
folder. Its exit code says nothing about the result (only the verify does); it needs
``--no-check-update --analytics-disable`` and ``LITELLM_LOCAL_MODEL_COST_MAP=True`` to start
without the network. Its chat history is kept in the run's evidence folder (never in the
worktree, where it would ship) and restored by the next attempt, so aider continues its own
conversation. Usage is read from its ``Tokens: … sent, … received. Cost: $… message`` lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from shipyard.agents.external.base import ExternalAgent, Launch, Outcome, short

TOKENS = re.compile(
    r"^Tokens: ([\d.]+)([kKmM]?) sent(?:, [^,]*? cache \w+)*, ([\d.]+)([kKmM]?) received\."
    r"(?: Cost: \$([\d.]+) message)?"
)
APPLIED = re.compile(r"^Applied edit to (.+)$")
SCALE = {"": 1, "k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}


class Aider(ExternalAgent):
    name = "aider"
    program = "aider"
    install = "install aider: uv tool install aider-chat (or pipx install aider-chat)"
    passes = ("OPENAI_*", "ANTHROPIC_*", "AIDER_*")
    exit_code_counts = False

    def environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        env = super().environment(environ)
        env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        return env

    def launch(
        self, prompt: str, prompt_file: Path, workdir: Path, worktree: Path, session: str | None
    ) -> Launch:
        history = prompt_file.parent / "aider.chat.history.md"
        argv = [
            self.binary(), "--message-file", str(prompt_file), "--yes-always",
            "--no-auto-commits", "--no-dirty-commits", "--no-check-update", "--analytics-disable",
            "--no-gitignore", "--no-pretty", "--no-fancy-input", "--no-show-model-warnings",
            "--chat-history-file", str(history),
            "--input-history-file", str(prompt_file.parent / "aider.input.history"),
            "--llm-history-file", str(prompt_file.parent / "aider.llm.history"),
        ]  # fmt: skip
        if history.exists():
            argv.append("--restore-chat-history")
        if self.settings.model:
            argv += ["--model", self.settings.model]
        return Launch(argv=[*argv, *self.settings.args])

    def read(self, line: str, outcome: Outcome) -> list[str]:
        text = line.strip()
        if found := TOKENS.match(text):
            sent = round(float(found.group(1)) * SCALE[found.group(2)])
            received = round(float(found.group(3)) * SCALE[found.group(4)])
            outcome.add_tokens(sent, received)
            if found.group(5) is not None:
                outcome.cost = (outcome.cost or 0.0) + float(found.group(5))
            return [short(text, 160)]
        if found := APPLIED.match(text):
            return [f"edited {found.group(1)}"]
        if text.startswith("Model: "):
            outcome.model = text.removeprefix("Model: ").split(" with ")[0]
        return []

    def finish(self, outcome: Outcome) -> None:
        """aider has no closing message of its own: its last words before the token count."""
        lines = [ln for ln in outcome.tail.splitlines() if ln.strip() and not TOKENS.match(ln)]
        outcome.claim = short(lines[-1], 300) if lines else ""
