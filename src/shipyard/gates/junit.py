"""Reading JUnit XML into per-test outcomes keyed by Shipyard's test id (``FILE::NAME``).

A test case with a file but no name, or named as its file, is the file itself (pytest's
collection error, a Node test file that crashed on load, a jest or vitest file that failed to
run): its id is ``FILE``. Without a ``file`` attribute (vitest) the class name is the file.
Cases that share an id are all kept: the worst outcome decides, and the message says how many
there were. A case whose error has
``type="interrupted"`` (Shipyard's own reporters) was still running when the run was stopped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
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
    interrupted: bool = False
    """Still running when the run was stopped at its time limit (reported as failed)."""


WORSE = {"passed": 0, "skipped": 1, "xfail": 2, "failed": 3, "error": 4}
INTERRUPTED = "timed out: still running when the run was stopped at its time limit"


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
    found: dict[str, list[TestOutcome]] = {}
    for suite in suites:
        for case in suite:
            if not hasattr(case, "result"):
                continue  # a nested suite
            test_id = _test_id(case, project)
            if test_id:  # pytest leaves a nameless case for the test it was interrupted in
                found.setdefault(test_id, []).append(outcome_for(test_id, case, _outcome(case)))
    return {test_id: _merged(same) for test_id, same in found.items()}


def complete_report(path: Path) -> None:
    """Close the elements of a report a stopped runner left open (Shipyard's reporters write
    each case as it ends, the closing tags last)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64))
            end = fh.read()
    except OSError:
        return
    if b"<testsuite" in path.read_bytes()[:400] and not end.rstrip().endswith(b"</testsuites>"):
        with open(path, "ab") as fh:
            fh.write(b"\n</testsuite>\n</testsuites>\n")


def _merged(same: list[TestOutcome]) -> TestOutcome:
    """One outcome for an id several cases share: the worst, saying that they share it."""
    worst = max(same, key=lambda o: WORSE[o.outcome])
    if len(same) == 1:
        return worst
    outcomes = ", ".join(o.outcome for o in same)
    note = f"{len(same)} results share this id ({outcomes}); the worst counts"
    message = f"{note}: {worst.message}" if worst.message else note
    return replace(worst, message=message, duration=sum(o.duration for o in same))


def outcome_for(test_id: str, case: object, outcome: Outcome) -> TestOutcome:
    results = getattr(case, "result", [])
    message, interrupted = "", False
    for result in results:
        interrupted = (result.type or "") == "interrupted"
        text = (result.text or "").strip()
        message = (result.message or "").strip()
        if text and text not in message:
            message = f"{message}\n{text}".strip() if message else text
        break
    return TestOutcome(
        id=test_id,
        outcome="failed" if interrupted else outcome,
        message=INTERRUPTED if interrupted else _bounded(message),
        duration=float(getattr(case, "time", 0.0) or 0.0),
        interrupted=interrupted,
    )


def _bounded(message: str, limit: int = 4000) -> str:
    """The start (what failed) and the end (the exception line) of a long message."""
    if len(message) <= limit:
        return message
    return f"{message[: limit // 4]}\n...\n{message[-(limit * 3 // 4) :]}"


def from_project(file: str, project: Path) -> str:
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
    # jest-junit's title "{classname} > {title}" starts with " > " outside any describe
    name = str(getattr(case, "name", "") or "").removeprefix(" > ")
    classname = str(getattr(case, "classname", "") or "")
    file = case._elem.get("file") if hasattr(case, "_elem") else None  # noqa: SLF001
    if file:
        if os.path.isabs(file):
            file = os.path.relpath(file, project)
        file = file.replace(os.sep, "/")
        module = file.removesuffix(".py").replace("/", ".")
        named_as_file = name == file  # jest-junit's case for a file that failed to run
        file = from_project(file, project)
        if not name or named_as_file or (not classname and name == module):
            return file  # the file itself: it failed to load
        parts = [name]
        if classname.startswith(module + "."):
            parts = [*classname[len(module) + 1 :].split("."), name]
        return "::".join([file, *parts])
    if not name:
        return ""
    if classname and name == classname:  # vitest's case for a file that failed to load
        return from_project(classname, project)
    return f"{from_project(classname, project)}::{name}" if classname else name
