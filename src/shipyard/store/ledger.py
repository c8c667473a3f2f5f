"""The ledger: runs, attempts, events, gate results, usage and model messages.

Every step of a run is written in one transaction (:meth:`Ledger.commit`) before the next step
begins, so ``kill -9`` at any moment leaves the run at the end of its last completed step.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic

from shipyard.exceptions import RunBusy, RunNotFound
from shipyard.results import GateResult
from shipyard.store import knowledge
from shipyard.store.db import db_path, known_sum, like_escaped, open_db, transaction
from shipyard.store.figures import RunFigures, per_run
from shipyard.store.rows import (
    FINAL_STATUSES,
    AttemptRow,
    Event,
    GateRow,
    RoleUsage,
    RunRecord,
    S,
    SavedState,
    StepRecord,
    UsageRow,
)

__all__ = [
    "AttemptRow", "Event", "GateRow", "Ledger", "RoleUsage", "RunFigures", "RunRecord",
    "SavedState", "StepRecord", "UsageRow", "alive",
]  # fmt: skip


class Ledger(Generic[S]):
    """The runs of one project. ``load`` turns a run's saved state (JSON) back into its type."""

    def __init__(self, conn: sqlite3.Connection, load: Callable[[str], S]) -> None:
        self.conn = conn
        self.load = load

    @classmethod
    def open(cls, project: Path, load: Callable[[str], S]) -> Ledger[S]:
        return cls(open_db(db_path(project)), load)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with transaction(self.conn) as db:
            yield db

    # -- runs ----------------------------------------------------------------------------------

    def create_run(
        self, *, run_id: str, task: str, base_sha: str, branch: str, worktree: str,
        options: dict[str, Any], state: S, spec_hash: str | None = None,
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

    def run(self, run_id: str) -> RunRecord[S]:
        row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            row = self._by_prefix(run_id)
        return self._record(row)

    def _by_prefix(self, prefix: str) -> sqlite3.Row:
        rows: list[sqlite3.Row] = self.conn.execute(
            "SELECT * FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY created_at",
            (like_escaped(prefix) + "%",),
        ).fetchall()
        if len(rows) == 1:
            return rows[0]
        if not rows:
            raise RunNotFound(f"no run {prefix!r} in this project's ledger (see `shipyard status`)")
        raise RunNotFound(f"{prefix!r} names {len(rows)} runs; give more of the id")

    def runs(self, limit: int | None = None) -> list[RunRecord[S]]:
        sql = "SELECT * FROM runs ORDER BY created_at DESC"
        rows = self.conn.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
        return [self._record(r) for r in rows]

    def _record(self, row: sqlite3.Row) -> RunRecord[S]:
        return RunRecord(
            id=row["id"], task=row["task"], status=row["status"], created_at=row["created_at"],
            updated_at=row["updated_at"], base_sha=row["base_sha"], branch=row["branch"],
            worktree=row["worktree"], spec_hash=row["spec_hash"], state=self.load(row["state"]),
            options=json.loads(row["options"]), pid=row["pid"], reason=row["reason"],
        )  # fmt: skip

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
        self, run_id: str, state: S, step: StepRecord, *, attempt: int | None = None
    ) -> None:
        """Write one step and the state after it, in one transaction. ``attempt``: the attempt
        the step belongs to (default: the state's, which a step ending an attempt has moved on)."""
        now = time.time()
        status = state.stage if state.stage in FINAL_STATUSES else "running"
        attempt = attempt or state.attempt
        with self.transaction() as db:
            _write_attempt(db, run_id, attempt, step, now)
            for event in step.events:
                self._insert_event(db, run_id, event.attempt or attempt, event, now)
            _write_messages(db, run_id, step.messages)
            _write_usage(db, run_id, attempt, step.usage, now)
            knowledge.write(db, step.knowledge, now)
            for role, ids in step.uses:
                knowledge.mark_used(db, run_id, role, ids, now)
            if status == "shipped":
                knowledge.mark_helped(db, run_id)
            _write_gates(db, run_id, attempt, step.gates)
            db.execute(
                "UPDATE runs SET state = ?, status = ?, updated_at = ?, reason = ?,"
                " spec_hash = COALESCE(?, spec_hash) WHERE id = ?",
                (state.model_dump_json(), status, now, state.reason, step.spec_hash, run_id),
            )

    def note(self, run_id: str, attempt: int, events: list[Event]) -> None:
        """Events alone, with no change of state (what the end of a run cleaned up)."""
        with self.transaction() as db:
            for event in events:
                self._insert_event(db, run_id, event.attempt or attempt, event, time.time())

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

    def gate_rows(self, run_id: str | None = None) -> list[GateRow]:
        """Every gate of every verify (of one run), in the order written."""
        sql = "SELECT run_id, attempt, verify_id, data FROM gate_results"
        args: Sequence[str] = ()
        if run_id is not None:
            sql, args = sql + " WHERE run_id = ?", (run_id,)
        return [
            GateRow(run_id=r[0], attempt=r[1], verify_id=r[2],
                    result=GateResult.from_json(json.loads(r[3])))
            for r in self.conn.execute(sql + " ORDER BY rowid", args)
        ]  # fmt: skip

    def verify_gates(self, run_id: str, verify_id: str) -> list[GateResult]:
        """The gates of one verify of a run."""
        return [g.result for g in self.gate_rows(run_id) if g.verify_id == verify_id]

    def attempts(self, run_id: str) -> list[AttemptRow]:
        rows = self.conn.execute(
            "SELECT n, started_at, ended_at, outcome, detail FROM attempts WHERE run_id = ?"
            " ORDER BY n",
            (run_id,),
        )
        return [
            AttemptRow(n=n, started_at=s, ended_at=e, outcome=o, detail=d) for n, s, e, o, d in rows
        ]

    def usage_by_role(self, run_id: str) -> list[RoleUsage]:
        rows = self.conn.execute(
            f"SELECT role, model, {known_sum('input_tokens')}, {known_sum('output_tokens')}"
            " FROM usage WHERE run_id = ? GROUP BY role, model ORDER BY role",
            (run_id,),
        )
        return [RoleUsage(role=r, model=m, input_tokens=i, output_tokens=o) for r, m, i, o in rows]

    def run_figures(self) -> list[RunFigures]:
        """One row of delivery figures per run (``shipyard stats``)."""
        return per_run(self.conn)

    # -- knowledge -----------------------------------------------------------------------------

    def relevant(self, query: str, budget: int) -> list[knowledge.Entry]:
        return knowledge.relevant(self.conn, query, budget)

    def pitfall_for(self, fingerprint: str, topic: str, message: str) -> knowledge.Entry | None:
        return knowledge.pitfall_for(self.conn, fingerprint, topic, message)


def _write_attempt(
    db: sqlite3.Connection, run_id: str, attempt: int, step: StepRecord, now: float
) -> None:
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


def _write_messages(
    db: sqlite3.Connection, run_id: str, messages: Sequence[tuple[str, str]]
) -> None:
    for conversation, data in messages:
        db.execute(
            "INSERT INTO messages (run_id, conversation, seq, data) VALUES (?, ?,"
            " (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages"
            "  WHERE run_id = ? AND conversation = ?), ?)",
            (run_id, conversation, run_id, conversation, data),
        )


def _write_usage(
    db: sqlite3.Connection, run_id: str, attempt: int, usage: Sequence[UsageRow], now: float
) -> None:
    for u in usage:
        db.execute(
            "INSERT INTO usage (run_id, attempt, role, model, input_tokens, output_tokens,"
            " cost, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, attempt, u.role, u.model, u.input_tokens, u.output_tokens, u.cost, now),
        )


def _write_gates(
    db: sqlite3.Connection, run_id: str, attempt: int, gates: Sequence[tuple[str, dict[str, Any]]]
) -> None:
    for verify_id, gate in gates:
        db.execute(
            "INSERT OR REPLACE INTO gate_results (run_id, attempt, verify_id, gate, status,"
            " data) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, attempt, verify_id, gate["name"], gate["status"], json.dumps(gate)),
        )


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
