"""``shipyard verify --format github``: workflow-command annotations and a step summary.

Annotations follow GitHub's workflow-command syntax, ``::error file=F,line=N,title=T::MESSAGE``:
in the message ``%``, CR and LF are percent-encoded; in property values ``:`` and ``,`` too.
The summary is Markdown appended to the file named by ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import html
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from shipyard.exceptions import InputError, ShipyardError
from shipyard.places import Places
from shipyard.results import CheckResult, GateResult, Verdict

ANNOTATED = ("failed", "error")
MESSAGE_LINES = 20
MESSAGE_CHARS = 4000
CELL_CHARS = 300
SUMMARY_ROWS = 200
ICONS = {"passed": "✅", "failed": "❌", "not_run": "⏭️", "error": "⚠️"}
WORDS = {
    "passed": "verified",
    "failed": "not verified",
    "not_run": "not verified",
    "error": "could not check",
}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, properties: Mapping[str, str | None]) -> str:
    """One workflow command line; properties whose value is None are left out."""
    props = ",".join(f"{k}={escape_property(v)}" for k, v in properties.items() if v is not None)
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def label(gate: GateResult, check: CheckResult) -> str:
    return check.id if check.kind in (gate.name, check.id) else f"{check.kind} {check.id}"


def check_annotations(verdict: Verdict, places: Places, root: Path) -> list[str]:
    """An ``::error`` for each failed check and each one that could not be checked."""
    out = []
    for gate in verdict.gates:
        for check in gate.checks:
            if check.status not in ANNOTATED:
                continue
            place = places.of(check)
            file = relative(place.file, root) if place is not None else None
            line = str(place.line) if place is not None and place.line and file else None
            title = f"shipyard {gate.name}: {label(gate, check)}"
            if check.status == "error":
                title += " (could not check)"
            message = _capped(check.message or check.status)
            if check.evidence:
                message += f"\nevidence: {Path(verdict.run_dir) / check.evidence}"
            out.append(command("error", message, {"file": file, "line": line, "title": title}))
    return out


def error_annotation(exc: ShipyardError, root: Path) -> str:
    """Bad input or an environment problem: an annotation at the file and line it names."""
    kind = "bad input" if exc.exit_code == 2 else "could not check"
    file = line = None
    if isinstance(exc, InputError) and exc.file:
        file = relative(Path(exc.file), root)
        line = str(exc.line) if exc.line and file else None
    return command(
        "error", _capped(str(exc)), {"file": file, "line": line, "title": f"shipyard: {kind}"}
    )


def relative(path: Path, root: Path) -> str | None:
    """``path`` from the repository root, or None when it lies outside it."""
    path = path if path.is_absolute() else Path.cwd() / path
    try:
        return Path(os.path.normpath(path)).relative_to(os.path.normpath(root)).as_posix()
    except ValueError:
        return None


def summary(verdict: Verdict) -> str:
    """Markdown: the verdict, a table of gates, a table of checks."""
    checks = [(g, c) for g in verdict.gates for c in g.checks]
    counts = {s: sum(c.status == s for _, c in checks) for s in ICONS}
    said = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items() if n)
    lines = [
        f"## {ICONS[verdict.status]} Shipyard: {WORDS[verdict.status]} (exit {verdict.exit_code})",
        "",
        f"{len(checks)} checks: {said or 'none'} · {verdict.duration:.1f}s · "
        f"evidence: {_cell(verdict.run_dir)}",
        "",
        "| gate | status | checks | time |",
        "| --- | --- | --- | --- |",
    ]
    for gate in verdict.gates:
        lines.append(
            f"| {gate.name} | {ICONS[gate.status]} {gate.status} | {len(gate.checks)} "
            f"| {gate.duration:.1f}s |"
        )
    lines += ["", "| | gate | check | result |", "| --- | --- | --- | --- |"]
    for gate, check in checks[:SUMMARY_ROWS]:
        first = (check.message or check.status).splitlines() or [""]
        lines.append(
            f"| {ICONS[check.status]} | {gate.name} | {_cell(label(gate, check))} "
            f"| {_cell(first[0])} |"
        )
    if len(checks) > SUMMARY_ROWS:
        lines.append(f"\n{len(checks) - SUMMARY_ROWS} more checks in verdict.json")
    return "\n".join(lines) + "\n"


def error_summary(exc: ShipyardError) -> str:
    kind = "bad input" if exc.exit_code == 2 else "could not check"
    return f"## ⚠️ Shipyard: {kind} (exit {exc.exit_code})\n\n{_cell(str(exc))}\n"


def append_summary(text: str, environ: Mapping[str, str]) -> None:
    """Append to ``$GITHUB_STEP_SUMMARY`` when it is set (a file the runner owns)."""
    target = environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")


def set_outputs(values: Mapping[str, str], environ: Mapping[str, str]) -> None:
    """Step outputs (``verdict``, ``exit-code``, ``run-dir``) into ``$GITHUB_OUTPUT`` when set."""
    target = environ.get("GITHUB_OUTPUT")
    if not target:
        return
    with open(target, "a", encoding="utf-8") as fh:
        for name, value in values.items():
            delimiter = f"shipyard_{secrets.token_hex(8)}"
            fh.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def _capped(text: str) -> str:
    lines = text.splitlines()
    out = "\n".join(lines[:MESSAGE_LINES])
    if len(lines) > MESSAGE_LINES:
        out += f"\n… {len(lines) - MESSAGE_LINES} more lines"
    return out if len(out) <= MESSAGE_CHARS else out[: MESSAGE_CHARS - 1] + "…"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: no markup, no pipes, one line."""
    text = " ".join(text.split())
    text = text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
    return html.escape(text, quote=False).replace("|", "\\|")
