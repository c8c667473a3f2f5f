"""What every coding agent driven as an implementer shares: finding it, its environment, and one
headless invocation (launched through :mod:`shipyard.process`, its output read as it comes, its
whole process tree stopped at the timeout, its usage taken from what it reports).

An agent's word is never its result: the invocation gives Shipyard a claim (its last message),
its events and its usage; the attempt ends in Shipyard's verify of the worktree.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard import environment, process
from shipyard.config import Config
from shipyard.config_agents import AgentSettings
from shipyard.exceptions import EnvironmentProblem

VERSION_TIMEOUT = 30.0
POLL = 0.2
AGENT_LOG_HEAD = 64 << 20
"""Bytes of an agent's output written as they come (and so read as they come)."""


@dataclass(kw_only=True)
class Outcome:
    """What one invocation left: how it ended, what it said, what it reported using."""

    exit_code: int | None = None
    timed_out: bool = False
    duration: float = 0.0
    session: str | None = None
    """The agent's own session id, when it reported one."""
    claim: str = ""
    """Its last message: shown and stored, never trusted."""
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    """None: not reported (unknown, never 0)."""
    model: str | None = None
    error: str | None = None
    """What the agent itself reported as an error (an API failure, a refused login)."""
    events: list[str] = field(default_factory=list)
    log: Path | None = None
    tail: str = ""

    def add_tokens(self, input_tokens: int | None, output_tokens: int | None) -> None:
        if input_tokens is not None:
            self.input_tokens = (self.input_tokens or 0) + input_tokens
        if output_tokens is not None:
            self.output_tokens = (self.output_tokens or 0) + output_tokens


@dataclass(frozen=True, kw_only=True)
class Launch:
    """One invocation, as the agent class builds it."""

    argv: list[str]
    stdin: bytes | None = None


class ExternalAgent:
    """A coding agent CLI. Subclasses say how to start it and how to read its output."""

    name = "agent"
    program = "agent"
    """The binary looked up on PATH when ``[agents.NAME] binary`` is not set."""
    install = ""
    """How to install it, for the preflight's error."""
    passes: tuple[str, ...] = ()
    """Environment variables (``PREFIX_*`` patterns allowed) it gets by default."""
    resumable = False
    """Whether a later attempt continues the agent's own session."""
    exit_code_counts = True
    """False where the exit code says nothing about the result (aider)."""

    def __init__(self, settings: AgentSettings, config: Config | None = None) -> None:
        self.settings = settings
        self.config = config

    # -- what subclasses provide ---------------------------------------------------------------

    def launch(
        self, prompt: str, prompt_file: Path, workdir: Path, worktree: Path, session: str | None
    ) -> Launch:
        raise NotImplementedError

    def read(self, line: str, outcome: Outcome) -> list[str]:
        """One line of the agent's output into ``outcome``; the events it is worth showing."""
        return []

    def finish(self, outcome: Outcome) -> None:
        """After the agent exited: anything read from its whole output at once."""

    def version_argv(self) -> list[str]:
        return [self.binary(), "--version"]

    # -- shared --------------------------------------------------------------------------------

    def binary(self) -> str:
        return self.settings.binary or self.program

    def found(self, env: Mapping[str, str]) -> str | None:
        binary = self.binary()
        if os.sep in binary:
            return binary if Path(binary).is_file() else None
        return shutil.which(binary, path=env.get("PATH", os.defpath))

    def preflight(self, scratch: Path) -> str:
        """``VERSION at PATH``; EnvironmentProblem (exit 3) with how to install it."""
        env = self.environment(os.environ)
        where = self.found(env)
        if where is None:
            raise EnvironmentProblem(
                f"implementer {self.name}: {self.binary()!r} was not found on PATH; "
                f"{self.install} (or set [agents.{self.name}] binary)"
            )
        argv = [where, *self.version_argv()[1:]]
        result = process.run(
            argv, cwd=scratch, env=env, timeout=VERSION_TIMEOUT,
            log=scratch / f"{self.name}-version.log", what=f"implementer {self.name}",
        )  # fmt: skip
        first = (result.tail.strip().splitlines() or [""])[0].strip()
        if not result.ok or not first:
            why = "timed out" if result.timed_out else f"exited with {result.exit_code}"
            raise EnvironmentProblem(
                f"implementer {self.name}: `{result.command}` {why}: {result.tail[-500:]}; "
                f"{self.install}"
            )
        return f"{first} at {where}"

    def environment(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The scrubbed environment of the gates, plus the agent's own variables (its key):
        its defaults and ``[agents.NAME] pass``."""
        env = environment.scrubbed(environ, self.config)
        patterns = [*self.passes, *self.settings.pass_]
        for name, value in environ.items():
            if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                env[name] = value
        return env

    def invoke(
        self,
        launch: Launch,
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: Path,
        on_event: Callable[[str], None],
        timeout: float | None = None,
    ) -> Outcome:
        """Run the agent to its end or its timeout, reading its output as it comes; its whole
        process tree is stopped before this returns, however it returns."""
        process.require_program(launch.argv, env, cwd, f"implementer {self.name}")
        outcome = Outcome(log=log)
        started = time.monotonic()
        deadline = started + (self.settings.timeout if timeout is None else timeout)
        proc = process.start(
            launch.argv, cwd=cwd, env=env, stdout=log, stderr=log.with_suffix(".stderr.log"),
            stdin=launch.stdin, head=AGENT_LOG_HEAD,
        )  # fmt: skip
        lines = _Lines(log)
        try:
            while True:
                done = process.wait_exit(proc, max(0.0, min(POLL, deadline - time.monotonic())))
                self._take(lines.new(), outcome, on_event)
                if done:
                    break
                if time.monotonic() >= deadline:
                    outcome.timed_out = True
                    break
        finally:
            process.stop_group(proc)
        self._take(lines.new(final=True), outcome, on_event)
        outcome.exit_code = None if outcome.timed_out else proc.returncode
        outcome.duration = time.monotonic() - started
        outcome.tail = process.tail_of(log, 30)
        err = process.tail_of(log.with_suffix(".stderr.log"), 15)
        if err.strip():
            outcome.tail = f"{outcome.tail}\n[stderr]\n{err}".strip()
        self.finish(outcome)
        return outcome

    def _take(
        self, lines: Sequence[str], outcome: Outcome, on_event: Callable[[str], None]
    ) -> None:
        for line in lines:
            for summary in self.read(line, outcome):
                outcome.events.append(summary)
                on_event(summary)


class _Lines:
    """Complete lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.partial = path, 0, b""

    def new(self, *, final: bool = False) -> list[str]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        *complete, self.partial = data.split(b"\n")
        if final and self.partial:
            complete.append(self.partial)
            self.partial = b""
        return [c.decode("utf-8", errors="replace") for c in complete]


def short(text: object, limit: int = 100) -> str:
    """One line of at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def json_line(line: str) -> dict[str, Any] | None:
    """One line of an agent's JSON-lines stream as an object, or None (a banner, a half line)."""
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
