"""Temporary folders named after the process that made them, and what a crashed one left.

Every temporary folder Shipyard makes is ``$TMPDIR/shipyard-<kind>-<pid>-<random>``. A process
killed with ``kill -9`` cannot remove its own; the next ``shipyard verify`` and ``resume``
remove those whose process is gone, and prune the base worktrees git still lists for them.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KINDS = ("run", "base", "app", "cli", "status", "service", "commands")
_NAME = re.compile(rf"^shipyard-(?:{'|'.join(KINDS)})-(\d+)-")


def temp_dir(kind: str) -> Path:
    """A fresh folder for this process, removable by others once it is dead."""
    assert kind in KINDS, kind
    return Path(tempfile.mkdtemp(prefix=f"shipyard-{kind}-{os.getpid()}-"))


@contextmanager
def temporary(kind: str) -> Iterator[Path]:
    """:func:`temp_dir`, removed on the way out."""
    path = temp_dir(kind)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _dead(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 :].split()[0] == b"Z"


def clean(project: Path | None = None) -> list[str]:
    """Remove the temporary folders of dead Shipyard processes, then prune ``project``'s
    worktrees that lived in them; what was removed."""
    removed = []
    for entry in os.scandir(tempfile.gettempdir()):
        found = _NAME.match(entry.name)
        if found and entry.is_dir(follow_symlinks=False) and _dead(int(found.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    if project is not None:
        removed += _prune(project)
    return removed


def _prune(project: Path) -> list[str]:
    """Base worktrees git still lists whose folder is gone (a crashed verify's)."""
    from shipyard import workspace
    from shipyard.exceptions import GitError

    if not _may_have_worktrees(project):
        return []
    try:
        listed = workspace.git("worktree", "list", "--porcelain", cwd=project, check=False)
    except GitError:
        return []
    if listed.returncode != 0:
        return []
    gone = [
        line.removeprefix("worktree ")
        for line in listed.stdout.splitlines()
        if line.startswith("worktree ")
        and _NAME.match(Path(line.removeprefix("worktree ")).parent.name)
        and not Path(line.removeprefix("worktree ")).exists()
    ]
    if gone:
        workspace.git("worktree", "prune", cwd=project, check=False)
    return [f"worktree {path}" for path in gone]


def _may_have_worktrees(project: Path) -> bool:
    """False when the repository's own ``.git`` folder has no ``worktrees``, or when no folder
    from ``project`` up has a ``.git`` (not a repository): then there is nothing to prune and
    git need not be asked (a ``.git`` file, a linked worktree, ``GIT_DIR``: ask)."""
    if os.environ.get("GIT_DIR"):
        return True
    for folder in (project, *project.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return (dot_git / "worktrees").exists()
        if dot_git.exists():
            return True
    return False
