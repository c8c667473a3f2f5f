"""What the agent and the user are told: short, actionable, bounded."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from shipyard.hooks.session import Record

MAX_REASON = 2000
MAX_FAILURES = 6
DECISIVE = re.compile(r"(Error|error:|assert|FAILED|^E\s|Traceback|expected|not found)")
NUMBERS = re.compile(r"\d+(\.\d+)?")


def failing(verdict: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**c, "gate": g["name"]}
        for g in verdict.get("gates", [])
        for c in g.get("checks", [])
        if c.get("status") in ("failed", "error")
    ]


def fingerprint(verdict: dict[str, Any]) -> str:
    """The same checks failing for the same first reason (numbers aside): the same failure."""
    parts = sorted(
        f"{c['gate']}|{c['id']}|{NUMBERS.sub('#', (c.get('message') or '').split(chr(10))[0])}"
        for c in failing(verdict)
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def decisive(message: str) -> str:
    """The first line, and the first later line that says what went wrong."""
    first, *rest = (message or "").splitlines() or [""]
    extra = next((line.strip() for line in rest if DECISIVE.search(line)), None)
    text = f"{first} | {extra}" if extra and extra not in first else first
    return text[:300]


def _where(verdict: dict[str, Any], check: dict[str, Any], project: Path) -> str:
    run_dir = Path(str(verdict.get("run_dir", "")))
    path = run_dir / check["evidence"] if check.get("evidence") else run_dir
    try:
        return os.path.relpath(path, project)
    except ValueError:
        return str(path)


def failures_text(verdict: dict[str, Any], project: Path) -> str:
    bad = failing(verdict)
    lines = [
        f"- [{c['gate']}] {_label(c)}: {decisive(c.get('message', ''))} "
        f"(evidence: {_where(verdict, c, project)})"
        for c in bad[:MAX_FAILURES]
    ]
    if len(bad) > MAX_FAILURES:
        lines.append(f"- and {len(bad) - MAX_FAILURES} more (shipyard verify shows them all)")
    if not bad:
        lines.append("- checks were not run (a gate they depend on did not pass)")
    return "\n".join(lines)


def summary(verdict: dict[str, Any]) -> str:
    bad = failing(verdict)
    return ", ".join(f"{c['gate']} {c['id']}" for c in bad[:4]) or "checks not run"


def block_reason(verdict: dict[str, Any], project: Path, record: Record, max_blocks: int) -> str:
    n = len(failing(verdict))
    head = (
        f"Shipyard verify: not verified ({n} check{'s' if n != 1 else ''} failed). "
        "Do not stop yet: fix these, then finish."
    )
    tail = f"Block {record.blocks} of {max_blocks}. Check yourself with: shipyard verify"
    return _bounded(f"{head}\n{failures_text(verdict, project)}\n{tail}")


def diagnosis_brief(
    verdict: dict[str, Any], project: Path, record: Record, max_blocks: int, tried: list[str]
) -> str:
    times = record.seen.get(fingerprint(verdict), 0)
    head = (
        f"Shipyard verify: the same failure again ({times} times; block {record.blocks} of "
        f"{max_blocks}). Stop guessing: find the cause before you change more code."
    )
    steps = (
        "Next: read the evidence files above; reproduce the failure with the project's own "
        "command; state its root cause in one sentence, with the line that proves it; then "
        "make the one change that addresses that cause."
    )
    what = "\n".join(tried) or "- (no earlier attempt recorded)"
    text = f"{head}\nStill failing:\n{failures_text(verdict, project)}\nWhat was tried:\n{what}"
    return _bounded(f"{text}\n{steps}")


def gave_up(verdict: dict[str, Any], project: Path, max_blocks: int) -> str:
    return _bounded(
        f"shipyard: the stop was allowed after {max_blocks} blocks, but the change does NOT "
        f"verify. Still failing:\n{failures_text(verdict, project)}"
    )


def _bounded(text: str) -> str:
    if len(text) <= MAX_REASON:
        return text
    return text[: MAX_REASON - 40].rstrip() + "\n[… cut; shipyard verify shows all]"


def _label(check: dict[str, Any]) -> str:
    same = check["kind"] in (check["id"], check["gate"])
    return str(check["id"]) if same else f"{check['kind']} {check['id']}"
