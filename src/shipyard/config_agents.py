"""``[agents]`` in ``shipyard.toml``: which implementer ``shipyard run`` drives, and the settings
of each coding agent it can drive (``[agents.claude-code]``, ``[agents.codex]``,
``[agents.aider]``, ``[agents.cmd]``). Validated with the rest of the config (``config.py``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

AGENT_NAMES = ("claude-code", "codex", "aider")
"""The coding agents Shipyard knows how to drive headless."""
IN_PROCESS = "model"
"""The implementer that runs inside Shipyard, on ``[models]``."""
COMMAND_PREFIX = "cmd:"

VARIABLE = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\*?$")]
"""An environment variable name, or a prefix ending in ``*`` (``MY_AGENT_*``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def implementer_name(value: str) -> str:
    """``model``, a known agent, or ``cmd:COMMAND``; ValueError naming the choices otherwise."""
    if value in (IN_PROCESS, *AGENT_NAMES):
        return value
    if value.startswith(COMMAND_PREFIX):
        if not value[len(COMMAND_PREFIX) :].strip():
            raise ValueError('"cmd:" needs a command after it, e.g. cmd:"my-agent {prompt_file}"')
        return value
    choices = ", ".join([IN_PROCESS, *AGENT_NAMES, 'cmd:"COMMAND"'])
    raise ValueError(f"{value!r} is not an implementer; choose one of {choices}")


class AgentSettings(_Strict):
    """How one coding agent is started. Every key is optional."""

    binary: str | None = None
    """The program to run (a path, or a name looked up on PATH); default: the agent's own."""
    args: tuple[str, ...] = ()
    """Extra arguments, added after Shipyard's own."""
    model: str | None = None
    """Passed to the agent as its model (``--model``); default: the agent's own choice."""
    timeout: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 1800
    """Seconds one invocation (one attempt) may take; past it the agent and everything it
    started are stopped and the attempt fails."""
    allowed_tools: tuple[str, ...] | None = None
    """Claude Code: the tools it may use without asking (``--allowedTools``); default
    ``Read, Write, Edit, MultiEdit, Glob, Grep, Bash, LS``."""
    pass_: tuple[VARIABLE, ...] = Field(default=(), alias="pass")
    """More environment variables (or ``PREFIX_*``) passed to the agent, on top of its own
    defaults; the gates never see them."""


class Agents(_Strict):
    implementer: str | None = None
    """``model`` (in-process, the default), ``claude-code``, ``codex``, ``aider`` or
    ``cmd:COMMAND``; ``shipyard run --implementer`` overrides it."""
    claude_code: AgentSettings = Field(default_factory=AgentSettings, alias="claude-code")
    codex: AgentSettings = Field(default_factory=AgentSettings)
    aider: AgentSettings = Field(default_factory=AgentSettings)
    cmd: AgentSettings = Field(default_factory=AgentSettings)

    @field_validator("implementer")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        return None if value is None else implementer_name(value)

    def settings(self, name: str) -> AgentSettings:
        """The settings of ``claude-code``, ``codex``, ``aider``, or of any ``cmd:``."""
        if name.startswith(COMMAND_PREFIX) or name == "cmd":
            return self.cmd
        return {"claude-code": self.claude_code, "codex": self.codex, "aider": self.aider}[name]
