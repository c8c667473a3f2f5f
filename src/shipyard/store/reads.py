"""Reading the ledger without writing it: the dashboard and the HTML reports.

:func:`open_readonly` opens ``.shipyard/shipyard.db`` with ``mode=ro``; nothing read through it
can change the project's state. :class:`ReadLedger` adds the reads those views need to the
:class:`~shipyard.store.ledger.Ledger`'s own (``run``, ``events``, ``gate_rows``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.exceptions import EnvironmentProblem, InputError
from shipyard.store import knowledge
from shipyard.store.db import DB_FILE, known_sum, like_escaped
from shipyard.store.ledger import Ledger
from shipyard.store.migrations import MIGRATIONS
from shipyard.store.rows import S

if TYPE_CHECKING:
    from shipyard.store.batchdb import TaskRow

STATUSES = ("running", "paused", "shipped", "blocked")
MAX_WORDS = 8


@dataclass(frozen=True, kw_only=True)
class RunQuery:
    """Which runs to list: all filters are optional and combine with AND."""

    status: str | None = None
    since: float | None = None
    """Started at or after (epoch seconds)."""
    until: float | None = None
    """Started before (epoch seconds)."""
    words: tuple[str, ...] = ()
    """Each must appear in the task (case-insensitive)."""
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True, kw_only=True)
class RunRow:
    id: str
    task: str
    status: str
    stage: str
    attempts: int
    verifies: int
    tokens: int
    created_at: float
    updated_at: float
    reason: str | None
    pid: int | None


@dataclass(frozen=True, kw_only=True)
class RoleCost:
    """A role's usage with one model: requests, tokens and what it cost."""

    role: str
    model: str
    requests: int
    input_tokens: int | None
    """None when a request did not report its tokens."""
    output_tokens: int | None
    cost: float | None


@dataclass(frozen=True, kw_only=True)
class EntryUse:
    run_id: str
    role: str
    at: float
    run_status: str | None
    """The status of the run it was given to (None: that run is gone)."""


@dataclass(frozen=True, kw_only=True)
class VerifyRow:
    run_id: str
    verify_id: str
    attempt: int
    gates: tuple[tuple[str, str], ...]
    """(gate, status) in the order they ran."""


def open_readonly(project: Path, load: Callable[[str], S]) -> ReadLedger[S]:
    """The project's ledger, read-only. InputError when the project has none."""
    path = project / ".shipyard" / DB_FILE
    if not path.is_file():
        raise InputError(f"no runs in {project.resolve()} (no .shipyard/{DB_FILE})")
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise EnvironmentProblem(f"{path}: cannot open the database: {exc}") from exc
    if version != len(MIGRATIONS):
        conn.close()
        raise EnvironmentProblem(
            f"{path}: schema version {version}, this Shipyard reads {len(MIGRATIONS)}: "
            "run any shipyard command that writes (status, run) to migrate it, or upgrade"
        )
    return ReadLedger(conn, load)


class ReadLedger(Ledger[S]):
    """The ledger's reads, over a read-only connection."""

    def run_rows(self, query: RunQuery) -> list[RunRow]:
        where, args = _where(query)
        rows = self.conn.execute(
            "SELECT id, task, status, created_at, updated_at, reason, pid,"
            " json_extract(state, '$.stage') AS stage,"
            " json_extract(state, '$.attempt') AS attempts,"
            " json_extract(state, '$.verify_runs') AS verifies,"
            " json_extract(state, '$.usage.input_tokens')"
            " + json_extract(state, '$.usage.output_tokens') AS tokens"
            f" FROM runs{where} ORDER BY created_at DESC LIMIT ? OFFSET ?",
            (*args, query.limit, query.offset),
        )
        return [
            RunRow(
                id=r["id"],
                task=r["task"],
                status=r["status"],
                stage=r["stage"] or "",
                attempts=r["attempts"] or 0,
                verifies=r["verifies"] or 0,
                tokens=r["tokens"] or 0,
                created_at=r["created_at"],
                updated_at=r["updated_at"],
                reason=r["reason"],
                pid=r["pid"],
            )  # fmt: skip
            for r in rows
        ]

    def count_runs(self, query: RunQuery) -> int:
        where, args = _where(query)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM runs{where}", args).fetchone()[0])

    def usage_of(self, run_id: str) -> list[RoleCost]:
        rows = self.conn.execute(
            f"SELECT role, model, COUNT(*) AS requests, {known_sum('input_tokens')},"
            f" {known_sum('output_tokens')}, SUM(cost) AS cost FROM usage"
            " WHERE run_id = ? GROUP BY role, model ORDER BY MIN(id)",
            (run_id,),
        )
        return [RoleCost(**dict(r)) for r in rows]

    def last_event_id(self, run_id: str) -> int:
        row = self.conn.execute(
            "SELECT COALESCE(MAX(id), 0) FROM events WHERE run_id = ?", (run_id,)
        ).fetchone()
        return int(row[0])

    def status_of(self, run_id: str) -> str | None:
        row = self.conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row[0] if row else None

    def knowledge_entries(self, *, superseded: bool = False) -> list[knowledge.Entry]:
        return knowledge.entries(self.conn, superseded=superseded)

    def knowledge_uses(self) -> dict[int, list[EntryUse]]:
        """Entry id → the runs it was given to, newest first."""
        rows = self.conn.execute(
            "SELECT u.entry_id, u.run_id, u.role, u.at, r.status FROM knowledge_uses u"
            " LEFT JOIN runs r ON r.id = u.run_id ORDER BY u.at DESC"
        )
        out: dict[int, list[EntryUse]] = {}
        for r in rows:
            use = EntryUse(run_id=r["run_id"], role=r["role"], at=r["at"], run_status=r["status"])
            out.setdefault(r["entry_id"], []).append(use)
        return out

    def recent_verifies(self, limit: int = 200) -> list[VerifyRow]:
        """The newest verifies of runs, newest first."""
        rows = self.conn.execute(
            "SELECT run_id, verify_id, MAX(attempt) AS attempt,"
            " json_group_array(json_array(gate, status)) AS gates, MAX(rowid) AS last"
            " FROM gate_results GROUP BY run_id, verify_id ORDER BY last DESC LIMIT ?",
            (limit,),
        )
        return [
            VerifyRow(
                run_id=r["run_id"],
                verify_id=r["verify_id"],
                attempt=r["attempt"],
                gates=tuple((g, s) for g, s in json.loads(r["gates"])),
            )  # fmt: skip
            for r in rows
        ]

    def run_times(self) -> dict[str, float]:
        """Run id → when it started, for every run."""
        return {r[0]: r[1] for r in self.conn.execute("SELECT id, created_at FROM runs")}


def _where(query: RunQuery) -> tuple[str, tuple[Any, ...]]:
    clauses: list[str] = []
    args: list[Any] = []
    if query.status:
        clauses.append("status = ?")
        args.append(query.status)
    if query.since is not None:
        clauses.append("created_at >= ?")
        args.append(query.since)
    if query.until is not None:
        clauses.append("created_at < ?")
        args.append(query.until)
    for word in query.words[:MAX_WORDS]:
        clauses.append("task LIKE ? ESCAPE '\\'")
        args.append(f"%{like_escaped(word)}%")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)


def batch_rows(folder: Path) -> list[TaskRow]:
    """The newest row of each task of a ``shipyard batch --out`` folder, read with
    ``mode=ro`` (``store/batchdb.py``)."""
    from shipyard.store.batchdb import BATCH_DB, NEWEST_ROWS

    path = folder / BATCH_DB
    if not path.is_file():
        raise InputError(f"{path}: no batch database here (run `shipyard batch`)")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        conn.row_factory = sqlite3.Row
        try:
            from shipyard.store.batchdb import TaskRow

            return [TaskRow(**dict(r)) for r in conn.execute(NEWEST_ROWS)]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise EnvironmentProblem(f"{path}: cannot read the batch database ({exc})") from exc
