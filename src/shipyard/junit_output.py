"""``shipyard verify --junit FILE``: each gate a JUnit testsuite, each check a testcase.

A failed check is a ``<failure>``, one that could not be checked an ``<error>``, one not run
``<skipped>``; every testcase carries its whole message and evidence path in ``<system-out>``.
FILE may be anywhere: it is written through a temporary file beside it and renamed into place,
and nothing but that temporary file is ever removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from shipyard.ci_output import label
from shipyard.exceptions import EnvironmentProblem, InputError, ShipyardError
from shipyard.results import CheckResult, GateResult, Verdict

NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot carry, even escaped (control characters from test output)."""
MESSAGE_CHARS = 1000
CHILD = {"failed": "failure", "error": "error", "not_run": "skipped"}


def check_target(path: Path) -> None:
    """Before verifying: FILE must be writable where it is (exit 2 otherwise)."""
    if path.is_dir():
        raise InputError(f"{path} is a directory", field="--junit")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{parent} does not exist", field="--junit")
    if not os.access(parent, os.W_OK):
        raise InputError(f"cannot write in {parent}", field="--junit")


def verdict_xml(verdict: Verdict) -> ET.Element:
    root = ET.Element("testsuites", name="shipyard verify")
    _counts(root, [c for g in verdict.gates for c in g.checks], verdict.duration)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime())
    for gate in verdict.gates:
        suite = ET.SubElement(
            root, "testsuite", name=gate.name, timestamp=stamp, hostname=socket.gethostname()
        )
        _counts(suite, list(gate.checks), gate.duration)
        props = ET.SubElement(suite, "properties")
        for name, value in (
            ("run_id", verdict.run_id),
            ("run_dir", verdict.run_dir),
            ("verdict", verdict.status),
        ):
            ET.SubElement(props, "property", name=name, value=_text(value))
        for check in gate.checks:
            _testcase(suite, gate, check, verdict.run_dir)
    return root


def error_xml(exc: ShipyardError) -> ET.Element:
    """Bad input or an environment problem: one testcase in error, saying so."""
    root = ET.Element(
        "testsuites",
        name="shipyard verify",
        tests="1",
        failures="0",
        errors="1",
        skipped="0",
        time="0",
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name="shipyard",
        tests="1",
        failures="0",
        errors="1",
        skipped="0",
        time="0",
    )
    case = ET.SubElement(suite, "testcase", name="verify", classname="shipyard", time="0")
    kind = "bad input" if exc.exit_code == 2 else "could not check"
    ET.SubElement(case, "error", message=_text(str(exc).splitlines()[0]), type=kind).text = _text(
        str(exc)
    )
    return root


def write(root: ET.Element, path: Path) -> None:
    """Write atomically: a temporary file beside ``path``, renamed over it."""
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()  # ours: created above with O_EXCL
        raise EnvironmentProblem(f"--junit: cannot write {path}: {exc.strerror}") from exc


def _testcase(suite: ET.Element, gate: GateResult, check: CheckResult, run_dir: str) -> None:
    seconds = f"{check.duration:.3f}" if check.duration is not None else "0"
    case = ET.SubElement(
        suite,
        "testcase",
        name=_text(label(gate, check)),
        classname=f"shipyard.{gate.name}",
        time=seconds,
    )
    message = check.message or check.status
    evidence = str(Path(run_dir) / check.evidence) if check.evidence else None
    if (child := CHILD.get(check.status)) is not None:
        element = ET.SubElement(case, child, message=_text(message.splitlines()[0][:MESSAGE_CHARS]))
        if child != "skipped":
            element.set("type", check.kind)
            element.text = _text(message)
    out = [message, f"covers: {', '.join(check.covers)}" if check.covers else ""]
    out.append(f"evidence: {evidence}" if evidence else "evidence: none")
    ET.SubElement(case, "system-out").text = _text("\n".join(x for x in out if x))


def _counts(element: ET.Element, checks: list[CheckResult], seconds: float) -> None:
    element.set("tests", str(len(checks)))
    for attr, status in (("failures", "failed"), ("errors", "error"), ("skipped", "not_run")):
        element.set(attr, str(sum(c.status == status for c in checks)))
    element.set("time", f"{seconds:.3f}")


def _text(value: str) -> str:
    return NOT_XML.sub("\ufffd", value)
