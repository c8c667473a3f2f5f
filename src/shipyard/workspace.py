"""Git: revisions, files at a revision, and temporary worktrees."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from shipyard.exceptions import GitError

GIT_TIMEOUT = 60


def git(
    *args: str, cwd: Path, check: bool = True, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    if shutil.which("git") is None:
        raise GitError("git was not found on PATH; install git to use --base")
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            stdin=subprocess.DEVNULL,
            env=None if env is None else {**os.environ, **env},
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
    holder = Path(tempfile.mkdtemp(prefix="shipyard-base-"))
    tree = holder / "tree"
    git("worktree", "add", "--detach", "--quiet", str(tree), sha, cwd=project)
    try:
        yield tree / prefix if prefix else tree
    finally:
        git("worktree", "remove", "--force", str(tree), cwd=project, check=False)
        shutil.rmtree(holder, ignore_errors=True)
        git("worktree", "prune", cwd=project, check=False)
