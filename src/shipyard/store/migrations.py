"""Numbered schema migrations. Append only: a released migration is never edited.

``PRAGMA user_version`` holds the number of the last one applied; :func:`shipyard.store.db.open_db`
applies the rest, each in its own transaction.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: the ledger of runs
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        task TEXT NOT NULL,
        status TEXT NOT NULL,            -- running | paused | shipped | blocked
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        base_sha TEXT NOT NULL,
        branch TEXT NOT NULL,
        worktree TEXT NOT NULL,
        spec_hash TEXT,
        state TEXT NOT NULL,             -- JSON: where the run is (shipyard.loop.state.RunState)
        options TEXT NOT NULL,           -- JSON: what the run was started with
        pid INTEGER,                     -- the process working on it, while one is
        reason TEXT                      -- why it is paused or blocked
    );
    CREATE TABLE attempts (
        run_id TEXT NOT NULL REFERENCES runs(id),
        n INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        outcome TEXT,                    -- verified | failed | changes | loop | ...
        detail TEXT,
        PRIMARY KEY (run_id, n)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id),
        at REAL NOT NULL,
        attempt INTEGER NOT NULL,
        kind TEXT NOT NULL,
        summary TEXT NOT NULL,
        data TEXT                        -- JSON
    );
    CREATE INDEX events_by_run ON events(run_id, id);
    CREATE TABLE gate_results (
        run_id TEXT NOT NULL REFERENCES runs(id),
        attempt INTEGER NOT NULL,
        verify_id TEXT NOT NULL,
        gate TEXT NOT NULL,
        status TEXT NOT NULL,
        data TEXT NOT NULL,              -- JSON: GateResult.to_json()
        PRIMARY KEY (run_id, verify_id, gate)
    );
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id),
        attempt INTEGER NOT NULL,
        role TEXT NOT NULL,
        model TEXT NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cost REAL,                       -- US dollars, where the provider reports a price
        at REAL NOT NULL
    );
    CREATE INDEX usage_by_run ON usage(run_id);
    CREATE TABLE messages (
        run_id TEXT NOT NULL REFERENCES runs(id),
        conversation TEXT NOT NULL,      -- planner | implementer | reviewer-3 | diagnoser-2 ...
        seq INTEGER NOT NULL,
        data TEXT NOT NULL,              -- JSON: one pydantic-ai ModelMessage
        PRIMARY KEY (run_id, conversation, seq)
    );
    """,
)
