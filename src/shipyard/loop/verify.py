"""The verify stage, after every submit: ``shipyard verify`` of the worktree with the locked spec
and ``--base`` the run's starting commit. Plus what only a run can check: something changed, and
the spec was left alone."""

from __future__ import annotations

import os
from pathlib import Path

from shipyard import environment, excerpt, workspace
from shipyard.exceptions import CouldNotVerify
from shipyard.loop import learn
from shipyard.loop.attempts import block, end_attempt
from shipyard.loop.context import RunContext
from shipyard.loop.fingerprint import failure
from shipyard.loop.state import Failure, RunState
from shipyard.loop.step import Step
from shipyard.results import GateResult, Verdict
from shipyard.spec import spec_hash


def verify(ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
    state, step = state.model_copy(deep=True), Step()
    locked = ctx.spec_lock.read_text() if ctx.spec_lock.is_file() else ""
    if spec_hash(locked) != ctx.ledger.run(ctx.run_id).spec_hash:
        reason = f"{ctx.spec_lock}: the locked spec was changed or removed during the run"
        return block(state, step, reason), step
    state.tree = snapshot(ctx, state.artefacts)
    changed = workspace.changed_files(ctx.workdir, ctx.base_sha, state.tree)
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
    from shipyard import bytecode
    from shipyard.verify import verify as run_gates

    bytecode.purge_all(ctx.worktree)  # the implementer's bytecode is not the source it shows
    folder = _evidence_folder(ctx, state.verify_runs + 1)
    environ = environment.scrubbed(os.environ, ctx.config)
    if ctx.config.sandbox.kind == "bwrap":
        from shipyard import bwrap

        verdict = bwrap.verify(ctx, folder, environ)
    else:
        verdict = run_gates(  # an unchanged resubmit (same tree, same inputs): from the cache
            ctx.workdir, spec=ctx.locked.spec, config=ctx.config, base=ctx.base_sha,
            evidence=folder, environ=environ, tree=state.tree,
        )  # fmt: skip
    state.artefacts += built_by_gates(ctx, state)
    state.verify_runs += 1
    state.last_verify = str(folder)
    step.gates = [(verdict.run_id, g.to_json()) for g in verdict.gates]
    step.event("verify", f"verify {state.verify_runs}: {_summary(verdict)}", dir=str(folder))
    if verdict.status == "error":
        raise CouldNotVerify(f"verify could not check: {_errors(verdict)} (evidence: {folder})")
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


def snapshot(ctx: RunContext, artefacts: list[str]) -> str:
    """The project folder as submitted, as a git tree: the starting commit plus every change,
    without what earlier gates built (``workspace.snapshot``)."""
    return workspace.snapshot(ctx.worktree, ctx.workdir, ctx.base_sha, artefacts, ctx.evidence)


def built_by_gates(ctx: RunContext, state: RunState) -> list[str]:
    """Files the gates created in the worktree (left out of later submissions; a file they
    changed stays in, since leaving it out would ship its deletion)."""
    assert state.tree is not None
    after = snapshot(ctx, state.artefacts)
    added = workspace.added_files(ctx.worktree, state.tree, after)
    return [n for n in added if n not in state.artefacts]


def _spec_copies(ctx: RunContext, changed: list[str]) -> list[str]:
    """The spec file, when it lives in the project and the run touched it."""
    names = {"spec.yaml"}
    if ctx.options.spec_file:
        names.add(ctx.options.spec_file)
    return [n for n in changed if n in names]


def _evidence_folder(ctx: RunContext, n: int) -> Path:
    folder = ctx.evidence / f"verify-{n}"
    again = 1
    while folder.exists():  # a verify cut short by a crash left its folder: keep it, use another
        again += 1
        folder = ctx.evidence / f"verify-{n}.{again}"
    return folder


def _errors(verdict: Verdict) -> str:
    bad = [(g.name, c) for g in verdict.gates for c in g.checks if c.status == "error"]
    return "; ".join(
        f"{gate} {c.id}: {excerpt.first_and_decisive(c.message or c.status)}" for gate, c in bad
    )


def _summary(verdict: Verdict) -> str:
    parts = []
    for gate in verdict.gates:
        bad = [c for c in gate.checks if c.status != "passed"]
        bad = [c for c in bad if c.status != "not_run"] or bad  # what failed, not what it spared
        mark = "passed" if not bad else f"{gate.status}: " + ", ".join(c.id for c in bad[:4])
        parts.append(f"{gate.name} {mark}")
    cached = f", cached from {verdict.extra['cached_from']}" if verdict.extra.get("cached") else ""
    return f"{verdict.status} ({'; '.join(parts)}){cached}"


def last_gates(ctx: RunContext, state: RunState) -> list[GateResult]:
    """The gates of the run's last verify."""
    if state.last_verify is None:
        return []
    return ctx.ledger.verify_gates(ctx.run_id, Path(state.last_verify).name)
