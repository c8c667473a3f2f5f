"""Any command as the implementer: ``cmd:"my-agent --task {prompt_file} --dir {worktree}"``.

``{prompt_file}`` is a file holding the attempt's prompt, ``{worktree}`` the project folder in
the run's worktree (where the command also starts), ``{prompt}`` the prompt itself; each is
shell-quoted. The prompt is on standard input too. A command reports no usage (unknown) and no
session; its exit code other than 0 fails the attempt, its 0 is only a claim.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from shipyard.agents.external.base import ExternalAgent, Launch, Outcome, short
from shipyard.config import Config
from shipyard.config_agents import COMMAND_PREFIX, AgentSettings

PLACEHOLDERS = ("{prompt_file}", "{worktree}", "{prompt}")


class Command(ExternalAgent):
    name = "cmd"
    install = "fix the command after cmd: (its first word is the program)"

    def __init__(self, command: str, settings: AgentSettings, config: Config | None = None):
        super().__init__(settings, config)
        self.command = command.removeprefix(COMMAND_PREFIX).strip()
        self.program = shlex.split(self.command)[0] if self.command.strip() else self.command

    def version_argv(self) -> list[str]:
        return []

    def preflight(self, scratch: Path) -> str:
        import os

        from shipyard.exceptions import EnvironmentProblem

        where = self.found(self.environment(os.environ))
        if where is None:
            raise EnvironmentProblem(
                f"implementer cmd: {self.program!r} was not found on PATH; {self.install}"
            )
        return f"{self.command!r} ({where})"

    def launch(
        self, prompt: str, prompt_file: Path, workdir: Path, worktree: Path, session: str | None
    ) -> Launch:
        text = self.command
        values = (str(prompt_file), str(workdir), prompt)
        for name, value in zip(PLACEHOLDERS, values, strict=True):
            text = text.replace(name, shlex.quote(value))
        if self.settings.args:
            text += " " + shlex.join(self.settings.args)
        argv = ["/bin/sh", "-c", text]
        return Launch(argv=argv, stdin=prompt.encode())

    def read(self, line: str, outcome: Outcome) -> list[str]:
        if line.strip():
            outcome.claim = line.strip()
            return [f"says: {short(line)}"]
        return []
