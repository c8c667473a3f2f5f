"""What Shipyard keeps per agent session, under ``.shipyard/hooks/``: where the session started
(the base), how many times it was blocked, each failure's fingerprint, what was tried. And the
lock that serialises hook calls for one worktree."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shipyard.evidence import state_dir

HOOKS_DIR = "hooks"
MAX_TRIED = 10


@dataclass(frozen=True, kw_only=True)
class Tried:
    fingerprint: str
    summary: str
    tree: str | None
    at: float


@dataclass(kw_only=True)
class Record:
    agent: str
    session: str
    base: str | None = None
    blocks: int = 0
    seen: dict[str, int] = field(default_factory=dict)
    tried: list[Tried] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "tried": [asdict(t) for t in self.tried[-MAX_TRIED:]]}

    def blocked(self, fingerprint: str, summary: str, tree: str | None) -> int:
        """Count one block; how often this fingerprint has now been seen."""
        self.blocks += 1
        self.seen[fingerprint] = self.seen.get(fingerprint, 0) + 1
        self.tried.append(
            Tried(fingerprint=fingerprint, summary=summary, tree=tree, at=time.time())
        )
        return self.seen[fingerprint]

    def reset(self) -> None:
        """The stop was allowed: the next task in this session starts with no blocks."""
        self.blocks, self.seen, self.tried = 0, {}, []


def folder(project: Path) -> Path:
    path = state_dir(project) / HOOKS_DIR
    path.mkdir(exist_ok=True)
    return path


def _file(project: Path, agent: str, session: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", session)[:64]
    digest = hashlib.sha256(session.encode()).hexdigest()[:10]
    return folder(project) / "sessions" / f"{agent}-{safe}-{digest}.json"


def load(project: Path, agent: str, session: str) -> Record:
    try:
        doc = json.loads(_file(project, agent, session).read_text())
        tried = [Tried(**t) for t in doc.get("tried", [])]
        return Record(
            agent=agent,
            session=session,
            base=doc.get("base"),
            blocks=int(doc.get("blocks", 0)),
            seen={str(k): int(v) for k, v in doc.get("seen", {}).items()},
            tried=tried,
        )
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError):
        return Record(agent=agent, session=session)


def save(project: Path, record: Record) -> None:
    target = _file(project, record.agent, record.session)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=2) + "\n")
    tmp.replace(target)


class LockTimeout(TimeoutError):
    pass


@contextlib.contextmanager
def locked(project: Path, wait: float) -> Iterator[None]:
    """One hook call at a time for this worktree; LockTimeout after ``wait`` seconds."""
    path = folder(project) / "lock"
    with open(path, "a+") as fh:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"another hook call held {path} for {wait:.0f}s") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
