"""Path confinement and the file helpers behind the agent tools (:mod:`shipyard.agents.tools`).

Nothing a model names may lead outside the worktree.

A path is resolved the way the kernel would follow it (every symlink, dangling ones included, with
``..`` applied after the link it follows), and refused unless the result is inside the root.
Walking (``list``, ``search``) never follows a symlink at all. The ``run`` tool is not confined by
this module: a command can do anything its user can.
"""

from __future__ import annotations

import difflib
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from shipyard import process
from shipyard.exceptions import CommandNotFound

SKIPPED = frozenset({".git", ".shipyard", "node_modules", "__pycache__", ".venv"})
"""Folders ``list`` and ``search`` do not go into."""
SNIFF_BYTES, LINE_CAP, MAX_SEARCH_BYTES = 8192, 500, 2_000_000


class Refused(Exception):
    """A path the tools will not touch; the message is meant for the model."""


def confine(root: Path, path: str, *, what: str = "path") -> Path:
    """The resolved location of ``path`` (relative to ``root``, which must be resolved), or
    :class:`Refused` when it is absolute, leaves the root or lies inside a ``.git`` folder."""
    if "\0" in path:
        raise Refused(f"{what} {path!r} contains a NUL character")
    if os.path.isabs(path):
        raise Refused(
            f"{what} {path!r} is outside the worktree: absolute paths are refused; "
            "give a path relative to the worktree root"
        )
    resolved = Path(os.path.realpath(root / (path or ".")))
    if not resolved.is_relative_to(root):
        via = " (through a symlink)" if ".." not in Path(path).parts else ""
        raise Refused(f"{what} {path!r} is outside the worktree{via}; refused")
    if any(part.casefold() == ".git" for part in resolved.relative_to(root).parts):
        raise Refused(f"{what} {path!r} is inside .git, which the tools do not touch")
    return resolved


def relative(root: Path, path: Path) -> str:
    """``path`` as the model should name it: relative to the root, POSIX separators."""
    rel = path.relative_to(root).as_posix()
    return "." if rel in ("", ".") else rel


def walk(top: Path, depth: int | None = None) -> Iterator[tuple[os.DirEntry[str], int]]:
    """Entries under ``top``, sorted by name, depth-first, with their depth (1 = directly in
    ``top``). Skips :data:`SKIPPED` folders and never follows symlinks."""
    try:
        entries = sorted(os.scandir(top), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name in SKIPPED:
            continue
        yield entry, 1
        if entry.is_dir(follow_symlinks=False) and (depth is None or depth > 1):
            for sub, level in walk(Path(entry.path), None if depth is None else depth - 1):
                yield sub, level + 1


def is_binary(path: Path) -> bool:
    with open(path, "rb") as fh:
        return b"\0" in fh.read(SNIFF_BYTES)


def put(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` (already confined) as a new file renamed into place, so the
    write never goes through a symlink nor into a file that is also linked from elsewhere; a
    file with more than one hard link is refused (the other name may be outside the worktree)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    st = single_link(target, target.name)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.shipyard-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if st is not None:
                os.fchmod(fh.fileno(), stat.S_IMODE(st.st_mode))
                _later_than(fh.fileno(), st)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _later_than(fd: int, old: os.stat_result) -> None:
    """A replaced file's mtime moves on by whole seconds: Python's bytecode cache (and make)
    compare seconds and size, so a same-size edit within the second would run the old code."""
    now = os.fstat(fd)
    if int(now.st_mtime) <= int(old.st_mtime):
        os.utime(fd, ns=(now.st_atime_ns, (int(old.st_mtime) + 1) * 1_000_000_000))


def single_link(target: Path, shown: str) -> os.stat_result | None:
    """``target``'s status (None when it does not exist); Refused when it has more than one
    hard link, so that neither its content nor a write reaches another name for it."""
    try:
        st = target.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
        raise Refused(
            f"{shown} has {st.st_nlink} hard links (another name for it may be outside the "
            "worktree); refused: delete it with run, then write it anew"
        )
    return st


State = tuple[bytes, list[tuple[int, int] | None]]


def worktree_state(root: Path, env: Mapping[str, str]) -> State | None:
    """``git status --porcelain`` plus size and mtime of every path it names, so that a file
    that was already modified and changes again counts too; None when git cannot tell."""
    from shipyard import leftovers
    from shipyard.workspace import SAFE

    argv = ["git", *SAFE, "status", "--porcelain=v1", "-z", "--untracked-files=all"]
    with leftovers.temporary("status") as tmp:
        log = Path(tmp) / "status"
        try:
            result = process.run(
                argv,
                cwd=root,
                env={**env, "GIT_OPTIONAL_LOCKS": "0"},
                timeout=60,
                log=log,
                stderr_log=Path(tmp) / "stderr",
                what="git status",
            )
        except CommandNotFound:
            return None
        if not result.ok:
            return None
        raw = log.read_bytes()
    stats: list[tuple[int, int] | None] = []
    for record in raw.split(b"\0"):  # "XY path"; a rename's old path is a record of its own
        try:
            st = (root / os.fsdecode(record[3:])).lstat()
            stats.append((st.st_size, st.st_mtime_ns))
        except (OSError, ValueError):
            stats.append(None)
    return raw, stats


SECRET_WORDS = (
    "KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "CREDENTIAL", "CREDS", "AUTH",
    "COOKIE", "DSN", "SESSION",
)  # fmt: skip
SECRET_SUFFIXES = ("_PAT", "_PWD")


def looks_secret(name: str) -> bool:
    """A variable name that reads like a credential (the environment itself is an allow-list:
    :mod:`shipyard.environment`; this only keeps Shipyard's own names honest)."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS) or upper.endswith(SECRET_SUFFIXES)


def numbered(path: Path, start: int, end: int | None, budget: int) -> tuple[list[str], int, int]:
    """Lines ``start``..``end`` of a text file as ``  12| text`` rows, at most ``budget``
    characters of them; with the line the rows were cut before (0: not cut) and the line count."""
    rows: list[str] = []
    used, cut, total = 0, 0, 0
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        for total, line in enumerate(fh, 1):
            if total < start or (end is not None and total > end) or cut:
                continue
            row = f"{total:>4}| {line.rstrip(chr(13) + chr(10))}"
            row = row if len(row) <= LINE_CAP else row[:LINE_CAP] + " … [line cut]"
            if used + len(row) + 1 > budget:
                cut = total
                continue
            rows.append(row)
            used += len(row) + 1
    return rows, cut, total


def grep(root: Path, files: Iterable[Path], rx: re.Pattern[str], limit: int) -> list[str]:
    """Up to ``limit`` ``file:line: text`` hits of ``rx`` in the text files among ``files``."""
    hits: list[str] = []
    for path in files:
        try:
            if path.stat().st_size > MAX_SEARCH_BYTES or is_binary(path):
                continue
            with open(path, encoding="utf-8", errors="replace", newline="") as fh:
                for n, line in enumerate(fh, 1):
                    if rx.search(line.rstrip("\r\n")):
                        hits.append(f"{relative(root, path)}:{n}: {line.strip()[:300]}")
                        if len(hits) >= limit:
                            return hits
        except OSError:
            continue  # unreadable: not worth stopping the search for
    return hits


def clip(text: str, cap: int, *, tail: bool = False) -> str:
    """At most ``cap`` characters of ``text`` (its end when ``tail``), saying where it was cut."""
    if len(text) <= cap:
        return text
    keep = max(cap - 100, 0)
    note = f"[output cut here: {len(text) - keep} of {len(text)} characters left out]"
    out = f"{note}\n{text[len(text) - keep :]}" if tail else f"{text[:keep]}\n{note}"
    return out[:cap]  # only a cap under 100 characters needs this


def closest_lines(text: str, search: str) -> str:
    """The lines of ``text`` most like the first line of ``search``, if the file is small."""
    first = next((line.strip() for line in search.splitlines() if line.strip()), "")
    lines = text.splitlines()
    if not first or len(lines) > 5000:
        return ""
    scored = []
    for n, line in enumerate(lines, 1):
        matcher = difflib.SequenceMatcher(None, first, line.strip(), autojunk=False)
        if matcher.quick_ratio() >= 0.6 and (ratio := matcher.ratio()) >= 0.6:
            scored.append((ratio, n))
    best = sorted(n for _, n in sorted(scored, reverse=True)[:3])
    rows = "\n".join(f"{n:>4}| {lines[n - 1][:LINE_CAP]}" for n in best)
    return f"\nthe closest lines:\n{rows}" if rows else ""
