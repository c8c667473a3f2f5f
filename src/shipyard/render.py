"""The short human output of a verdict: one line per check, failures with their reason.

On a terminal through rich (colours); otherwise (a pipe, a hook, CI) the same lines as plain
text, without importing rich."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.results import Verdict

if TYPE_CHECKING:
    from rich.console import Console

MARKS = {"passed": "✓", "failed": "✗", "not_run": "-", "error": "!"}
COLOURS = {"passed": "green", "failed": "red", "not_run": "yellow", "error": "magenta"}
WORDS = {
    "passed": "verified",
    "failed": "not verified",
    "not_run": "not verified",
    "error": "could not check",
}
Part = tuple[str, str | None]
"""A piece of a line and its rich style (None: none)."""


def print_verdict(verdict: Verdict, project: Path, console: Console | None = None) -> None:
    lines = verdict_lines(verdict)
    if console is None and not sys.stdout.isatty():
        for parts in lines:
            print("".join(text for text, _ in parts))
        return
    from rich.markup import escape

    if console is None:
        from rich.console import Console

        console = Console(highlight=False, soft_wrap=True)
    for parts in lines:
        console.print(
            "".join(
                f"[{style}]{escape(text)}[/]" if style else escape(text) for text, style in parts
            )
        )


def verdict_lines(verdict: Verdict) -> list[list[Part]]:
    lines: list[list[Part]] = []
    for gate in verdict.gates:
        if gate.name == "contract" and gate.message.startswith("no spec"):
            lines.append([(gate.message, "yellow")])
        if not gate.checks:
            continue
        lines.append([(gate.name, "bold")])
        for check in gate.checks:
            first, *rest = (check.message or check.status).splitlines() or [""]
            label = check.id if check.kind in (gate.name, check.id) else f"{check.kind} {check.id}"
            line: list[Part] = [("  ", None), (MARKS[check.status], COLOURS[check.status])]
            line.append((f" {label}  {first}", None))
            if check.duration is not None:
                line.append((f" ({check.duration:.1f}s)", "dim"))
            lines.append(line)
            if check.status != "passed":
                lines += [[(f"      {text}", "dim")] for text in rest[:12]]
    colour = "green" if verdict.status == "passed" else "red"
    where = verdict.run_dir
    if Path(where).is_relative_to(Path.cwd()):
        where = os.path.relpath(where, Path.cwd())
    cached = verdict.extra.get("cached_from") if verdict.extra.get("cached") else None
    note = f" · cached: nothing changed since {cached}" if cached else ""
    end = f" (exit {verdict.exit_code}) in {verdict.duration:.1f}s{note} · evidence: {where}"
    lines.append([(WORDS[verdict.status], f"bold {colour}"), (end, None)])
    return lines
