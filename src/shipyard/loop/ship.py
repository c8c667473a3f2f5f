"""Ship: commit on the run's branch with a message written from the spec; with ``--merge``,
fast-forward the user's branch when that is safe, and say why not otherwise."""

from __future__ import annotations

from shipyard import workspace
from shipyard.loop.context import RunContext
from shipyard.loop.state import RunState
from shipyard.store.ledger import Step

TRAILER = "Shipyard-Run"


def ship(ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
    state, step = state.model_copy(deep=True), Step()
    state.commit = _commit(ctx, state)
    step.event("commit", f"committed {state.commit[:10]} on {ctx.branch}", commit=state.commit)
    if ctx.options.merge:
        state.merged = merge(ctx)
        step.event("merge", state.merged)
    state.stage = "shipped"
    step.attempt_outcome = ("shipped", f"commit {state.commit[:10]}")
    step.event("shipped", f"shipped on {ctx.branch}")
    return state, step


def _commit(ctx: RunContext, state: RunState) -> str:
    head = workspace.git("rev-parse", "HEAD", cwd=ctx.worktree).stdout.strip()
    if head != ctx.base_sha:  # committed before a crash: the trailer says it is ours
        body = workspace.git("log", "-1", "--format=%B", head, cwd=ctx.worktree).stdout
        if f"{TRAILER}: {ctx.run_id}" in body:
            return head
    workspace.git("add", "-A", ".", cwd=ctx.workdir)
    identity = []
    for key, default in (("user.name", "Shipyard"), ("user.email", "shipyard@localhost")):
        if workspace.git("config", key, cwd=ctx.worktree, check=False).returncode != 0:
            identity += ["-c", f"{key}={default}"]
    workspace.git(
        *identity, "commit", "-q", "--no-verify", "-m", message(ctx, state), cwd=ctx.worktree
    )
    return workspace.git("rev-parse", "HEAD", cwd=ctx.worktree).stdout.strip()


def message(ctx: RunContext, state: RunState) -> str:
    assert ctx.spec is not None
    subject = ctx.spec.task.strip().splitlines()[0]
    if len(subject) > 72:
        subject = subject[:69] + "..."
    lines = [subject, "", "Acceptance:"]
    lines += [f"- {a.id}: {a.text}" for a in ctx.spec.acceptance]
    lines += [
        "",
        f"Verified by shipyard (all gates passed; attempt {state.attempt}) and approved on review.",
        "",
        f"{TRAILER}: {ctx.run_id}",
    ]
    return "\n".join(lines)


def merge(ctx: RunContext) -> str:
    """Fast-forward the branch the user had checked out to the run's commit, or say why not."""
    repo = ctx.project
    branch = workspace.git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=repo, check=False)
    if branch.returncode != 0:
        return f"not merged: HEAD is detached; merge {ctx.branch} yourself"
    name = branch.stdout.strip()
    ancestor = workspace.git(
        "merge-base", "--is-ancestor", "HEAD", ctx.branch, cwd=repo, check=False
    )
    if ancestor.returncode != 0:
        return f"not merged: {name} has moved on since the run started; merge {ctx.branch} yourself"
    done = workspace.git("merge", "--ff-only", "-q", ctx.branch, cwd=repo, check=False)
    if done.returncode != 0:
        why = (done.stderr.strip() or done.stdout.strip()).splitlines()
        return f"not merged: git refused the fast-forward of {name}: {' '.join(why)[:300]}"
    return f"merged: {name} fast-forwarded to {ctx.branch}"
