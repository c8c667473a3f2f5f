"""The short human output of a verdict: one line per check, failures with their reason."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from shipyard.results import Verdict

MARKS = {
    "passed": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "not_run": "[yellow]-[/]",
    "error": "[magenta]![/]",
}
WORDS = {
    "passed": "verified",
    "failed": "not verified",
    "not_run": "not verified",
    "error": "could not check",
}


def print_verdict(verdict: Verdict, project: Path, console: Console | None = None) -> None:
    console = console or Console(highlight=False, soft_wrap=True)
    for gate in verdict.gates:
        if not gate.checks:
            continue
        console.print(f"[bold]{gate.name}[/]")
        for check in gate.checks:
            first, *rest = (check.message or check.status).splitlines() or [""]
            took = f" [dim]({check.duration:.1f}s)[/]" if check.duration is not None else ""
            label = check.id if check.kind in (gate.name, check.id) else f"{check.kind} {check.id}"
            console.print(f"  {MARKS[check.status]} {escape(label)}  {escape(first)}{took}")
            if check.status != "passed":
                for line in rest[:12]:
                    console.print(f"      [dim]{escape(line)}[/]")
    colour = "green" if verdict.status == "passed" else "red"
    where = verdict.run_dir
    if Path(where).is_relative_to(Path.cwd()):
        where = os.path.relpath(where, Path.cwd())
    cached = verdict.extra.get("cached_from") if verdict.extra.get("cached") else None
    note = f" · cached: nothing changed since {escape(str(cached))}" if cached else ""
    console.print(
        f"[bold {colour}]{WORDS[verdict.status]}[/] (exit {verdict.exit_code}) "
        f"in {verdict.duration:.1f}s{note} · evidence: {escape(where)}"
    )
