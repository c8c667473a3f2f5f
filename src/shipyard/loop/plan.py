"""Planning: the planner writes the spec; it is shown, confirmed, then locked outside the
worktree with its hash. Gates only ever read the locked copy."""

from __future__ import annotations

from shipyard import workspace
from shipyard.agents.roles import PLANNER, Decision, Plan
from shipyard.exceptions import InputError
from shipyard.loop import learn
from shipyard.loop.ask import ask
from shipyard.loop.attempts import block
from shipyard.loop.context import RunContext
from shipyard.loop.setup import lock, runnable
from shipyard.loop.state import RunState
from shipyard.loop.step import Step
from shipyard.spec import Spec, parse_spec
from shipyard.store.knowledge import Entry, normalised

REPO_MAP_ENTRIES = 300
__all__ = ["Decision", "Plan", "plan"]


def plan(ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
    state, step = state.model_copy(deep=True), Step()
    answer = ask(
        ctx, state, step, PLANNER, brief=_brief(ctx), query=ctx.task,
        check=lambda plan_: _spec_problem(ctx, plan_),
    )  # fmt: skip
    if answer is None:
        return state, step
    decisions = [f"{d.choice} (because {d.reason})" for d in answer.decisions]
    step.event(PLANNER.event, f"spec written, {len(decisions)} decisions", decisions=decisions)
    if not ctx.session.confirm(answer.spec_yaml):
        return block(state, step, "the spec was not accepted"), step
    learn.remember(state, [_decision(ctx, d) for d in answer.decisions])
    lock(ctx, state, step, answer.spec_yaml)
    return state, step


def _decision(ctx: RunContext, d: Decision) -> Entry:
    return Entry(
        kind="decision", key=normalised(d.choice)[:120], text=f"{d.choice} (because {d.reason})",
        role=PLANNER.name, run_id=ctx.run_id, evidence=f"the spec of run {ctx.run_id}",
    )  # fmt: skip


def _spec_problem(ctx: RunContext, answer: Plan) -> str | None:
    try:
        spec: Spec = parse_spec(answer.spec_yaml, "spec_yaml")
        runnable(ctx.project, spec, ctx.config)
    except InputError as exc:
        return f"The spec does not validate: {exc}. Fix it and answer again."
    if uncovered := spec.uncovered():
        return (
            f"No check covers the acceptance ids {', '.join(uncovered)}: every acceptance id "
            "must be covered by at least one check. Answer again."
        )
    return None


def _brief(ctx: RunContext) -> str:
    commands = ctx.config.commands
    lines = [f"Task: {ctx.task}", "", "Project configuration:"]
    lines += [f"- build: {cmd}" for cmd in commands.build]
    lines.append(f"- test: {commands.test or '(none)'}")
    if ctx.config.app:
        lines.append(f"- app: {ctx.config.app.start} (ready: {ctx.config.app.ready})")
    lines += ["", "Files (git ls-files):", *_repo_map(ctx)]
    return "\n".join(lines)


def _repo_map(ctx: RunContext) -> list[str]:
    listed = workspace.git("ls-files", "-z", cwd=ctx.workdir, check=False).stdout
    names = [n for n in listed.split("\0") if n]
    shown = []
    for name in names[:REPO_MAP_ENTRIES]:
        path = ctx.workdir / name
        size = path.stat().st_size if path.is_file() else 0
        shown.append(f"  {name} ({size} bytes)")
    if len(names) > REPO_MAP_ENTRIES:
        shown.append(f"  ... and {len(names) - REPO_MAP_ENTRIES} more files")
    return shown
