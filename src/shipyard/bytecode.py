"""Bytecode that may be stale: removed before a verify runs the project's code.

A timestamp ``.pyc`` records its source's modification time in whole seconds and its size.
Python reuses it while both match, so a source rewritten with the same size in the same second
as the version that was compiled (an agent's one-character fix right after its own test run)
runs as the old code: a fix fails, or a broken change passes. A ``.pyc`` written in the same
second as the source time it records cannot be told apart from such a rewrite, so it is removed
and Python compiles the source again. An unchecked hash-based ``.pyc`` (Python never compares it
with its source) and a ``.pyc`` that is a symbolic link are removed too; a checked hash-based
one is kept (Python checks it), and so is every other timestamp one, so the cost is a few
compiles at most. Only regular files are read. Environments (``.venv``, ``venv``,
``node_modules``, ``site-packages``, ``__pypackages__``, any folder with ``pyvenv.cfg``) are not
walked: their sources are not the submission's. ``PYTHONPYCACHEPREFIX`` is left out of the
commands' environment (``verify._env``), so the bytecode Python reads is the bytecode here.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Callable
from pathlib import Path

SKIP = frozenset(
    {".git", ".shipyard", ".venv", "venv", "node_modules", ".tox", ".nox", ".mypy_cache",
     ".pytest_cache", ".ruff_cache", "site-packages", "dist-packages", "__pypackages__"}
)  # fmt: skip
_HEADER = struct.Struct("<4sIII")  # magic, flags (0: timestamp-based), source mtime, size


def purge_ambiguous(project: Path) -> list[Path]:
    """Remove the timestamp ``.pyc`` files under ``project`` written in the same second as the
    source time they record (and the others described above); what was removed."""
    return _purge(project, _ambiguous)


def purge_all(project: Path) -> list[Path]:
    """Remove every ``.pyc`` under ``project``'s ``__pycache__`` folders (environments not
    walked): for a tree an agent wrote, whose bytecode (and its times) may be forged to differ
    from the source. What was removed."""
    return _purge(project, lambda _entry: True)


def _purge(project: Path, doomed: Callable[[os.DirEntry[str]], bool]) -> list[Path]:
    removed: list[Path] = []
    for folder in _pycache_folders(project):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith(".pyc") and doomed(entry):
                try:
                    os.unlink(entry.path)
                except OSError:
                    continue
                removed.append(Path(entry.path))
    return removed


def _pycache_folders(top: Path) -> list[str]:
    found: list[str] = []
    stack = [str(top)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        if any(e.name == "pyvenv.cfg" for e in entries) and folder != str(top):
            continue
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False) or entry.name in SKIP:
                continue
            (found if entry.name == "__pycache__" else stack).append(entry.path)
    return found


def _ambiguous(entry: os.DirEntry[str]) -> bool:
    """True for a ``.pyc`` Python might run although its source changed."""
    try:
        if entry.is_symlink():
            return True
        fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return False  # a FIFO or a device: not read (it could block)
            header: tuple[bytes, int, int, int] = _HEADER.unpack(os.read(fd, _HEADER.size))
        finally:
            os.close(fd)
        written = int(info.st_mtime)
    except (OSError, struct.error):
        return False
    _magic, flags, recorded, _size = header
    if flags & 0b01:  # hash-based: unchecked (0b01) is never compared with the source
        return not flags & 0b10
    return written <= recorded
