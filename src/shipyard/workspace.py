"""Git: revisions, files at a revision, and temporary worktrees.

Shipyard's own git calls never run code from the repository: hooks are off
(``core.hooksPath=/dev/null``, where no hook can exist), so is ``core.fsmonitor``, and the
environment is the allow-list of :mod:`shipyard.environment` (a hook or filter planted by a
model sees no key even where git would run one).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from shipyard import leftovers
from shipyard.exceptions import GitError

GIT_TIMEOUT = 60
SAFE = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")
"""Options for every git Shipyard runs itself."""
IDENTITY = tuple(
    f"GIT_{who}_{what}" for who in ("AUTHOR", "COMMITTER") for what in ("NAME", "EMAIL", "DATE")
)


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    from shipyard.environment import scrubbed

    return {**scrubbed(os.environ, None, IDENTITY), **(extra or {})}


def git(
    *args: str, cwd: Path, check: bool = True, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    if shutil.which("git") is None:
        raise GitError("git was not found on PATH; install git to use --base")
    try:
        proc = subprocess.run(
            ["git", *SAFE, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            stdin=subprocess.DEVNULL,
            env=git_env(env),
        )
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"git {' '.join(args)} did not finish in {GIT_TIMEOUT}s") from exc
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def resolve(project: Path, rev: str) -> str:
    """The commit sha of ``rev``; GitError when it does not exist."""
    top = git("rev-parse", "--show-toplevel", cwd=project, check=False)
    if top.returncode != 0:
        raise GitError(f"{project} is not inside a git repository, so --base cannot be used")
    proc = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=project, check=False)
    if proc.returncode != 0:
        raise GitError(f"--base {rev}: no such revision in {project}")
    return proc.stdout.strip()


def exists_at(project: Path, sha: str, relpath: str) -> bool:
    prefix = git("rev-parse", "--show-prefix", cwd=project).stdout.strip()
    proc = git("cat-file", "-e", f"{sha}:{prefix}{relpath}", cwd=project, check=False)
    return proc.returncode == 0


@contextmanager
def worktree(project: Path, sha: str) -> Iterator[Path]:
    """A detached worktree of ``sha``; yields the folder matching ``project`` inside it."""
    prefix = git("rev-parse", "--show-prefix", cwd=project).stdout.strip()
    holder = leftovers.temp_dir("base")
    tree = holder / "tree"
    git("worktree", "add", "--detach", "--quiet", str(tree), sha, cwd=project)
    try:
        yield tree / prefix if prefix else tree
    finally:
        git("worktree", "remove", "--force", str(tree), cwd=project, check=False)
        shutil.rmtree(holder, ignore_errors=True)
        git("worktree", "prune", cwd=project, check=False)


IGNORED = "__pycache__/\n*.py[co]\n.pytest_cache/\n.shipyard/\n"
"""Never part of a submission, whatever the project's .gitignore says."""


def snapshot(worktree: Path, workdir: Path, base: str, leave_out: list[str], scratch: Path) -> str:
    """The project folder ``workdir`` of ``worktree`` as a git tree: ``base`` plus every change
    under the folder (untracked files included), without junk and without the paths in
    ``leave_out``. A private index in ``scratch``, so nothing staged or committed counts."""
    ignore = scratch / "snapshot.ignore"
    if not ignore.exists():
        ignore.write_text(IGNORED)
    index = {"GIT_INDEX_FILE": str(scratch / "snapshot.index")}
    prefix = git("rev-parse", "--show-prefix", cwd=workdir).stdout.strip() or "."
    git("read-tree", base, cwd=worktree, env=index)
    git("-c", f"core.excludesFile={ignore}", "add", "-A", "--", prefix, cwd=worktree, env=index)
    for start in range(0, len(leave_out), 200):
        git(
            "rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *leave_out[start : start + 200],
            cwd=worktree, env=index,
        )  # fmt: skip
    return git("write-tree", cwd=worktree, env=index).stdout.strip()


def added_files(repo: Path, before: str, after: str) -> list[str]:
    """Files (from the repository root) that tree ``after`` adds to tree ``before``."""
    out = git(
        "diff", "--name-only", "--no-renames", "--diff-filter=A", "-z", before, after, cwd=repo
    ).stdout
    return [n for n in out.split("\0") if n]


def changed_files(workdir: Path, base: str, tree: str) -> list[str]:
    """Files ``tree`` changed, added or deleted since ``base``, relative to ``workdir``."""
    out = git(
        "diff", "--name-only", "--no-renames", "--relative", "-z", base, tree, cwd=workdir
    ).stdout
    return [n for n in out.split("\0") if n]


def diff(workdir: Path, base: str, tree: str, limit: int = 60_000) -> str:
    """The diff from ``base`` to ``tree`` under ``workdir``, cut at ``limit`` characters."""
    text = git("diff", "--relative", base, tree, cwd=workdir).stdout
    if len(text) > limit:
        text = text[:limit] + f"\n[... {len(text) - limit} more characters of diff]"
    return text
