"""The gates, after every submit: ``shipyard verify`` of the worktree with the locked spec and
``--base`` the run's starting commit. Plus what only a run can check: something changed, and the
spec was left alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

from shipyard import workspace
from shipyard.agents.sandbox import without_secrets
from shipyard.loop import learn
from shipyard.loop.attempts import block, end_attempt
from shipyard.loop.context import RunContext
from shipyard.loop.fingerprint import failure
from shipyard.loop.plan import spec_hash
from shipyard.loop.state import Failure, RunState
from shipyard.results import Verdict
from shipyard.store.ledger import Step


def check(ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
    state, step = state.model_copy(deep=True), Step()
    locked = ctx.spec_lock.read_text() if ctx.spec_lock.is_file() else ""
    if spec_hash(locked) != ctx.ledger.run(ctx.run_id).spec_hash:
        reason = f"{ctx.spec_lock}: the locked spec was changed or removed during the run"
        return block(state, step, reason), step
    state.tree = snapshot(ctx, state.artefacts)
    changed = changed_files(ctx, state.tree)
    problems: list[Failure] = []
    if not changed:
        problems.append(
            failure("run", "changes", "submitted with no change to the worktree", "no_change")
        )
    for name in _spec_copies(ctx, changed):
        message = f"{name}: the spec is locked; the implementer changed it"
        problems.append(failure("run", "spec", message, "spec_edited"))
    if problems:
        return end_attempt(ctx, state, step, problems, "refused"), step
    from shipyard.verify import verify

    folder = _evidence_folder(ctx, state.verify_runs + 1)
    verdict = verify(  # an unchanged resubmit (same tree, same inputs) answers from the cache
        ctx.workdir, spec=ctx.spec, config=ctx.config, base=ctx.base_sha, evidence=folder,
        environ=without_secrets(os.environ), tree=state.tree,
    )  # fmt: skip
    state.artefacts += built_by_gates(ctx, state)
    state.verify_runs += 1
    state.last_verify = str(folder)
    step.gates = [(verdict.run_id, g.to_json()) for g in verdict.gates]
    step.event("verify", f"verify {state.verify_runs}: {_summary(verdict)}", dir=str(folder))
    learn.commands_that_worked(ctx, state, verdict, step)
    if verdict.status == "passed":
        learn.pitfalls_fixed(ctx, state, step)
        state.stage = "review"
        return state, step
    failures = [
        failure(g.name, c.id, c.message or c.status)
        for g in verdict.gates
        for c in g.checks
        if c.status in ("failed", "error")
    ]
    if not failures:  # not_run only: nothing ran that could say why
        failures = [failure("verify", "not_run", "checks were not run", "not_run")]
    return end_attempt(ctx, state, step, failures, "failed"), step


IGNORED = "__pycache__/\n*.py[co]\n.pytest_cache/\n.shipyard/\n"
"""Never part of a submission, whatever the project's .gitignore says."""


def snapshot(ctx: RunContext, artefacts: list[str]) -> str:
    """The project folder as submitted, as a git tree: the starting commit plus every change
    under the project folder (untracked files included), without junk and without what earlier
    gates built. A private index, so nothing the implementer staged or committed counts."""
    ignore = ctx.evidence / "snapshot.ignore"
    if not ignore.exists():
        ignore.write_text(IGNORED)
    index = {"GIT_INDEX_FILE": str(ctx.evidence / "snapshot.index")}
    prefix = workspace.git("rev-parse", "--show-prefix", cwd=ctx.workdir).stdout.strip() or "."
    workspace.git("read-tree", ctx.base_sha, cwd=ctx.worktree, env=index)
    workspace.git(
        "-c", f"core.excludesFile={ignore}", "add", "-A", "--", prefix, cwd=ctx.worktree, env=index
    )
    for start in range(0, len(artefacts), 200):
        workspace.git(
            "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *artefacts[start : start + 200],
            cwd=ctx.worktree, env=index,
        )  # fmt: skip
    return workspace.git("write-tree", cwd=ctx.worktree, env=index).stdout.strip()


def built_by_gates(ctx: RunContext, state: RunState) -> list[str]:
    """Files the gates created in the worktree (left out of later submissions; a file they
    changed stays in, since leaving it out would ship its deletion)."""
    assert state.tree is not None
    after = snapshot(ctx, state.artefacts)
    out = workspace.git(
        "diff",
        "--name-only",
        "--no-renames",
        "--diff-filter=A",
        "-z",
        state.tree,
        after,
        cwd=ctx.worktree,
    ).stdout
    return [n for n in out.split("\0") if n and n not in state.artefacts]


def changed_files(ctx: RunContext, tree: str) -> list[str]:
    """Files the submission changed, added or deleted, relative to the project folder."""
    out = workspace.git(
        "diff", "--name-only", "--no-renames", "--relative", "-z", ctx.base_sha, tree,
        cwd=ctx.workdir,
    ).stdout  # fmt: skip
    return [n for n in out.split("\0") if n]


def diff(ctx: RunContext, tree: str, limit: int = 60_000) -> str:
    text = workspace.git("diff", "--relative", ctx.base_sha, tree, cwd=ctx.workdir).stdout
    if len(text) > limit:
        text = text[:limit] + f"\n[... {len(text) - limit} more characters of diff]"
    return text


def _spec_copies(ctx: RunContext, changed: list[str]) -> list[str]:
    """The spec file, when it lives in the project and the run touched it."""
    names = {"spec.yaml"}
    if ctx.options.spec_file:
        names.add(ctx.options.spec_file)
    return [n for n in changed if n in names]


def _evidence_folder(ctx: RunContext, n: int):
    folder = ctx.evidence / f"verify-{n}"
    again = 1
    while folder.exists():  # a verify cut short by a crash left its folder: keep it, use another
        again += 1
        folder = ctx.evidence / f"verify-{n}.{again}"
    return folder


def _summary(verdict: Verdict) -> str:
    parts = []
    for gate in verdict.gates:
        bad = [c for c in gate.checks if c.status != "passed"]
        mark = "passed" if not bad else f"{gate.status}: " + ", ".join(c.id for c in bad[:4])
        parts.append(f"{gate.name} {mark}")
    cached = f", cached from {verdict.extra['cached_from']}" if verdict.extra.get("cached") else ""
    return f"{verdict.status} ({'; '.join(parts)}){cached}"


def last_gates(ctx: RunContext, state: RunState) -> list[dict]:
    """The gates (GateResult JSON) of the run's last verify."""
    if state.last_verify is None:
        return []
    verify_id = Path(state.last_verify).name
    rows = ctx.ledger.gate_rows(ctx.run_id)
    return [json.loads(r["data"]) for r in rows if r["verify_id"] == verify_id]


def evidence_text(verdict_gates: list[dict], limit: int = 8000) -> str:
    lines = []
    for gate in verdict_gates:
        lines.append(f"{gate['name']}: {gate['status']}")
        for c in gate["checks"]:
            lines.append(f"  {c['status']:7} {c['kind']} {c['id']}: {c['message'][:300]}")
    return "\n".join(lines)[:limit]
