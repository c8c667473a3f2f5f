"""The delivery loop: ``shipyard run`` and ``shipyard resume``.

    plan ─► implement ─► verify ─► review ─► ship
               ▲            │         │
               └─ diagnose ◄┴─────────┘   (a failure twice → diagnosis; three times → blocked)

Each stage takes the state and returns the next one with what it did (a ``Step``); the step and
the new state are written in one transaction before the next stage starts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from shipyard import workspace
from shipyard.config import Config, load_config
from shipyard.evidence import new_run_id, state_dir
from shipyard.exceptions import ShipyardError, SpecError
from shipyard.loop.context import RunContext, RunOptions
from shipyard.loop.state import FINAL, RunState
from shipyard.spec import parse_spec
from shipyard.store.ledger import Event, Ledger, Step

RUN_VARIABLE = "SHIPYARD_RUN_ID"
"""Set in the environment of everything a run starts, so that a resume can find what a crashed
process left running."""


def _stages() -> dict[str, Callable[[RunContext, RunState], tuple[RunState, Step]]]:
    from shipyard.loop.diagnose import diagnose
    from shipyard.loop.gate import check
    from shipyard.loop.implement import implement
    from shipyard.loop.plan import plan
    from shipyard.loop.review import review
    from shipyard.loop.ship import ship

    return {
        "plan": plan, "implement": implement, "verify": check,
        "review": review, "diagnose": diagnose, "ship": ship,
    }  # fmt: skip


def drive(ctx: RunContext, state: RunState) -> RunState:
    stages = _stages()
    clock = time.monotonic()
    while state.stage not in FINAL:
        if (limit := budget_hit(ctx.config, state, time.monotonic() - clock)) is not None:
            new_state, step = state.model_copy(deep=True), Step()
            new_state.stage, new_state.reason = "blocked", limit
            step.event("blocked", limit)
        else:
            new_state, step = stages[state.stage](ctx, state)
        now = time.monotonic()
        new_state.elapsed += now - clock
        clock = now
        ctx.ledger.commit(ctx.run_id, new_state, step, attempt=state.attempt)
        ctx.say_events(step)
        state = new_state
    return state


def budget_hit(config: Config, state: RunState, unsaved_seconds: float) -> str | None:
    budget = config.budget
    if state.usage.tokens >= budget.tokens:
        return f"budget: {state.usage.tokens:,} tokens used (limit {budget.tokens:,})"
    if budget.cost is not None and state.usage.cost >= budget.cost:
        return f"budget: ${state.usage.cost:.2f} spent (limit ${budget.cost:.2f})"
    if state.elapsed + unsaved_seconds >= budget.wall:
        return f"budget: {state.elapsed + unsaved_seconds:.0f}s of work (limit {budget.wall:.0f}s)"
    return None


# -- starting and resuming -----------------------------------------------------------------------


def start_run(
    project: Path,
    task: str,
    options: RunOptions,
    *,
    say: Callable[[Event], None],
    confirm: Callable[[str], bool],
) -> RunContext:
    """Check everything that can be checked before any work (config, spec, models, git), then
    create the run, its branch and worktree. The caller drives it."""
    project = project.resolve()
    config = load_config(project)
    spec_text = _read_spec(options.spec_file) if options.spec_file else None
    roles = _roles(needs_planner=spec_text is None)
    models = _models(config, options, project, roles)
    base_sha = workspace.resolve(project, "HEAD")
    prefix = workspace.git("rev-parse", "--show-prefix", cwd=project).stdout.strip()
    run_id = new_run_id("r")
    evidence = state_dir(project) / "runs" / run_id
    evidence.mkdir(parents=True)
    (evidence / "config.json").write_text(config.model_dump_json(indent=2))
    tree = state_dir(project) / "worktrees" / run_id
    ledger = Ledger.open(project)
    options = RunOptions(**{**options.to_json(), "spec_file": _inside(project, options.spec_file)})
    ctx = RunContext(
        run_id=run_id, task=task, project=project, worktree=tree, workdir=tree / prefix,
        base_sha=base_sha, branch=f"shipyard/{run_id}", config=config, options=options,
        ledger=ledger, evidence=evidence, models=models, say=say, confirm=confirm,
    )  # fmt: skip
    state = RunState()
    ledger.create_run(
        run_id=run_id, task=task, base_sha=base_sha, branch=ctx.branch, worktree=str(tree),
        options=options.to_json(), state=state,
    )  # fmt: skip
    where = f"{run_id} · branch {ctx.branch} · worktree {_shown(tree)}"
    say(Event(kind="run", summary=f"{where}\n          task: {task}"))
    os.environ[RUN_VARIABLE] = run_id
    ensure_worktree(ctx)
    if spec_text is not None:
        from shipyard.loop.plan import lock

        step = Step()
        lock(ctx, state, step, spec_text)
        ledger.commit(run_id, state, step)
        ctx.say_events(step)
    return ctx


def resume_run(
    project: Path, run: str, *, say: Callable[[Event], None]
) -> tuple[RunContext, RunState]:
    """Rebuild a run from the ledger; kill what a crashed process left running."""
    from shipyard import process
    from shipyard.loop.plan import spec_hash

    project = project.resolve()
    ledger = Ledger.open(project)
    record = ledger.run(run)
    evidence = state_dir(project) / "runs" / record.id
    config = Config.model_validate_json((evidence / "config.json").read_text())
    options = RunOptions(**record.options)
    prefix = workspace.git("rev-parse", "--show-prefix", cwd=project).stdout.strip()
    tree = Path(record.worktree)
    ctx = RunContext(
        run_id=record.id, task=record.task, project=project, worktree=tree,
        workdir=tree / prefix, base_sha=record.base_sha, branch=record.branch, config=config,
        options=options, ledger=ledger, evidence=evidence, say=say,
    )  # fmt: skip
    if record.state.stage in FINAL:
        return ctx, record.state
    ledger.claim(record.id)
    process.kill_tagged(RUN_VARIABLE, record.id)
    os.environ[RUN_VARIABLE] = record.id
    if ctx.spec_lock.is_file():
        text = ctx.spec_lock.read_text()
        if spec_hash(text) != record.spec_hash:
            raise SpecError(
                "the locked spec was changed since the run started", file=str(ctx.spec_lock)
            )
        ctx.spec_text, ctx.spec = text, parse_spec(text, str(ctx.spec_lock))
    stage_roles = _roles(needs_planner=record.state.stage == "plan")
    ctx.models = _models(config, options, project, stage_roles)
    _continue_scripts(ctx)
    ensure_worktree(ctx)
    step = _resumed(record.state)
    ledger.commit(record.id, record.state, step)
    ctx.say_events(step)
    return ctx, record.state


def _continue_scripts(ctx: RunContext) -> None:
    """Scripted models pick up after the replies the crashed process had given."""
    from pydantic_ai.messages import ModelMessagesTypeAdapter

    from shipyard.agents.scripted import ScriptedModel

    for role, model in ctx.models.items():
        if isinstance(model, ScriptedModel):
            rows = ctx.ledger.messages_of_role(ctx.run_id, role)
            model.continue_after(
                [m for r in rows for m in ModelMessagesTypeAdapter.validate_json(r)]
            )


def _resumed(state: RunState) -> Step:
    step = Step()
    step.event("resume", f"resumed at {state.stage}, attempt {state.attempt}, step {state.step}")
    return step


def ensure_worktree(ctx: RunContext) -> None:
    """The run's worktree on its branch; made again if a crash came before it existed."""
    if (ctx.worktree / ".git").exists():
        return
    repo = ctx.project
    workspace.git("worktree", "prune", cwd=repo, check=False)
    has_branch = workspace.git(
        "rev-parse", "--verify", "--quiet", ctx.branch, cwd=repo, check=False
    )
    if has_branch.returncode == 0:
        workspace.git("worktree", "add", "--quiet", str(ctx.worktree), ctx.branch, cwd=repo)
    else:
        workspace.git(
            "worktree",
            "add",
            "--quiet",
            "-b",
            ctx.branch,
            str(ctx.worktree),
            ctx.base_sha,
            cwd=repo,
        )


def remove_worktree(ctx: RunContext) -> None:
    workspace.git("worktree", "remove", "--force", str(ctx.worktree), cwd=ctx.project, check=False)
    workspace.git("worktree", "prune", cwd=ctx.project, check=False)


def _roles(*, needs_planner: bool) -> tuple[str, ...]:
    roles = ("implementer", "reviewer", "diagnoser")
    return ("planner", *roles) if needs_planner else roles


def _models(config: Config, options: RunOptions, project: Path, roles: tuple[str, ...]) -> dict:
    from shipyard.agents import models as model_io

    names = {role: model_io.model_name_for(role, config.models, options.model) for role in roles}
    return model_io.preflight(names, config.models, project=project)


def _read_spec(path: str) -> str:
    from shipyard.formats import read_text

    file = Path(path)
    text = read_text(file, SpecError)
    spec = parse_spec(text, str(file))
    if uncovered := spec.uncovered():
        raise SpecError(
            f"no check covers the acceptance ids {', '.join(uncovered)}", file=str(file)
        )
    return text


def _inside(project: Path, spec_file: str | None) -> str | None:
    if spec_file is None:
        return None
    path = Path(spec_file).resolve()
    return str(path.relative_to(project)) if path.is_relative_to(project) else None


__all__ = ["RunContext", "RunOptions", "ShipyardError", "drive", "resume_run", "start_run"]


def _shown(path: Path) -> str:
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)
