"""The spec's building blocks shared by its checks: the strict base model, project file paths,
and the browser steps of a UI flow (``checks.ui[].steps``). Validated here, read by ``spec.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _inside_project(value: str) -> str:
    if not value.strip() or Path(value).is_absolute() or ".." in Path(value).parts:
        raise ValueError(f"{value!r}: must be a path relative to the project, inside the project")
    return value


ProjectFile = Annotated[str, AfterValidator(_inside_project)]
"""A file the spec names (an upload): relative to the project and inside it. Symbolic links
that lead out of the project are refused when the runtime gate resolves it."""


def _selector_shorthand(value: object, key: str = "selector") -> object:
    return {key: value} if isinstance(value, str) else value


class Target(Strict):
    selector: str = Field(min_length=1)


class FillArgs(Target):
    value: str


class PressArgs(Target):
    key: str = Field(min_length=1)


class SelectArgs(Target):
    value: str


class CheckArgs(Target):
    checked: bool = True


class TextArgs(Target):
    text: str


class CountArgs(Target):
    count: int = Field(ge=0)


class VisibleArgs(Target):
    visible: bool = True


class WaitArgs(Target):
    state: Literal["visible", "hidden", "attached", "detached"] = "visible"


class UploadArgs(Target):
    files: tuple[ProjectFile, ...] = Field(min_length=1)

    @field_validator("files", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


STEP_KINDS = (
    "goto", "click", "fill", "press", "select", "check", "reload", "wait_for", "upload",
    "expect_text", "expect_count", "expect_visible", "expect_url", "screenshot",
)  # fmt: skip


class Step(Strict):
    """One browser step: a mapping with exactly one of the keys below."""

    goto: str | None = None
    click: Target | None = None
    fill: FillArgs | None = None
    press: PressArgs | None = None
    select: SelectArgs | None = None
    check: CheckArgs | None = None
    reload: Literal[True] | None = None
    wait_for: WaitArgs | None = None
    upload: UploadArgs | None = None
    expect_text: TextArgs | None = None
    expect_count: CountArgs | None = None
    expect_visible: VisibleArgs | None = None
    expect_url: str | None = None
    screenshot: str | None = None

    @field_validator("click", "check", "expect_visible", "wait_for", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return _selector_shorthand(value)

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: object) -> object:
        if isinstance(data, dict):
            known = [k for k in data if k in STEP_KINDS]
            if len(data) != 1 or len(known) != 1:
                raise ValueError(f"a step has exactly one key, one of: {', '.join(STEP_KINDS)}")
            if data[known[0]] is None:
                raise ValueError(f"{known[0]} needs a value")
        return data

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)

    @property
    def arg(self) -> Any:
        return getattr(self, self.kind)


def resolve_in_project(project: Path, name: str) -> Path:
    """``name`` (a ``ProjectFile``) resolved, links followed; ValueError when that leads out of
    the project."""
    root = project.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"{name!r} leads outside the project (to {path})")
    return path
