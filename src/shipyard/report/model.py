"""What a report shows, gathered from the ledger and the evidence folders: typed, frozen values
that the templates render. Links go through a :data:`Linker`, so the same report links its
files relative to an output file or to the dashboard's ``/files`` route."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.report import evidence as ev
from shipyard.report.diff import Diff

Linker = Callable[[Path], str]
"""An evidence file (absolute) → the href the page uses for it."""

MAX_THUMBS = 48
MAX_EVENTS = 3_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True, kw_only=True)
class Limits:
    thumbs: int = MAX_THUMBS
    events: int = MAX_EVENTS


@dataclass(kw_only=True)
class Budget:
    """What is left to embed; what was cut is said in ``cuts``."""

    thumbs: int
    cuts: list[str] = field(default_factory=list)
    thumbs_cut: int = 0


@dataclass(frozen=True, kw_only=True)
class CheckView:
    id: str
    kind: str
    status: str
    message: str
    covers: tuple[str, ...]
    duration: float | None
    evidence: str | None
    evidence_href: str | None
    thumbs: tuple[ev.Thumb, ...] = ()
    excerpt: ev.Excerpt | None = None
    exchange: ev.Exchange | None = None


@dataclass(frozen=True, kw_only=True)
class GateView:
    name: str
    status: str
    duration: float
    message: str
    checks: tuple[CheckView, ...]


@dataclass(frozen=True, kw_only=True)
class VerifyView:
    id: str
    label: str
    attempt: int | None
    status: str
    gates: tuple[GateView, ...]


@dataclass(frozen=True, kw_only=True)
class Finding:
    acceptance_id: str
    acceptance: str
    problem: str
    change: str


@dataclass(frozen=True, kw_only=True)
class Review:
    attempt: int
    summary: str
    approved: bool
    findings: tuple[Finding, ...]


@dataclass(frozen=True, kw_only=True)
class Diagnosis:
    attempt: int
    summary: str
    root_cause: str
    evidence: str
    fix_plan: str
    confidence: float | None


@dataclass(frozen=True, kw_only=True)
class Acceptance:
    id: str
    text: str


def status_of(statuses: list[str]) -> str:
    for status in ("failed", "error", "not_run"):
        if status in statuses:
            return status
    return "passed"


def verify_view(
    folder: Path, verify_id: str, label: str, attempt: int | None, gates: list[dict[str, Any]],
    link: Linker, budget: Budget,
) -> VerifyView:  # fmt: skip
    views = tuple(_gate(folder, g, link, budget) for g in gates)
    return VerifyView(
        id=verify_id, label=label, attempt=attempt,
        status=status_of([g.status for g in views]), gates=views,
    )  # fmt: skip


def _gate(folder: Path, gate: dict[str, Any], link: Linker, budget: Budget) -> GateView:
    checks = tuple(_check(folder, c, link, budget) for c in gate.get("checks", []))
    return GateView(
        name=str(gate.get("name", "?")), status=str(gate.get("status", "error")),
        duration=float(gate.get("duration") or 0), message=str(gate.get("message", "")),
        checks=checks,
    )  # fmt: skip


def _check(folder: Path, check: dict[str, Any], link: Linker, budget: Budget) -> CheckView:
    rel = check.get("evidence")
    path = ev.inside(folder, rel) if isinstance(rel, str) else None
    status = str(check.get("status", "error"))
    thumbs: tuple[ev.Thumb, ...] = ()
    excerpt = exchange = None
    if path is not None:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            thumbs = _thumbs(folder, path, link, budget)
        elif path.suffix == ".json" and check.get("kind") == "http":
            exchange = ev.exchange(path)
        elif status != "passed" and path.suffix in (".log", ".txt", ".xml", ".json"):
            excerpt = ev.excerpt(path, link(path), str(rel))
    duration = check.get("duration")
    return CheckView(
        id=str(check.get("id", "?")), kind=str(check.get("kind", "?")), status=status,
        message=str(check.get("message", "")), covers=tuple(map(str, check.get("covers", []))),
        duration=float(duration) if isinstance(duration, int | float) else None,
        evidence=rel if isinstance(rel, str) else None,
        evidence_href=link(path) if path is not None else None,
        thumbs=thumbs, excerpt=excerpt, exchange=exchange,
    )  # fmt: skip


def _thumbs(folder: Path, image: Path, link: Linker, budget: Budget) -> tuple[ev.Thumb, ...]:
    """The check's image first, then the other screenshots of its folder."""
    others = sorted(p for p in image.parent.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    images = [image] + [p for p in others if p != image]
    out = []
    for path in images:
        if budget.thumbs <= 0:
            budget.thumbs_cut += 1
            continue
        thumb = ev.thumbnail(path, link(path))
        if thumb is not None:
            budget.thumbs -= 1
            out.append(thumb)
    return tuple(out)


def load_gates(folder: Path) -> list[dict[str, Any]]:
    """The gates of a verify folder, from its ``verdict.json``."""
    doc = read_json(folder / "verdict.json")
    gates = doc.get("gates") if isinstance(doc, dict) else None
    return [g for g in gates if isinstance(g, dict)] if isinstance(gates, list) else []


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def acceptance_of(spec: Any) -> tuple[Acceptance, ...]:
    items = spec.get("acceptance") if isinstance(spec, dict) else None
    if not isinstance(items, list):
        return ()
    return tuple(
        Acceptance(id=str(a.get("id", "")), text=str(a.get("text", "")))
        for a in items
        if isinstance(a, dict)
    )


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """A standalone ``shipyard verify``: its folder's verdict and spec."""

    id: str
    status: str
    duration: float
    task: str
    acceptance: tuple[Acceptance, ...]
    spec: Any
    verify: VerifyView
    cuts: tuple[str, ...]
    diff: Diff | None = None


def verify_report(folder: Path, link: Linker, limits: Limits | None = None) -> VerifyReport:
    limits = limits or Limits()
    budget = Budget(thumbs=limits.thumbs)
    verdict = read_json(folder / "verdict.json")
    verdict = verdict if isinstance(verdict, dict) else {}
    spec = read_json(folder / "spec.json")
    view = verify_view(folder, folder.name, folder.name, None, load_gates(folder), link, budget)
    cuts = _cut_notes(budget)
    if not verdict:
        cuts.insert(0, "this verify has no verdict.json: it was cut short")
    return VerifyReport(
        id=folder.name, status=str(verdict.get("verdict", "error")),
        duration=float(verdict.get("duration") or 0),
        task=str(spec.get("task", "")) if isinstance(spec, dict) else "",
        acceptance=acceptance_of(spec), spec=spec, verify=view, cuts=tuple(cuts),
    )  # fmt: skip


def _cut_notes(budget: Budget) -> list[str]:
    cuts = list(budget.cuts)
    if budget.thumbs_cut:
        cuts.append(f"{budget.thumbs_cut} screenshot(s) not embedded (linked from their check)")
    return cuts
