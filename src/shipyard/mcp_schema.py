"""The structured outputs of ``shipyard mcp``'s tools, as the output schemas clients see.

``VerifyDocument`` is the ``shipyard.verify/1`` document of docs/verify-json.md; like the
format, every model here allows fields beyond those listed (formats grow additively).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class CheckDocument(_Open):
    id: str
    kind: str
    status: Literal["passed", "failed", "not_run", "error"]
    message: str
    covers: list[str]
    evidence: str | None
    duration: float | None


class GateDocument(_Open):
    name: str
    status: Literal["passed", "failed", "not_run", "error"]
    duration: float
    message: str
    checks: list[CheckDocument]


class VerifyDocument(_Open):
    schema_: str = Field(alias="schema", description="shipyard.verify/1")
    run_id: str
    run_dir: str = Field(description="The evidence folder: logs, reports, screenshots.")
    verdict: Literal["passed", "failed", "error"]
    exit_code: int
    duration: float
    project: str | None = None
    spec: str | None = None
    base: str | None = None
    gates: list[GateDocument]


class JobDocument(_Open):
    job: str
    status: Literal["running", "done"]
    project: str
    run_id: str | None = Field(description="The verify's run id, once it has started.")
    elapsed: float
    progress: list[str] = Field(description="One line per gate started or finished so far.")
    result: VerifyDocument | None = Field(default=None, description="When done.")


class Coverage(BaseModel):
    id: str
    text: str
    covered_by: list[str]


class SpecReport(BaseModel):
    valid: bool
    spec: str | None = Field(description="The file checked, or null for text.")
    error: str | None = Field(description="When not valid: the file, field and line, and why.")
    task: str | None = None
    acceptance: list[Coverage] = Field(default_factory=list)
    uncovered: list[str] = Field(default_factory=list, description="Ids no check covers.")
    checks: dict[str, int] = Field(default_factory=dict, description="How many of each kind.")


class MemoryDocument(_Open):
    schema_: str = Field(alias="schema", description="shipyard.memory/1")
    entries: list[dict[str, Any]] = Field(default_factory=list)
    entry: dict[str, Any] | None = None


def spec_report(path: Path | None, text: str | None) -> SpecReport:
    """Validate the spec at ``path`` (default ``spec.yaml`` of the project) or ``text``."""
    from shipyard.exceptions import InputError
    from shipyard.spec import load_spec, parse_spec

    shown = str(path) if path is not None else None
    try:
        if text is not None:
            spec = parse_spec(text, "<text>")
        elif path is None:
            return SpecReport(valid=False, spec=None, error="no spec given (spec or text)")
        else:
            spec = load_spec(path)
    except InputError as exc:
        return SpecReport(valid=False, spec=shown, error=str(exc))
    checks = spec.all_checks()
    kinds: dict[str, int] = {}
    for kind, _ in checks:
        kinds[kind] = kinds.get(kind, 0) + 1
    acceptance = [
        Coverage(id=a.id, text=a.text, covered_by=[c.id for _, c in checks if a.id in c.covers])
        for a in spec.acceptance
    ]
    return SpecReport(
        valid=True,
        spec=shown,
        error=None,
        task=spec.task,
        acceptance=acceptance,
        uncovered=spec.uncovered(),
        checks=kinds,
    )
