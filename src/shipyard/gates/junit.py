"""Reading JUnit XML into per-test outcomes keyed by Shipyard's test id (``FILE::NAME``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from junitparser import Error, Failure, JUnitXml, Skipped, TestSuite
from junitparser.junitparser import JUnitXmlError

Outcome = Literal["passed", "failed", "error", "skipped", "xfail"]


@dataclass(frozen=True, kw_only=True)
class TestOutcome:
    id: str
    outcome: Outcome
    message: str = ""
    duration: float = 0.0


class ReportError(Exception):
    """The report is missing or not JUnit XML."""


def read_report(path: Path, project: Path) -> dict[str, TestOutcome]:
    if not path.is_file():
        raise ReportError(f"no test report was written at {path}")
    try:
        xml = JUnitXml.fromfile(str(path))
    except (JUnitXmlError, OSError, SyntaxError) as exc:
        raise ReportError(f"the test report {path} is not JUnit XML: {exc}") from exc
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    outcomes: dict[str, TestOutcome] = {}
    for suite in suites:
        for case in suite:
            if not hasattr(case, "result"):
                continue  # a nested suite
            outcome = _outcome(case)
            test_id = _test_id(case, project)
            outcomes[test_id] = outcome_for(test_id, case, outcome)
    return outcomes


def outcome_for(test_id: str, case: object, outcome: Outcome) -> TestOutcome:
    results = getattr(case, "result", [])
    message = ""
    for result in results:
        message = (result.message or result.text or "").strip()
        break
    return TestOutcome(
        id=test_id,
        outcome=outcome,
        message=message[:2000],
        duration=float(getattr(case, "time", 0.0) or 0.0),
    )


def _from_project(file: str, project: Path) -> str:
    """The runner may name files from its own root (pytest's rootdir can be a parent of the
    project): drop leading folders until the path is one inside the project."""
    parts = file.split("/")
    for start in range(len(parts)):
        candidate = "/".join(parts[start:])
        if (project / candidate).is_file():
            return candidate
    return file


def _outcome(case: object) -> Outcome:
    results = getattr(case, "result", [])
    if any(isinstance(r, Error) for r in results):
        return "error"
    if any(isinstance(r, Failure) for r in results):
        return "failed"
    skipped = [r for r in results if isinstance(r, Skipped)]
    if any("xfail" in (r.type or "") for r in skipped):
        return "xfail"
    if skipped:
        return "skipped"
    return "passed"


def _test_id(case: object, project: Path) -> str:
    name = str(getattr(case, "name", ""))
    classname = str(getattr(case, "classname", "") or "")
    file = case._elem.get("file") if hasattr(case, "_elem") else None  # noqa: SLF001
    if file:
        if os.path.isabs(file):
            file = os.path.relpath(file, project)
        file = file.replace(os.sep, "/")
        module = file.removesuffix(".py").replace("/", ".")
        parts = [name]
        if classname.startswith(module + "."):
            parts = [*classname[len(module) + 1 :].split("."), name]
        return "::".join([_from_project(file, project), *parts])
    return f"{classname}::{name}" if classname else name
