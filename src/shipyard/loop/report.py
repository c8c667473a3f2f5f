"""The report of a run, from the ledger alone: what was tried, what the gates said, the review,
the diagnoses and the usage. Markdown, written to ``.shipyard/runs/<id>/report.md``."""

from __future__ import annotations

from pathlib import Path

from shipyard.loop.state import RunState
from shipyard.store.ledger import Ledger, RunRecord


def build(ledger: Ledger[RunState], run: RunRecord[RunState]) -> str:
    state = run.state
    outcome = (
        state.stage if state.stage in ("shipped", "blocked") else f"{run.status} at {state.stage}"
    )
    lines = [f"# Run {run.id}: {outcome}", "", f"Task: {run.task}", ""]
    lines += [
        f"- branch `{run.branch}` from `{run.base_sha[:10]}`"
        + (f", commit `{state.commit[:10]}`" if state.commit else ""),
        f"- attempts: {state.attempt} · verifies: {state.verify_runs}"
        f" · work time: {state.elapsed:.1f}s",
        f"- usage: {state.usage.requests} requests, {state.usage.input_tokens:,} input + "
        f"{state.usage.output_tokens:,} output tokens"
        + (f", ${state.usage.cost:.4f}" if state.usage.cost else "")
        + (f" ({state.usage.unreported} did not report tokens)" if state.usage.unreported else ""),
    ]
    if state.reason:
        lines.append(f"- blocked because: {state.reason}")
    if state.merged:
        lines.append(f"- {state.merged}")
    lines += ["", "## Attempts", "", "| # | outcome | detail |", "| --- | --- | --- |"]
    for a in ledger.attempts(run.id):
        detail = (a.detail or "").replace("|", "/")[:300]
        lines.append(f"| {a.n} | {a.outcome or 'open'} | {detail} |")
    events = ledger.events(run.id)
    tried = [e for e in events if e.kind in ("submit", "failed", "diagnosis")]
    if tried:
        lines += ["", "## What was tried", ""]
        lines += [f"- attempt {e.attempt}: {e.summary}" for e in tried]
    guarded = [e for e in events if e.kind == "guard"]
    if guarded:
        lines += ["", "## Undone after the model's commands", ""]
        lines += [f"- attempt {e.attempt}: {e.summary}" for e in guarded]
    lines += ["", "## Gates", ""]
    for row in ledger.gate_rows(run.id):
        gate = row.result
        bad = [c for c in gate.checks if c.status != "passed"]
        extra = "; ".join(f"{c.id}: {_line(c.message)}" for c in bad[:3])
        head = f"- attempt {row.attempt} `{row.verify_id}` {gate.name}: {gate.status}"
        lines.append(head + (f" ({extra})" if extra else ""))
    for kind, title in (("review", "Review"), ("diagnosis", "Diagnosis")):
        of_kind = [e for e in events if e.kind == kind]
        if of_kind:
            lines += ["", f"## {title}", ""]
            for e in of_kind:
                lines.append(f"- attempt {e.attempt}: {e.summary}")
                for f in (e.data or {}).get("findings", []):
                    lines.append(f"  - [{f['acceptance_id']}] {f['problem']} → {f['change']}")
                if kind == "diagnosis" and e.data and "fix_plan" in e.data:
                    lines.append(f"  - fix plan: {e.data['fix_plan']}")
    lines += ["", "## Usage by role", ""]
    for u in ledger.usage_by_role(run.id):
        lines.append(f"- {u.role} ({u.model}): {_n(u.input_tokens)} in, {_n(u.output_tokens)} out")
    return "\n".join(lines) + "\n"


def write(ledger: Ledger[RunState], run_id: str, evidence: Path) -> Path:
    path = evidence / "report.md"
    path.write_text(build(ledger, ledger.run(run_id)))
    return path


def _line(message: str) -> str:
    return (message.strip().splitlines() or [""])[0][:120]


def _n(tokens: int | None) -> str:
    return "unreported" if tokens is None else f"{tokens:,}"
