"""The batch database: one row per task of a suite, under ``shipyard batch --out DIR``.

    tasks(task_id, digest, outcome, attempts, tokens, seconds, run_id, exit_code, reason,
          evidence, finished_at)   primary key (task_id, digest)

A row is written once its task has an outcome, in one transaction; a task with no row has not
finished (it was queued, running, or the driver stopped). ``digest`` is the task's own digest
(``batch/suite.py``), so an edited task is a new row and an unchanged one is skipped.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from shipyard.exceptions import EnvironmentProblem

BATCH_DB = "batch.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT NOT NULL, digest TEXT NOT NULL, outcome TEXT NOT NULL
        CHECK (outcome IN ('shipped', 'blocked', 'error')),
    attempts INTEGER, tokens INTEGER, seconds REAL NOT NULL, run_id TEXT, exit_code INTEGER,
    reason TEXT NOT NULL, evidence TEXT, finished_at TEXT NOT NULL,
    PRIMARY KEY (task_id, digest)
)
"""
FINISHED = ("shipped", "blocked")
NEWEST_ROWS = (
    "SELECT * FROM tasks t WHERE rowid = (SELECT MAX(rowid) FROM tasks "
    "WHERE task_id = t.task_id) ORDER BY rowid"
)


@dataclass(frozen=True, kw_only=True)
class TaskRow:
    task_id: str
    digest: str
    outcome: str
    attempts: int | None
    tokens: int | None
    seconds: float
    run_id: str | None
    exit_code: int | None
    reason: str
    evidence: str | None
    finished_at: str = ""


class BatchDB:
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, out: Path, *, create: bool = True) -> BatchDB:
        path = out / BATCH_DB
        if not create and not path.is_file():
            raise EnvironmentProblem(f"{path}: no batch database here (run `shipyard batch`)")
        out.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise EnvironmentProblem(
                f"{path}: the batch database is damaged ({exc}); move it aside to start afresh"
            ) from exc
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    def finished(self) -> set[tuple[str, str]]:
        """(task id, digest) of every task that reached shipped or blocked."""
        rows = self.conn.execute(
            "SELECT task_id, digest FROM tasks WHERE outcome IN (?, ?)", FINISHED
        )
        return {(r["task_id"], r["digest"]) for r in rows}

    def record(self, row: TaskRow) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row.task_id, row.digest, row.outcome, row.attempts, row.tokens, row.seconds,
                 row.run_id, row.exit_code, row.reason, row.evidence, stamp),
            )  # fmt: skip

    def rows(self) -> list[TaskRow]:
        """The newest row of each task id, in the order they finished."""
        found = self.conn.execute(NEWEST_ROWS)
        return [TaskRow(**dict(r)) for r in found]
