"""Planning: the planner writes the spec; it is shown, confirmed, then locked outside the
worktree with its hash. Gates only ever read the locked copy."""

from __future__ import annotations

from pydantic import BaseModel, Field

from shipyard import workspace
from shipyard.agents import prompts
from shipyard.agents.chat import Conversation, NoValidAnswer, structured
from shipyard.exceptions import InputError
from shipyard.loop import learn
from shipyard.loop.attempts import block
from shipyard.loop.context import RunContext
from shipyard.loop.setup import lock, runnable
from shipyard.loop.state import RunState
from shipyard.loop.step import Step
from shipyard.loop.usage import add_usage
from shipyard.spec import Spec, parse_spec
from shipyard.store.knowledge import Entry, normalised

REPO_MAP_ENTRIES = 300


class Decision(BaseModel):
    choice: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class Plan(BaseModel):
    """The spec as YAML text, and the design decisions behind it."""

    spec_yaml: str = Field(min_length=1)
    decisions: list[Decision] = Field(default_factory=list)


def plan(ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
    state, step = state.model_copy(deep=True), Step()
    conv = Conversation(
        "planner", ctx.models["planner"], ctx.config.models, on_retry=ctx.retry_notice
    )
    known = learn.tell(ctx, step, "planner", ctx.task)
    conv.start(prompts.with_knowledge(prompts.PLANNER, known), _brief(ctx))
    try:
        answer, answers = structured(
            conv, Plan, retries=ctx.config.models.output_retries,
            check=lambda plan_: _spec_problem(ctx, plan_),
        )  # fmt: skip
    except NoValidAnswer as exc:
        step.messages = conv.take_unsaved()
        add_usage(state, step, "planner", conv.model, exc.answers)
        return block(state, step, f"the planner wrote no valid spec: {exc}"), step
    step.messages = conv.take_unsaved()
    add_usage(state, step, "planner", conv.model, answers)
    decisions = [f"{d.choice} (because {d.reason})" for d in answer.decisions]
    step.event("plan", f"spec written, {len(decisions)} decisions", decisions=decisions)
    if not ctx.confirm(answer.spec_yaml):
        return block(state, step, "the spec was not accepted"), step
    learn.remember(state, [_decision(ctx, d) for d in answer.decisions])
    lock(ctx, state, step, answer.spec_yaml)
    return state, step


def _decision(ctx: RunContext, d: Decision) -> Entry:
    return Entry(
        kind="decision", key=normalised(d.choice)[:120], text=f"{d.choice} (because {d.reason})",
        role="planner", run_id=ctx.run_id, evidence=f"the spec of run {ctx.run_id}",
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
