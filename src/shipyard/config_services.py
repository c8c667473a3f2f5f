"""``[services.NAME]`` of ``shipyard.toml``, and the ``[commands] env_file`` it may read.

A service is a process the tests and the app need (a database, a queue, a second service):
``start`` (with ``{port}``, a free port on 127.0.0.1, and ``{tmp}``, a fresh folder of its own),
``ready`` (``"tcp"`` or an HTTP path) or ``ready_command`` (a command that exits 0 once it is
ready), and ``env``: variables exported to the tests, the base runs and the app. The running of
them is :mod:`shipyard.services`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from shipyard.exceptions import ConfigError
from shipyard.formats import read_text

SERVICE_NAME = r"^[A-Za-z0-9_-]+$"
ServiceName = Annotated[str, Field(pattern=SERVICE_NAME)]
"""What ``{services.NAME.port}`` names: letters, digits, ``_`` and ``-``."""
_MAX_SECONDS = 7 * 24 * 3600
_COMMENT = re.compile(r"\s#")
_ENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def _command(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty: give the command to run")
    return value


def _names(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not name or "=" in name or "\0" in name:
            raise ValueError(f"{name!r} is not an environment variable name (no '=', not empty)")
    return value


class ServiceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: Annotated[str, AfterValidator(_command)]
    ready: str = "tcp"
    """``"tcp"``: the port accepts a connection; ``"/path"``: a GET answers below 500."""
    ready_command: Annotated[str, AfterValidator(_command)] | None = None
    """A command run until it exits 0 (each try bounded); when set, used instead of ``ready``."""
    ready_timeout: Annotated[float, Field(gt=0, le=_MAX_SECONDS)] = 60
    env: Annotated[dict[str, str], AfterValidator(_names)] = Field(default_factory=dict)
    """Exported to the build, the tests, the base runs, the app and the CLI checks."""
    stop_timeout: Annotated[float, Field(gt=0, le=_MAX_SECONDS)] = 10
    """Seconds between SIGTERM and SIGKILL of its process group at the end of the verify."""

    @field_validator("ready")
    @classmethod
    def _ready_form(cls, value: str) -> str:
        if value != "tcp" and not value.startswith("/"):
            raise ValueError(
                'must be "tcp" or an HTTP path starting with "/" (for a command that exits 0 '
                "once the service is ready, set ready_command)"
            )
        return value

    @model_validator(mode="after")
    def _one_probe(self) -> ServiceConfig:
        if self.ready_command is not None and "ready" in self.model_fields_set:
            raise ValueError("give ready or ready_command, not both")
        return self


def read_env_file(
    path: Path, *, source: str, line: int | None = None, project: Path | None = None
) -> dict[str, str]:
    """``KEY=VALUE`` lines (``export`` allowed, ``#`` comments, blank lines, a value in single
    or double quotes kept as written, a comment after it allowed). A bad line is bad input
    naming the file and the line, never quoting it: the values are secrets. ``line``: where
    ``source`` sets ``env_file``, for the error when the file is not there. ``project``: a link
    that leads out of it is refused (the path itself is checked when the config is read)."""
    if project is not None and not path.resolve().is_relative_to(project.resolve()):
        raise ConfigError(
            f"{path} leads out of the project {project} (a symbolic link)",
            file=source or None, field="commands.env_file", line=line,
        )  # fmt: skip
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise ConfigError(
            f"{path} {what} (the env_file to read the commands' variables from)",
            file=source or None, field="commands.env_file", line=line,
        )  # fmt: skip
    try:
        content = read_text(path, ConfigError)
    except (ConfigError, UnicodeDecodeError) as exc:
        decoding = (exc, exc.__cause__)
        not_text = any(isinstance(e, UnicodeDecodeError) for e in decoding)
        what = "is not UTF-8 text" if not_text else f"cannot be read: {exc}"
        raise ConfigError(
            f"{path} {what} (the env_file to read the commands' variables from)",
            file=source or None, field="commands.env_file", line=line,
        ) from None  # fmt: skip
    values: dict[str, str] = {}
    for number, text in enumerate(content.splitlines(), start=1):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        found = _ENV_LINE.match(stripped)
        if found is None:
            raise ConfigError(
                "not a KEY=VALUE line (the line is not shown: it may hold a secret)",
                file=str(path), line=number,
            )  # fmt: skip
        values[found.group(1)] = _value(found.group(2).strip())
    return values


def _value(value: str) -> str:
    """A value without its quotes (``"v"``, ``'v'``, ``"v" # comment``) or its comment."""
    if value[:1] in ("'", '"'):
        end = value.find(value[0], 1)
        rest = value[end + 1 :].strip() if end > 0 else "not closed"
        if not rest or rest.startswith("#"):
            return value[1:end]
        if len(value) >= 2 and value[-1] == value[0]:
            return value[1:-1]
    return _COMMENT.split(value, 1)[0].rstrip()
