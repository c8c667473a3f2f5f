"""``shipyard.toml`` (or ``[tool.shipyard]`` in ``pyproject.toml``): parsed and validated here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from shipyard.config_agents import Agents
from shipyard.config_services import ServiceConfig, ServiceName
from shipyard.exceptions import ConfigError
from shipyard.formats import line_for, read_text, refuse_nul, toml_lines, validate

CONFIG_FILE = "shipyard.toml"
MAX_SECONDS = 7 * 24 * 3600

Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS)]
"""A duration: positive, finite, at most a week."""


def _command(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty: give the command to run")
    return value


def _env_names(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not name or "=" in name or "\0" in name:
            raise ValueError(f"{name!r} is not an environment variable name (no '=', not empty)")
    return value


def _inside_project(value: str) -> str:
    if not value.strip() or Path(value).is_absolute() or ".." in Path(value).parts:
        raise ValueError(f"{value!r}: must be a path relative to the project, inside the project")
    return value


Command = Annotated[str, AfterValidator(_command)]
"""A shell command: not blank (NUL in any input string is refused before validation)."""
EnvVars = Annotated[dict[str, str], AfterValidator(_env_names)]
"""Environment variables to set: every name a valid one."""
ProjectPath = Annotated[str, AfterValidator(_inside_project)]
"""A path read from a file Shipyard reads: relative, and inside the project."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Commands(_Strict):
    build: tuple[Command, ...] = ()
    test: Command | None = None
    timeout: Seconds = 600
    junit: ProjectPath | None = None
    """Where a runner Shipyard does not know writes its JUnit XML, relative to the project."""
    env: EnvVars = Field(default_factory=dict)
    """Set for every command the verify runs; ``{tmp}``, ``{workdir}``, service ports expand."""
    env_file: ProjectPath | None = None
    """``KEY=VALUE`` lines read at each verify; never logged, scrubbed from the evidence."""
    cwd: ProjectPath | None = None
    """Where the build and test commands run; test ids stay relative to the project root."""

    @field_validator("build", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def folder(self, root: Path) -> Path:
        """Where the build and test commands run in the tree at ``root``."""
        return root / self.cwd if self.cwd else root


class AppConfig(_Strict):
    start: Command
    setup: tuple[Command, ...] = ()
    """Run in order before each start, in its environment (migrations, seed data)."""
    ready: str = "tcp"
    ready_timeout: Seconds = 30
    env: EnvVars = Field(default_factory=dict)
    stop_timeout: Seconds = 5

    @field_validator("ready")
    @classmethod
    def _ready_form(cls, value: str) -> str:
        if value != "tcp" and not value.startswith("/"):
            raise ValueError('must be "tcp" or an HTTP path starting with "/"')
        return value

    @field_validator("setup", mode="before")
    @classmethod
    def _setup_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


ModelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+:.+$")]
"""``provider:model``, as pydantic-ai spells it (``openai:gpt-4.1``), a provider declared under
``[models.providers]``, or ``script:FILE`` for a scripted model."""


class Provider(_Strict):
    """An OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio) by base URL."""

    base_url: Annotated[str, Field(pattern=r"^https?://")]
    api_key_env: str | None = None
    """The environment variable holding its key; none for servers that need no key."""


class Models(_Strict):
    planner: ModelName | None = None
    implementer: ModelName | None = None
    reviewer: ModelName | None = None
    diagnoser: ModelName | None = None
    default: ModelName | None = None
    """For every role not named above."""
    providers: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")], Provider] = Field(
        default_factory=dict
    )
    retries: Annotated[int, Field(ge=0, le=20)] = 4
    """Provider errors (rate limits, 5xx, timeouts) retried per request before the run pauses."""
    backoff: Seconds = 2
    """The first wait between retries; it doubles each time."""
    request_timeout: Seconds = 300
    output_retries: Annotated[int, Field(ge=0, le=10)] = 3
    """How often an invalid structured answer is sent back with its validation error."""


class Budget(_Strict):
    """Every run is bounded; the first limit reached ends it *blocked*."""

    attempts: Annotated[int, Field(ge=1, le=100)] = 4
    steps: Annotated[int, Field(ge=1, le=10_000)] = 40
    """Implementer steps (model requests) per attempt."""
    tokens: Annotated[int, Field(ge=1)] = 2_000_000
    cost: Annotated[float, Field(gt=0)] | None = None
    """US dollars, counted where the provider reports a price."""
    wall: Seconds = 3600
    """Seconds of work (time paused between processes does not count)."""
    idle_steps: Annotated[int, Field(ge=2, le=1000)] = 12
    """Steps in a row that change nothing in the worktree before the attempt counts as looping."""
    repeat_calls: Annotated[int, Field(ge=2, le=100)] = 3
    """The same tool call with the same arguments this many times in a row is a loop."""
    diagnosis_steps: Annotated[int, Field(ge=1, le=1000)] = 15
    run_timeout: Seconds = 300
    """The implementer's ``run`` tool: the longest one command may take."""


DOC_FILES = (
    "AGENTS.md", "CLAUDE.md", "GEMINI.md", "CONVENTIONS.md", ".cursorrules",
    ".github/copilot-instructions.md",
)  # fmt: skip
"""The instruction files that coding agents read, read here as the project's conventions."""


class Knowledge(_Strict):
    """The project's knowledge store (``.shipyard/shipyard.db``)."""

    enabled: bool = True
    """False: runs neither read nor write it (``shipyard memory`` still works)."""
    budget: Annotated[int, Field(ge=0, le=200_000)] = 2000
    """Tokens of knowledge (estimated) each role is given at most."""
    docs: tuple[ProjectPath, ...] = DOC_FILES
    """Files at the project root read as conventions."""


VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Environment(_Strict):
    """What model-written code (the ``run`` tool, the gates of ``run``/``resume``) may see of
    the caller's environment beyond the base allow-list (:mod:`shipyard.environment`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    pass_: tuple[Annotated[str, Field(pattern=VARIABLE_NAME)], ...] = Field(
        default=(), alias="pass"
    )
    """Variable names passed through; a model provider's own variables never are."""


class Sandbox(_Strict):
    """Where the ``run`` tool and the gates of a run execute."""

    kind: Literal["none", "bwrap"] = "none"
    """``bwrap``: inside bubblewrap, the worktree writable, no network but its own loopback."""


class Hooks(_Strict):
    """``shipyard hook AGENT``: the gates where a coding agent stops."""

    max_blocks: Annotated[int, Field(ge=1, le=100)] = 3
    """Blocks in a row (one agent session) before the stop is allowed with a warning."""
    budget: Seconds | None = None
    """Seconds one hook call may spend checking; past it the stop is allowed, naming what did
    not run. Default: within the agent's own hook timeout (540 for Claude Code and Codex, 54 for
    Gemini CLI and Cursor)."""


class VerifySettings(_Strict):
    """How ``shipyard verify`` runs its gates."""

    parallel: bool = True
    """Independent chains at once (``verify.py``'s ``STAGES``); false: one check after another."""


class Config(_Strict):
    commands: Commands = Field(default_factory=Commands)
    app: AppConfig | None = None
    verify: VerifySettings = Field(default_factory=VerifySettings)
    services: dict[ServiceName, ServiceConfig] = Field(default_factory=dict)
    """Processes started before the gates and stopped after them (``shipyard.services``)."""
    models: Models = Field(default_factory=Models)
    budget: Budget = Field(default_factory=Budget)
    knowledge: Knowledge = Field(default_factory=Knowledge)
    environment: Environment = Field(default_factory=Environment)
    sandbox: Sandbox = Field(default_factory=Sandbox)
    hooks: Hooks = Field(default_factory=Hooks)
    agents: Agents = Field(default_factory=Agents)
    source: str = Field(default="", exclude=True)
    """The file this came from, for messages."""


def load_config(project: Path, *, missing_ok: bool = False) -> Config:
    """Read ``shipyard.toml``, else ``[tool.shipyard]`` from ``pyproject.toml``; with
    ``missing_ok``, the defaults when there is neither."""
    own = project / CONFIG_FILE
    if own.is_file():
        text = read_text(own, ConfigError)
        data = _parse(text, own)
        return _validated(data, text, own, prefix=())
    pyproject = project / "pyproject.toml"
    if pyproject.is_file():
        text = read_text(pyproject, ConfigError)
        section = _parse(text, pyproject).get("tool", {}).get("shipyard")
        if section is not None:
            return _validated(section, text, pyproject, prefix=("tool", "shipyard"))
    if missing_ok:
        return Config()
    raise ConfigError(
        f"no {CONFIG_FILE} and no [tool.shipyard] in pyproject.toml (run `shipyard init`)",
        file=str(own),
    )


def _parse(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        raise ConfigError(f"not valid TOML: {exc}", file=str(path), line=line) from exc


def _validated(data: object, text: str, path: Path, prefix: tuple[str, ...]) -> Config:
    if not isinstance(data, dict):
        raise ConfigError("must be a table", file=str(path), field=".".join(prefix) or None)
    lines = toml_lines(text)
    refuse_nul(data, file=str(path), lines=lines, error=ConfigError, prefix=prefix)
    config = validate(Config, data, file=str(path), lines=lines, error=ConfigError, prefix=prefix)
    return config.model_copy(update={"source": str(path)})


def config_line(config: Config, *loc: str) -> int | None:
    """The line of a key (``"commands", "build"``) in the file ``config`` was read from."""
    if not config.source:
        return None
    path = Path(config.source)
    prefix: tuple[str, ...] = ("tool", "shipyard") if path.name == "pyproject.toml" else ()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return line_for((*prefix, *loc), toml_lines(text))
