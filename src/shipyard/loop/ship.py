"""Ship: commit on the run's branch with a message written from the spec; with ``--merge``,
fast-forward the user's branch when that is safe, and say why not otherwise."""

from __future__ import annotations

from shipyard import workspace
from shipyard.loop import learn
from shipyard.loop.context import RunContext
from shipyard.loop.state import RunState
from shipyard.loop.step import Step

TRAILER = "Shipyard-Run"


def ship(ctx: RunContext, state: RunState) -> tuple[RunState, Step]:
    state, step = state.model_copy(deep=True), Step()
    state.commit = _commit(ctx, state)
    step.event("commit", f"committed {state.commit[:10]} on {ctx.branch}", commit=state.commit)
    if ctx.options.merge:
        state.merged = merge(ctx)
        step.event("merge", state.merged)
    learn.learned_on_ship(ctx, state, step)
    state.stage = "shipped"
    step.attempt_outcome = ("shipped", f"commit {state.commit[:10]}")
    step.event("shipped", f"shipped on {ctx.branch}")
    return state, step


def _commit(ctx: RunContext, state: RunState) -> str:
    """One commit on the base holding exactly the tree that was verified and approved (not
    what the gates built afterwards, nor the implementer's own commits)."""
    head = workspace.git("rev-parse", ctx.branch, cwd=ctx.project).stdout.strip()
    body = workspace.git("log", "-1", "--format=%B", head, cwd=ctx.project).stdout
    if head != ctx.base_sha and f"{TRAILER}: {ctx.run_id}" in body:
        return head  # committed before a crash
    assert state.tree is not None, "ship without a verified tree"
    identity = []
    for key, default in (("user.name", "Shipyard"), ("user.email", "shipyard@localhost")):
        if workspace.git("config", key, cwd=ctx.project, check=False).returncode != 0:
            identity += ["-c", f"{key}={default}"]
    commit = workspace.git(
        *identity, "commit-tree", state.tree, "-p", ctx.base_sha, "-m", message(ctx, state),
        cwd=ctx.project,
    ).stdout.strip()  # fmt: skip
    workspace.git("update-ref", f"refs/heads/{ctx.branch}", commit, head, cwd=ctx.project)
    return commit


def message(ctx: RunContext, state: RunState) -> str:
    spec = ctx.locked.spec
    subject = spec.task.strip().splitlines()[0]
    if len(subject) > 72:
        subject = subject[:69] + "..."
    lines = [subject, "", "Acceptance:"]
    lines += [f"- {a.id}: {a.text}" for a in spec.acceptance]
    checked = (
        "Shipped as the model submitted it (--naive: no gates, no review)."
        if ctx.options.naive
        else f"Verified by shipyard (all gates passed; attempt {state.attempt}) "
        "and approved on review."
    )
    lines += [
        "",
        checked,
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
    started = ctx.options.start_branch
    if name != started:
        return (
            f"not merged: {name} is checked out now, the run started from {started}; "
            f"merge {ctx.branch} yourself"
        )
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
