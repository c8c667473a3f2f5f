"""The ledger: runs, attempts, events, gate results, usage and model messages.

Every step of a run is written in one transaction (:meth:`Ledger.commit`) before the next step
begins, so ``kill -9`` at any moment leaves the run at the end of its last completed step.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.exceptions import RunBusy, RunNotFound
from shipyard.loop.state import RunState
from shipyard.store import knowledge
from shipyard.store.db import db_path, like_escaped, open_db


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: str
    summary: str
    data: dict[str, Any] | None = None
    attempt: int | None = None
    at: float | None = None
    id: int | None = None


@dataclass(frozen=True, kw_only=True)
class UsageRow:
    role: str
    model: str
    input_tokens: int
    output_tokens: int
    cost: float | None = None


@dataclass(kw_only=True)
class Step:
    """What one step writes, all at once."""

    events: list[Event] = field(default_factory=list)
    messages: list[tuple[str, str]] = field(default_factory=list)
    """(conversation, one ModelMessage as JSON)."""
    usage: list[UsageRow] = field(default_factory=list)
    gates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(verify id, GateResult.to_json()) for each gate."""
    attempt_started: bool = False
    attempt_outcome: tuple[str, str] | None = None
    """(outcome, detail) ending the current attempt."""
    spec_hash: str | None = None
    knowledge: list[knowledge.Entry] = field(default_factory=list)
    """Knowledge learned by this step (merged and superseded as it is written)."""
    uses: list[tuple[str, list[int]]] = field(default_factory=list)
    """(role, ids of the knowledge entries it was given)."""

    def event(self, kind: str, summary: str, **data: Any) -> None:
        self.events.append(Event(kind=kind, summary=summary, data=data or None))


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    id: str
    task: str
    status: str
    created_at: float
    updated_at: float
    base_sha: str
    branch: str
    worktree: str
    spec_hash: str | None
    state: RunState
    options: dict[str, Any]
    pid: int | None
    reason: str | None


class Ledger:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, project: Path) -> Ledger:
        return cls(open_db(db_path(project)))

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- runs ----------------------------------------------------------------------------------

    def create_run(
        self, *, run_id: str, task: str, base_sha: str, branch: str, worktree: str,
        options: dict[str, Any], state: RunState, spec_hash: str | None = None,
        events: Sequence[Event] = (),
    ) -> None:  # fmt: skip
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (id, task, status, created_at, updated_at, base_sha, branch,"
                " worktree, spec_hash, state, options, pid)"
                " VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, task, now, now, base_sha, branch, worktree, spec_hash,
                 state.model_dump_json(), json.dumps(options), os.getpid()),
            )  # fmt: skip
            self._insert_event(db, run_id, 1, Event(kind="run", summary=f"run started: {task}"))
            for event in events:
                self._insert_event(db, run_id, 1, event, now)

    def run(self, run_id: str) -> RunRecord:
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            row = self._by_prefix(run_id)
        return _record(row)

    def _by_prefix(self, prefix: str) -> sqlite3.Row:
        rows = self.conn.execute(
            "SELECT * FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY created_at",
            (like_escaped(prefix) + "%",),
        ).fetchall()
        if len(rows) == 1:
            return rows[0]
        if not rows:
            raise RunNotFound(f"no run {prefix!r} in this project's ledger (see `shipyard status`)")
        raise RunNotFound(f"{prefix!r} names {len(rows)} runs; give more of the id")

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        sql = "SELECT * FROM runs ORDER BY created_at DESC"
        rows = self.conn.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
        return [_record(r) for r in rows]

    def claim(self, run_id: str) -> None:
        """Mark this process as the one working on the run; RunBusy if another live one is."""
        with self.transaction() as db:
            row = db.execute("SELECT pid FROM runs WHERE id = ?", (run_id,)).fetchone()
            pid = row["pid"] if row else None
            if pid and pid != os.getpid() and alive(pid):
                raise RunBusy(f"run {run_id} is being worked on by process {pid}")
            db.execute(
                "UPDATE runs SET pid = ?, status = 'running', updated_at = ? WHERE id = ?",
                (os.getpid(), time.time(), run_id),
            )

    def release(self, run_id: str, status: str, reason: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET pid = NULL, status = ?, reason = ?, updated_at = ? WHERE id = ?",
                (status, reason, time.time(), run_id),
            )

    # -- steps ---------------------------------------------------------------------------------

    def commit(
        self, run_id: str, state: RunState, step: Step, *, attempt: int | None = None
    ) -> None:
        """Write one step and the state after it, in one transaction. ``attempt``: the attempt
        the step belongs to (default: the state's, which a step ending an attempt has moved on)."""
        now = time.time()
        status = state.stage if state.stage in ("shipped", "blocked") else "running"
        with self.transaction() as db:
            attempt = attempt or state.attempt
            if step.attempt_outcome is None and state.stage == "blocked":
                step.attempt_outcome = ("blocked", state.reason or "")
            if step.attempt_outcome is not None:  # closes the attempt that was open
                db.execute(
                    "UPDATE attempts SET ended_at = ?, outcome = ?, detail = ?"
                    " WHERE run_id = ? AND ended_at IS NULL",
                    (now, *step.attempt_outcome, run_id),
                )
            if step.attempt_started:
                db.execute(
                    "INSERT OR IGNORE INTO attempts (run_id, n, started_at) VALUES (?, ?, ?)",
                    (run_id, attempt, now),
                )
            for event in step.events:
                self._insert_event(db, run_id, event.attempt or attempt, event, now)
            for conversation, data in step.messages:
                db.execute(
                    "INSERT INTO messages (run_id, conversation, seq, data) VALUES (?, ?,"
                    " (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages"
                    "  WHERE run_id = ? AND conversation = ?), ?)",
                    (run_id, conversation, run_id, conversation, data),
                )
            for u in step.usage:
                db.execute(
                    "INSERT INTO usage (run_id, attempt, role, model, input_tokens, output_tokens,"
                    " cost, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        attempt,
                        u.role,
                        u.model,
                        u.input_tokens,
                        u.output_tokens,
                        u.cost,
                        now,
                    ),
                )
            knowledge.write(db, step.knowledge, now)
            for role, ids in step.uses:
                knowledge.mark_used(db, run_id, role, ids, now)
            if status == "shipped":
                knowledge.mark_helped(db, run_id)
            for verify_id, gate in step.gates:
                db.execute(
                    "INSERT OR REPLACE INTO gate_results (run_id, attempt, verify_id, gate, status,"
                    " data) VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, attempt, verify_id, gate["name"], gate["status"], json.dumps(gate)),
                )
            db.execute(
                "UPDATE runs SET state = ?, status = ?, updated_at = ?, reason = ?,"
                " spec_hash = COALESCE(?, spec_hash) WHERE id = ?",
                (state.model_dump_json(), status, now, state.reason, step.spec_hash, run_id),
            )

    @staticmethod
    def _insert_event(
        db: sqlite3.Connection, run_id: str, attempt: int, event: Event, now: float | None = None
    ) -> None:
        db.execute(
            "INSERT INTO events (run_id, at, attempt, kind, summary, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, now or time.time(), attempt, event.kind, event.summary,
             json.dumps(event.data, default=str) if event.data else None),
        )  # fmt: skip

    # -- reading -------------------------------------------------------------------------------

    def messages(self, run_id: str, conversation: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT data FROM messages WHERE run_id = ? AND conversation = ? ORDER BY seq",
            (run_id, conversation),
        )
        return [r[0] for r in rows]

    def messages_of_role(self, run_id: str, role: str) -> list[str]:
        """Every message of the role's conversations (``reviewer``, ``reviewer-2``, ...)."""
        rows = self.conn.execute(
            "SELECT data FROM messages WHERE run_id = ? AND (conversation = ?"
            " OR conversation LIKE ?) ORDER BY rowid",
            (run_id, role, f"{role}-%"),
        )
        return [r[0] for r in rows]

    def events(self, run_id: str, *, after: int = 0) -> list[Event]:
        rows = self.conn.execute(
            "SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id", (run_id, after)
        )
        return [
            Event(
                id=r["id"],
                at=r["at"],
                attempt=r["attempt"],
                kind=r["kind"],
                summary=r["summary"],
                data=json.loads(r["data"]) if r["data"] else None,
            )  # fmt: skip
            for r in rows
        ]

    def gate_rows(self, run_id: str | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM gate_results"
        args: Sequence[str] = ()
        if run_id is not None:
            sql, args = sql + " WHERE run_id = ?", (run_id,)
        return self.conn.execute(sql + " ORDER BY rowid", args).fetchall()


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"], task=row["task"], status=row["status"], created_at=row["created_at"],
        updated_at=row["updated_at"], base_sha=row["base_sha"], branch=row["branch"],
        worktree=row["worktree"], spec_hash=row["spec_hash"],
        state=RunState.model_validate_json(row["state"]), options=json.loads(row["options"]),
        pid=row["pid"], reason=row["reason"],
    )  # fmt: skip


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie or a reused pid that is not a shipyard process does not hold the run
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return b"shipyard" in cmdline and ") Z " not in stat
