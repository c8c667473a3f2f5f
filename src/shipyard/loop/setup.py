"""Starting a run (everything that can be checked, before any work) and resuming one after a
crash (what the dead process left running is killed, the worktree made whole again)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard import gitguard, leftovers, workspace
from shipyard.agents.roles import RoleName
from shipyard.config import Config, load_config
from shipyard.evidence import new_run_id, state_dir
from shipyard.exceptions import GitError, SpecError
from shipyard.loop import implementers, learn
from shipyard.loop.context import Locked, RunContext, RunOptions, Session
from shipyard.loop.state import FINAL, RunState
from shipyard.loop.step import Step
from shipyard.spec import Spec, parse_spec, spec_hash
from shipyard.store.ledger import Event, Ledger

if TYPE_CHECKING:
    from pydantic_ai.models import Model

RUN_VARIABLE = "SHIPYARD_RUN_ID"
"""Set in the environment of everything a run starts, so that a resume can find what a crashed
process left running."""


def worktrees_root() -> Path:
    """Outside the project, so that no test runner of the project ever collects a run's copy."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "shipyard" / "worktrees"


def start_run(
    project: Path,
    task: str,
    options: RunOptions,
    *,
    say: Callable[[Event], None],
    confirm: Callable[[str], bool],
) -> RunContext:
    """Check the config, the spec, the models and git, then create the run, its branch and its
    worktree. The caller drives it."""
    project = project.resolve()
    config = load_config(project)
    if options.naive:  # no memory: it neither reads nor writes the project's knowledge
        config = config.model_copy(
            update={"knowledge": config.knowledge.model_copy(update={"enabled": False})}
        )
    if config.sandbox.kind == "bwrap":
        from shipyard import bwrap

        bwrap.require()
    base_sha, start_branch = _git_start(project)
    spec_text = _read_spec(options.spec_file) if options.spec_file else None
    if spec_text is not None:
        runnable(project, parse_spec(spec_text, str(options.spec_file)), config)
    implementer = implementers.resolve(options.implementer, config)
    if options.implementer is None and config.agents.implementer is not None:
        options = RunOptions(**{**options.to_json(), "implementer": config.agents.implementer})
    described = implementer.preflight()
    roles = _roles(needs_planner=spec_text is None, implementer=implementer, naive=options.naive)
    models = _models(config, options, project, roles)
    run_id = new_run_id("r")
    evidence = state_dir(project) / "runs" / run_id
    evidence.mkdir(parents=True)
    (evidence / "config.json").write_text(config.model_dump_json(indent=2))
    gitguard.take(project, evidence)  # before the model can run anything
    tree = worktrees_root() / run_id
    prefix = workspace.git("rev-parse", "--show-prefix", cwd=project).stdout.strip()
    spec_file = _inside(project, options.spec_file)
    options = RunOptions(
        **{**options.to_json(), "spec_file": spec_file, "start_branch": start_branch}
    )
    ctx = RunContext(
        run_id=run_id, task=task, project=project, worktree=tree, workdir=tree / prefix,
        base_sha=base_sha, branch=f"shipyard/{run_id}", config=config, options=options,
        ledger=Ledger.open(project, RunState.model_validate_json), evidence=evidence,
        implementer=implementer, session=Session(say=say, confirm=confirm, models=models),
    )  # fmt: skip
    state, first = RunState(), Step()
    if not implementers.needs_model(implementer):
        first.event("implementer", f"implementer {implementer.name}: {described}")
    if spec_text is not None:  # locked in the same transaction that creates the run
        lock(ctx, state, first, spec_text)
    ctx.ledger.create_run(
        run_id=run_id, task=task, base_sha=base_sha, branch=ctx.branch, worktree=str(tree),
        options=options.to_json(), state=state,
        spec_hash=spec_hash(spec_text) if spec_text else None, events=first.events,
    )  # fmt: skip
    where = f"{run_id} · branch {ctx.branch} · worktree {tree}"
    say(Event(kind="run", summary=f"{where}\n          task: {task}"))
    ctx.say_events(first)
    os.environ[RUN_VARIABLE] = run_id
    learn.sync_docs(ctx)
    _worktree_ready(ctx, state)
    return ctx


def resume_run(
    project: Path, run: str, *, say: Callable[[Event], None], confirm: Callable[[str], bool]
) -> tuple[RunContext, RunState]:
    """Rebuild a run from the ledger and take it over."""
    from shipyard import process

    project = project.resolve()
    ledger = Ledger.open(project, RunState.model_validate_json)
    record = ledger.run(run)
    evidence = state_dir(project) / "runs" / record.id
    config = Config.model_validate_json((evidence / "config.json").read_text())
    options = RunOptions(**record.options)
    prefix = workspace.git("rev-parse", "--show-prefix", cwd=project).stdout.strip()
    tree = Path(record.worktree)
    ctx = RunContext(
        run_id=record.id, task=record.task, project=project, worktree=tree,
        workdir=tree / prefix, base_sha=record.base_sha, branch=record.branch, config=config,
        options=options, ledger=ledger, evidence=evidence,
        implementer=implementers.resolve(options.implementer, config),
        session=Session(say=say, confirm=confirm),
    )  # fmt: skip
    state = record.state
    if state.stage in FINAL:
        return ctx, state
    ledger.claim(record.id)
    try:
        process.kill_tagged(RUN_VARIABLE, record.id)
        cleaned = leftovers.clean(project)
        gitguard.take(project, evidence)  # a run from before snapshots: from now on
        os.environ[RUN_VARIABLE] = record.id
        if (problem := _load_lock(ctx, record.spec_hash)) is not None:
            return ctx, block_run(ctx, state, problem)
        ctx.implementer.preflight()
        roles = _roles(
            needs_planner=state.stage == "plan", implementer=ctx.implementer, naive=options.naive
        )
        ctx.session.models = _models(config, options, project, roles)
        _continue_scripts(ctx)
        step = Step()
        step.event(
            "resume", f"resumed at {state.stage}, attempt {state.attempt}, step {state.step}"
        )
        for line in [*gitguard.restore(evidence), *(f"removed {p}" for p in cleaned)]:
            step.event("guard", line)  # what the crashed process left
        ledger.commit(record.id, state, step)
        ctx.say_events(step)
        learn.sync_docs(ctx)
        _worktree_ready(ctx, state)
    except BaseException as exc:
        ledger.release(record.id, "paused", f"resume failed: {exc}")
        raise
    return ctx, state


def runnable(project: Path, spec: Spec, config: Config) -> None:
    """The checks ``shipyard verify`` makes before running any gate (an HTTP check with no app
    to run, no Chromium for UI flows): InputError or EnvironmentProblem now, not mid-run."""
    from shipyard.evidence import STATE_DIR, RunDir
    from shipyard.gates import Context, preflight
    from shipyard.verify import default_gates

    ctx = Context(project=project, config=config, spec=spec, run=RunDir(project / STATE_DIR))
    preflight(default_gates(), ctx)


def _worktree_ready(ctx: RunContext, state: RunState) -> None:
    """The run's worktree on its branch, whole: one cut short by a crash is made again."""
    repo = ctx.project
    worked = state.step > 0 or state.attempt > 1 or state.verify_runs > 0
    if (state.worktree_ready or worked) and (ctx.worktree / ".git").exists():
        gitdir = workspace.git("rev-parse", "--git-dir", cwd=ctx.worktree).stdout.strip()
        (ctx.worktree / gitdir / "index.lock").unlink(missing_ok=True)  # the dead process's
        return
    workspace.git("worktree", "remove", "--force", str(ctx.worktree), cwd=repo, check=False)
    shutil.rmtree(ctx.worktree, ignore_errors=True)
    workspace.git("worktree", "prune", cwd=repo, check=False)
    has_branch = workspace.git(
        "rev-parse", "--verify", "--quiet", ctx.branch, cwd=repo, check=False
    )
    ctx.worktree.parent.mkdir(parents=True, exist_ok=True)
    if has_branch.returncode == 0:
        workspace.git(
            "worktree", "add", "--quiet", "--force", str(ctx.worktree), ctx.branch, cwd=repo
        )
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
    state.worktree_ready = True
    step = Step()
    step.event("worktree", f"worktree ready at {ctx.worktree}")
    ctx.ledger.commit(ctx.run_id, state, step)


def remove_worktree(ctx: RunContext) -> None:
    workspace.git("worktree", "remove", "--force", str(ctx.worktree), cwd=ctx.project, check=False)
    workspace.git("worktree", "prune", cwd=ctx.project, check=False)


def _load_lock(ctx: RunContext, expected: str | None) -> str | None:
    """The locked spec into the context; why the run cannot go on when it was tampered with."""
    if not ctx.spec_lock.is_file():
        return None if expected is None else f"{ctx.spec_lock} is gone: the locked spec was removed"
    text = ctx.spec_lock.read_text()
    if spec_hash(text) != expected:
        return f"{ctx.spec_lock}: the locked spec was changed after the run started"
    ctx.session.locked = Locked(text=text, spec=parse_spec(text, str(ctx.spec_lock)))
    return None


def lock(ctx: RunContext, state: RunState, step: Step, text: str) -> None:
    """Store the spec outside the worktree with its hash; implementation starts."""
    ctx.spec_lock.write_text(text)
    locked = ctx.session.locked = Locked(text=text, spec=parse_spec(text, str(ctx.spec_lock)))
    step.spec_hash = spec_hash(text)
    accepted = ", ".join(a.id for a in locked.spec.acceptance)
    step.event("lock", f"spec locked ({step.spec_hash[:12]}): {accepted}", hash=step.spec_hash)
    state.stage = "implement"


def block_run(ctx: RunContext, state: RunState, reason: str, *, say: bool = True) -> RunState:
    """Block the run from outside the loop (a tampered lock, bad input found mid-run)."""
    from shipyard.loop.attempts import block

    step = Step()
    state = block(state.model_copy(deep=True), step, reason)
    ctx.ledger.commit(ctx.run_id, state, step)
    if say:
        ctx.say_events(step)
    return state


def _git_start(project: Path) -> tuple[str, str | None]:
    top = workspace.git("rev-parse", "--show-toplevel", cwd=project, check=False)
    if top.returncode != 0:
        raise GitError(f"{project} is not in a git repository; `shipyard run` works on one")
    head = workspace.git(
        "rev-parse", "--verify", "--quiet", "HEAD^{commit}", cwd=project, check=False
    )
    if head.returncode != 0:
        raise GitError(f"{project}: the repository has no commit yet; commit once, then run")
    branch = workspace.git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=project, check=False)
    return head.stdout.strip(), branch.stdout.strip() if branch.returncode == 0 else None


def _continue_scripts(ctx: RunContext) -> None:
    """Scripted models pick up after the replies the crashed process had given."""
    from shipyard.agents import models as model_io

    for role, model in ctx.models.items():
        model_io.continue_after(model, partial(ctx.ledger.messages_of_role, ctx.run_id, role))


def _roles(
    *, needs_planner: bool, implementer: implementers.Implementer, naive: bool = False
) -> tuple[RoleName, ...]:
    """The roles whose model the run needs (the implementer's only for the in-process model)."""
    model = (RoleName.IMPLEMENTER,) if implementers.needs_model(implementer) else ()
    roles = model if naive else (*model, RoleName.REVIEWER, RoleName.DIAGNOSER)
    return (RoleName.PLANNER, *roles) if needs_planner else roles


def _models(
    config: Config, options: RunOptions, project: Path, roles: tuple[RoleName, ...]
) -> dict[str, Model]:
    from shipyard.agents import models as model_io

    names: dict[str, str] = {
        role: model_io.model_name_for(role, config.models, options.model) for role in roles
    }
    return model_io.preflight(names, config.models, project=project, warn=_warn)


def _warn(text: str) -> None:
    import sys

    print(f"shipyard: warning: {text}", file=sys.stderr, flush=True)


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


__all__ = [
    "block_run", "lock", "remove_worktree", "resume_run", "runnable", "start_run", "worktrees_root",
]  # fmt: skip
