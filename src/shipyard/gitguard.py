"""The repository's ``hooks/`` and ``config``, kept as they were when a run started.

A command the model runs can write into the repository's own git folder (``$(git rev-parse
--git-common-dir)``, shared by every worktree): a hook planted there would run at the user's
next ``git checkout``, a config entry (``core.hooksPath``, ``core.fsmonitor``, a filter) at their
next ``git status``. A run copies both into its evidence folder when it starts
(``git-snapshot/``, kept for ``resume``) and puts them back after every ``run`` tool call and
when the run ends; what it removed or put back is said in the run's output and report.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import stat
from pathlib import Path

from shipyard import workspace

SNAPSHOT = "git-snapshot"


def common_dir(project: Path) -> Path:
    out = workspace.git("rev-parse", "--git-common-dir", cwd=project).stdout.strip()
    return (project / out).resolve()


def take(project: Path, evidence: Path) -> None:
    """Copy ``hooks/`` and ``config`` once per run (a resumed run keeps the first copy)."""
    dest = evidence / SNAPSHOT
    if dest.exists():
        return
    git_dir = common_dir(project)
    tmp = evidence / f"{SNAPSHOT}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "gitdir").write_text(str(git_dir))
    if (git_dir / "hooks").is_dir() and not (git_dir / "hooks").is_symlink():
        shutil.copytree(git_dir / "hooks", tmp / "hooks", symlinks=True)
    else:
        (tmp / "hooks").mkdir()
    if (git_dir / "config").is_file():
        shutil.copy2(git_dir / "config", tmp / "config", follow_symlinks=False)
    tmp.rename(dest)


def restore(evidence: Path) -> list[str]:
    """Put ``hooks/`` and ``config`` back as the snapshot has them; what changed, in words."""
    snap = evidence / SNAPSHOT
    if not (snap / "gitdir").is_file():
        return []
    git_dir = Path((snap / "gitdir").read_text())
    said = _restore_hooks(snap / "hooks", git_dir / "hooks")
    said += _restore_config(snap / "config", git_dir / "config")
    return said


def _restore_hooks(saved: Path, hooks: Path) -> list[str]:
    said = []
    if hooks.is_symlink() or (hooks.exists() and not hooks.is_dir()):
        _remove(hooks)
        said.append(f"removed {hooks} (it was replaced by a link or a file)")
    hooks.mkdir(exist_ok=True)
    current = {p.relative_to(hooks) for p in _walk(hooks)}
    wanted = {p.relative_to(saved) for p in _walk(saved)}
    for rel in sorted(current - wanted, reverse=True):  # deepest first
        _remove(hooks / rel)
        said.append(f"removed {hooks / rel}")
    for rel in sorted(wanted):
        src, dst = saved / rel, hooks / rel
        if rel in current and _same(src, dst):
            continue
        if dst.exists() or dst.is_symlink():
            _remove(dst)
        _copy(src, dst)
        said.append(f"put back {dst} as it was")
    return said


def _restore_config(saved: Path, config: Path) -> list[str]:
    if not saved.exists():
        if config.exists() or config.is_symlink():
            _remove(config)
            return [f"removed {config}"]
        return []
    if config.is_file() and not config.is_symlink() and _same(saved, config):
        return []
    added = []
    if config.is_file() and not config.is_symlink():
        before = {ln.strip() for ln in saved.read_text(errors="replace").splitlines()}
        added = [ln.strip() for ln in config.read_text(errors="replace").splitlines()]
        added = [ln for ln in added if ln and ln not in before][:5]
    tmp = config.with_name("config.shipyard-tmp")
    shutil.copy2(saved, tmp)
    if config.is_dir() and not config.is_symlink():
        shutil.rmtree(config)
    os.replace(tmp, config)
    what = f" (it had gained: {'; '.join(added)})" if added else ""
    return [f"put back {config} as it was{what}"]


def _walk(top: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(top):
        out += [Path(root) / name for name in (*dirs, *files)]
    return out


def _same(a: Path, b: Path) -> bool:
    sa, sb = a.lstat(), b.lstat()
    if stat.S_IFMT(sa.st_mode) != stat.S_IFMT(sb.st_mode):
        return False
    if stat.S_ISLNK(sa.st_mode):
        return os.readlink(a) == os.readlink(b)
    if stat.S_ISDIR(sa.st_mode):
        return True
    return sa.st_mode == sb.st_mode and filecmp.cmp(a, b, shallow=False)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _copy(src: Path, dst: Path) -> None:
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        dst.mkdir(exist_ok=True)
        shutil.copystat(src, dst)
    else:
        shutil.copy2(src, dst)
