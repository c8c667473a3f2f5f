"""The report of one run, from the ledger (read-only) and the run's evidence folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.loop.state import RunState
from shipyard.report import diff as diffs
from shipyard.report.model import (
    Acceptance,
    Budget,
    Diagnosis,
    Finding,
    Limits,
    Linker,
    Review,
    VerifyView,
    acceptance_of,
    read_json,
    verify_view,
)
from shipyard.store.reads import ReadLedger, RoleCost
from shipyard.store.rows import AttemptRow, Event, RunRecord

SPEC_CAP = 20_000
TIMELINE_WIDTH = 1000


@dataclass(frozen=True, kw_only=True)
class StepView:
    id: int
    offset: float
    """Seconds since the run started."""
    duration: float
    """Until the next event."""
    kind: str
    summary: str
    ok: bool | None
    attempt: int


@dataclass(frozen=True, kw_only=True)
class AttemptView:
    n: int
    outcome: str
    detail: str
    started: float
    duration: float
    steps: tuple[StepView, ...]
    x: float
    """Where its bar starts on the timeline (0–TIMELINE_WIDTH)."""
    width: float
    marks: tuple[tuple[float, str, str], ...]
    """(x, kind, summary) of its verifies, reviews and diagnoses."""


@dataclass(frozen=True, kw_only=True)
class RunReport:
    id: str
    task: str
    status: str
    outcome: str
    reason: str | None
    branch: str
    base_sha: str
    commit: str | None
    merged: str | None
    created_at: float
    updated_at: float
    elapsed: float
    tokens: int
    cost: float
    acceptance: tuple[Acceptance, ...]
    spec_text: str
    attempts: tuple[AttemptView, ...]
    preamble: tuple[StepView, ...]
    """Events before the first attempt (planning, the spec lock, the worktree)."""
    verifies: tuple[VerifyView, ...]
    reviews: tuple[Review, ...]
    diagnoses: tuple[Diagnosis, ...]
    usage: tuple[RoleCost, ...]
    diff: diffs.Diff
    cuts: tuple[str, ...]
    last_event: int
    span: float

    @property
    def live(self) -> bool:
        return self.status == "running"

    @property
    def blocking_verify(self) -> VerifyView | None:
        """The last verify, when the run is blocked and it failed."""
        if self.status != "blocked" or not self.verifies:
            return None
        last = self.verifies[-1]
        return last if last.status != "passed" else None


def run_dir(project: Path, run_id: str) -> Path:
    return project / ".shipyard" / "runs" / run_id


def build(
    ledger: ReadLedger[RunState],
    run: RunRecord[RunState],
    project: Path,
    link: Linker,
    limits: Limits | None = None,
) -> RunReport:
    limits = limits or Limits()
    budget = Budget(thumbs=limits.thumbs)
    folder = run_dir(project, run.id)
    events = ledger.events(run.id)
    if len(events) > limits.events:
        half = limits.events // 2
        budget.cuts.append(
            f"{len(events) - limits.events:,} of {len(events):,} events left out of the"
            " timeline (the first and the last are shown)"
        )
        events = events[:half] + events[-half:]
    start = run.created_at
    end = max([run.updated_at, *((e.at or 0) for e in events)])
    span = max(end - start, 0.001)
    steps = _steps(events, end, start)
    opened = next((i for i, s in enumerate(steps) if s.kind == "attempt"), len(steps))
    preamble, steps = steps[:opened], steps[opened:]
    attempts = tuple(_attempts(ledger.attempts(run.id), steps, start, span, end))
    acceptance, spec_text = _spec(folder)
    known = {a.id: a.text for a in acceptance}
    state = run.state
    return RunReport(
        id=run.id, task=run.task, status=run.status, outcome=_outcome(run), reason=run.reason,
        branch=run.branch, base_sha=run.base_sha, commit=state.commit, merged=state.merged,
        created_at=run.created_at, updated_at=run.updated_at, elapsed=state.elapsed,
        tokens=state.usage.tokens, cost=state.usage.cost, acceptance=acceptance,
        spec_text=spec_text, attempts=attempts,
        preamble=tuple(preamble),
        verifies=tuple(_verifies(ledger, run.id, folder, link, budget)),
        reviews=tuple(_reviews(events, known)), diagnoses=tuple(_diagnoses(events)),
        usage=tuple(ledger.usage_of(run.id)),
        diff=diffs.of_trees(project, run.base_sha, state.tree), cuts=tuple(_cuts(budget)),
        last_event=max((e.id or 0 for e in events), default=0), span=span,
    )  # fmt: skip


def _outcome(run: RunRecord[RunState]) -> str:
    if run.status in ("shipped", "blocked", "paused"):
        return run.status
    return f"running ({run.state.stage})"


def _spec(folder: Path) -> tuple[tuple[Acceptance, ...], str]:
    """The locked spec: its acceptance criteria (from a verify's validated ``spec.json``, or
    the lock itself) and its text."""
    lock = folder / "spec.lock.yaml"
    try:
        text = lock.read_text(errors="replace")
    except OSError:
        text = ""
    if len(text) > SPEC_CAP:
        text = text[:SPEC_CAP] + f"\n[… {len(text) - SPEC_CAP:,} more characters]"
    for verify in sorted(folder.glob("verify-*/spec.json")):
        acceptance = acceptance_of(read_json(verify))
        if acceptance:
            return acceptance, text
    from shipyard.exceptions import InputError
    from shipyard.spec import load_spec

    try:
        spec = load_spec(lock)
    except (InputError, OSError):
        return (), text
    return tuple(Acceptance(id=a.id, text=a.text) for a in spec.acceptance), text


def _steps(events: list[Event], end: float, start: float) -> list[StepView]:
    out = []
    for i, e in enumerate(events):
        at = e.at or start
        after = events[i + 1].at if i + 1 < len(events) else end
        ok = (e.data or {}).get("ok") if e.kind == "tool" else None
        out.append(
            StepView(
                id=e.id or 0,
                offset=at - start,
                duration=max(0.0, (after or at) - at),
                kind=e.kind,
                summary=e.summary,
                ok=ok if isinstance(ok, bool) else None,
                attempt=e.attempt or 1,
            )  # fmt: skip
        )
    return out


MARKED = ("verify", "review", "diagnosis", "failed", "blocked", "pitfall")


def _attempts(
    rows: list[AttemptRow], steps: list[StepView], start: float, span: float, end: float
) -> list[AttemptView]:
    views = []
    for i, row in enumerate(rows):
        until = row.ended_at or (rows[i + 1].started_at if i + 1 < len(rows) else end)
        lo, hi = row.started_at - start, until - start
        own = [s for s in steps if s.attempt == row.n]
        scale = TIMELINE_WIDTH / span
        views.append(
            AttemptView(
                n=row.n,
                outcome=row.outcome or "open",
                detail=row.detail or "",
                started=lo,
                duration=max(0.0, hi - lo),
                steps=tuple(own),
                x=round(lo * scale, 1),
                width=round(max(3.0, (hi - lo) * scale), 1),
                marks=tuple(
                    (round(s.offset * scale, 1), s.kind, s.summary) for s in own if s.kind in MARKED
                ),
            )  # fmt: skip
        )
    return views


def _verifies(
    ledger: ReadLedger[RunState], run_id: str, folder: Path, link: Linker, budget: Budget
) -> list[VerifyView]:
    grouped: dict[str, tuple[int, list[dict[str, Any]]]] = {}
    for row in ledger.gate_rows(run_id):
        gates = grouped.setdefault(row.verify_id, (row.attempt, []))[1]
        gates.append(row.result.to_json())
    views = []
    for n, (verify_id, (attempt, gates)) in enumerate(grouped.items(), start=1):
        label = f"verify {n} (attempt {attempt})"
        view = verify_view(folder / verify_id, verify_id, label, attempt, gates, link, budget)
        views.append(view)
    return views


def _reviews(events: list[Event], known: dict[str, str]) -> list[Review]:
    out = []
    for e in events:
        if e.kind != "review":
            continue
        findings = [f for f in (e.data or {}).get("findings", []) if isinstance(f, dict)]
        out.append(
            Review(
                attempt=e.attempt or 0,
                summary=e.summary,
                approved=e.summary.startswith("approved"),
                findings=tuple(
                    Finding(
                        acceptance_id=str(f.get("acceptance_id", "")),
                        acceptance=known.get(str(f.get("acceptance_id", "")), "not in the spec"),
                        problem=str(f.get("problem", "")),
                        change=str(f.get("change", "")),
                    )  # fmt: skip
                    for f in findings
                ),
            )
        )
    return out


def _diagnoses(events: list[Event]) -> list[Diagnosis]:
    out = []
    for e in events:
        if e.kind != "diagnosis":
            continue
        data = e.data or {}
        confidence = data.get("confidence")
        out.append(
            Diagnosis(
                attempt=e.attempt or 0,
                summary=e.summary,
                root_cause=str(data.get("root_cause", "")),
                evidence=str(data.get("evidence", "")),
                fix_plan=str(data.get("fix_plan", "")),
                confidence=float(confidence) if isinstance(confidence, int | float) else None,
            )  # fmt: skip
        )
    return out


def _cuts(budget: Budget) -> list[str]:
    cuts = list(budget.cuts)
    if budget.thumbs_cut:
        cuts.append(f"{budget.thumbs_cut} screenshot(s) not embedded (linked from their check)")
    return cuts
