"""The spec: what "done" means, as YAML (DESIGN.md §4). Parsed and validated here only."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from shipyard.config import Command, EnvVars, Seconds
from shipyard.exceptions import SpecError
from shipyard.formats import Loc, line_for, load_yaml, read_text, refuse_nul, validate
from shipyard.spec_steps import STEP_KINDS, ProjectFile, Step
from shipyard.spec_steps import Strict as _Strict

__all__ = ["STEP_KINDS", "Step"]

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
DEFAULT_SESSION = "default"
NO_SESSION = "none"
"""``session: none``: the check neither sends nor stores cookies."""


class Acceptance(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    text: str = Field(min_length=1)


class _Check(_Strict):
    id: str = Field(min_length=1)
    covers: tuple[str, ...] = ()


class RequiredTest(_Check):
    @field_validator("id")
    @classmethod
    def _file_and_name(cls, value: str) -> str:
        file, sep, name = value.partition("::")
        if not sep or not file or not name:
            raise ValueError("must be FILE::NAME, for example tests/test_x.py::test_y")
        if file.startswith("/") or ".." in Path(file).parts:
            raise ValueError("FILE must be relative to the project root")
        return value

    @property
    def file(self) -> str:
        return self.id.partition("::")[0]


class TestChecks(_Strict):
    required: tuple[RequiredTest, ...] = ()


class HeaderEquals(_Strict):
    equals: str
    """The response's value is exactly this (a string alone means: contains it)."""


def _header_values(value: dict[str, Any]) -> dict[str, Any]:
    for name, wanted in value.items():
        text = wanted.equals if isinstance(wanted, HeaderEquals) else wanted
        if not name.isascii() or not text.isascii() or not name.strip():
            raise ValueError(f"header {name!r}: names and values must be non-empty ASCII")
    return value


FormValue = bool | int | float | str
"""A form field's value; numbers and booleans are sent as their JSON text."""


class HttpRequest(_Strict):
    method: str = "GET"
    path: str
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    body: str | None = None
    form: dict[str, FormValue | tuple[FormValue, ...]] | None = None
    """Form fields: urlencoded, or multipart with ``files``; a list repeats the field."""
    files: dict[str, ProjectFile] | None = None
    """``{field: path}``: a multipart upload of files in the project."""
    follow_redirects: bool = False
    timeout: Seconds = 10

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]+", value):
            raise ValueError("must be an HTTP method such as GET or POST")
        return value.upper()

    _headers = field_validator("headers")(classmethod(lambda cls, v: _header_values(v)))

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") and not value.startswith("{{"):
            raise ValueError('must start with "/" (or be a captured {{name}})')
        return value

    @model_validator(mode="after")
    def _one_body(self) -> HttpRequest:
        given = [
            name
            for name, value in (("json", self.json_body), ("body", self.body))
            if value is not None
        ]
        if self.form is not None or self.files is not None:
            given.append("form/files")
        if len(given) > 1:
            both = " and ".join(given)
            raise ValueError(f"give one of json, body, or form and files, not {both}")
        return self


class HttpExpect(_Strict):
    status: int | None = Field(default=None, ge=100, le=599)
    json_subset: Any = Field(default=None, alias="json")
    headers: dict[str, str | HeaderEquals] = Field(default_factory=dict)
    body_contains: tuple[str, ...] = ()
    final_url: str | None = None
    """The last URL after following redirects contains it, or it is a regex found in it."""

    _headers = field_validator("headers")(classmethod(lambda cls, v: _header_values(v)))


CAPTURE_KINDS = ("header", "cookie", "regex")


def capture_source(source: str) -> tuple[str, str]:
    """``header:Location`` -> ("header", "Location"); a dotted JSON path -> ("json", path)."""
    kind, sep, rest = source.partition(":")
    if sep and kind in CAPTURE_KINDS:
        return kind, rest
    return "json", source


def _capture_sources(value: dict[str, str]) -> dict[str, str]:
    for name, source in value.items():
        kind, arg = capture_source(source)
        if not arg.strip():
            raise ValueError(f"capture {name}: {source!r} names nothing to capture")
        if kind != "regex":
            continue
        try:
            groups = re.compile(arg).groups
        except re.error as exc:
            raise ValueError(f"capture {name}: {arg!r} is not a regular expression: {exc}") from exc
        if groups < 1:
            raise ValueError(f"capture {name}: {arg!r} needs a group, (…), around what to capture")
    return value


SessionName = Field(default=None, pattern=ID_PATTERN)
"""A cookie jar's name: ``default`` (the shared jar), ``none`` (no cookies), or any other."""


class HttpCheck(_Check):
    request: HttpRequest
    expect: HttpExpect = Field(default_factory=HttpExpect)
    capture: dict[str, str] = Field(default_factory=dict)
    session: str | None = SessionName
    fresh_app: bool = False

    _captures = field_validator("capture")(classmethod(lambda cls, v: _capture_sources(v)))

    @model_validator(mode="after")
    def _final_url_follows(self) -> HttpCheck:
        if self.expect.final_url is not None and not self.request.follow_redirects:
            raise ValueError("expect.final_url needs request.follow_redirects: true")
        return self


class CliExpect(_Strict):
    exit: int | None = 0
    stdout_contains: tuple[str, ...] = ()
    stderr_contains: tuple[str, ...] = ()
    stderr_empty: bool = False


class CliCheck(_Check):
    run: str | tuple[str, ...]
    stdin: str | None = None
    timeout: Seconds = 30
    env: EnvVars = Field(default_factory=dict)
    expect: CliExpect = Field(default_factory=CliExpect)
    fresh_app: bool = False

    @field_validator("run")
    @classmethod
    def _not_empty(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        if not value or (isinstance(value, str) and not value.strip()):
            raise ValueError("is empty")
        return value


class UiCheck(_Check):
    steps: tuple[Step, ...] = Field(min_length=1)
    allow_errors: tuple[str, ...] = ()
    """Regexes: a page error, console error or failed request matching one is allowed."""
    timeout: Seconds = 5
    """Seconds each step may take."""
    session: str | None = SessionName
    """The flow starts with this jar's cookies (what the browser sets is not written back)."""
    fresh_app: bool = False
    parallel: bool = False
    """It may overlap the ``parallel`` flows written next to it (its own browser, same app)."""

    @field_validator("allow_errors")
    @classmethod
    def _regexes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from exc
        return value


class Checks(_Strict):
    tests: TestChecks = Field(default_factory=TestChecks)
    http: tuple[HttpCheck, ...] = ()
    cli: tuple[CliCheck, ...] = ()
    ui: tuple[UiCheck, ...] = ()


class AppOverride(_Strict):
    start: Command | None = None
    ready: str | None = None
    ready_timeout: Seconds | None = None
    env: EnvVars | None = None


class Spec(_Strict):
    task: str = Field(min_length=1)
    acceptance: tuple[Acceptance, ...] = Field(min_length=1)
    checks: Checks = Field(default_factory=Checks)
    timeout: Seconds | None = None
    """Overrides ``commands.timeout`` for this spec."""
    app: AppOverride | None = None
    source: str = Field(default="", exclude=True)

    def all_checks(self) -> list[tuple[str, _Check]]:
        """Every check with its kind, in the order they run."""
        c = self.checks
        return [
            *(("test", t) for t in c.tests.required),
            *(("http", h) for h in c.http),
            *(("cli", k) for k in c.cli),
            *(("ui", u) for u in c.ui),
        ]

    def uncovered(self) -> list[str]:
        covered = {a for _, check in self.all_checks() for a in check.covers}
        return [a.id for a in self.acceptance if a.id not in covered]


def load_spec(path: Path) -> Spec:
    text = read_text(path, SpecError)
    return parse_spec(text, str(path))


def parse_spec(text: str, file: str) -> Spec:
    data, lines = load_yaml(text, file, SpecError)
    if not isinstance(data, dict):
        raise SpecError("must be a mapping with task, acceptance and checks", file=file)
    refuse_nul(data, file=file, lines=lines, error=SpecError)
    spec = validate(Spec, data, file=file, lines=lines, error=SpecError)
    _check_ids(spec, file, lines)
    return spec.model_copy(update={"source": file})


def _check_ids(spec: Spec, file: str, lines: dict[Loc, int]) -> None:
    def fail(msg: str, loc: Loc) -> SpecError:
        from shipyard.formats import dotted

        return SpecError(msg, file=file, field=dotted(loc), line=line_for(loc, lines))

    accepted: set[str] = set()
    for i, acc in enumerate(spec.acceptance):
        if acc.id in accepted:
            raise fail(f"duplicate acceptance id {acc.id!r}", ("acceptance", i, "id"))
        accepted.add(acc.id)
    seen: dict[str, Loc] = {}
    groups: list[tuple[Loc, tuple[Any, ...]]] = [
        (("checks", "tests", "required"), spec.checks.tests.required),
        (("checks", "http"), spec.checks.http),
        (("checks", "cli"), spec.checks.cli),
        (("checks", "ui"), spec.checks.ui),
    ]
    for base, checks in groups:
        for i, check in enumerate(checks):
            loc = (*base, i)
            if check.id in seen:
                raise fail(f"duplicate check id {check.id!r}", (*loc, "id"))
            seen[check.id] = loc
            for j, name in enumerate(check.covers):
                if name not in accepted:
                    known = ", ".join(sorted(accepted))
                    raise fail(
                        f"{name!r} is not an acceptance id (known: {known})", (*loc, "covers", j)
                    )


def spec_hash(text: str) -> str:
    """The hash a run locks its spec with."""
    return hashlib.sha256(text.encode()).hexdigest()


def spec_lines(path: Path) -> dict[tuple[str, str], int]:
    """Where each acceptance id and check is written: ``(kind, id)`` -> line, with kind
    ``coverage`` for an acceptance id and the check's result kind otherwise."""
    data, lines = load_yaml(read_text(path, SpecError), str(path), SpecError)
    found: dict[tuple[str, str], int] = {}
    if not isinstance(data, dict):
        return found
    groups: list[tuple[str, Loc, Any]] = [
        ("coverage", ("acceptance",), data.get("acceptance")),
        ("required", ("checks", "tests", "required"), _get(data, "checks", "tests", "required")),
        ("http", ("checks", "http"), _get(data, "checks", "http")),
        ("cli", ("checks", "cli"), _get(data, "checks", "cli")),
        ("ui", ("checks", "ui"), _get(data, "checks", "ui")),
    ]
    for kind, base, items in groups:
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict) and (line := line_for((*base, i), lines)) is not None:
                found[(kind, str(item.get("id")))] = line
    return found


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data
