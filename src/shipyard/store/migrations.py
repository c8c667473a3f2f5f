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
    # 2: the project's knowledge
    """
    CREATE TABLE knowledge (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,              -- command decision pitfall convention fact finding
        key TEXT NOT NULL,               -- same kind and key: the same subject
        digest TEXT NOT NULL,            -- of the normalised text: a duplicate has the same
        text TEXT NOT NULL,
        topic TEXT,                      -- a pitfall: "gate|check|kind" of its failure
        data TEXT,                       -- JSON, by kind (a pitfall's failure)
        run_id TEXT,                     -- where it came from
        role TEXT NOT NULL,              -- gates | planner | diagnoser | reviewer | docs | user
        evidence TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        last_used REAL,
        used INTEGER NOT NULL DEFAULT 0,     -- runs it was given to
        helped INTEGER NOT NULL DEFAULT 0,   -- of those, runs that shipped
        seen INTEGER NOT NULL DEFAULT 1,     -- times it was learned (duplicates merged into it)
        superseded_by INTEGER            -- the newer entry that replaced it
    );
    CREATE UNIQUE INDEX knowledge_current ON knowledge(kind, key) WHERE superseded_by IS NULL;
    CREATE INDEX knowledge_digest ON knowledge(kind, digest) WHERE superseded_by IS NULL;
    CREATE INDEX knowledge_topic ON knowledge(topic) WHERE topic IS NOT NULL;
    CREATE INDEX knowledge_rank ON knowledge(kind, helped DESC, used DESC, id DESC)
        WHERE superseded_by IS NULL;
    CREATE VIRTUAL TABLE knowledge_fts USING fts5(
        text, key, content='knowledge', content_rowid='id', tokenize='porter unicode61'
    );
    CREATE TRIGGER knowledge_added AFTER INSERT ON knowledge BEGIN
        INSERT INTO knowledge_fts(rowid, text, key) VALUES (new.id, new.text, new.key);
    END;
    CREATE TRIGGER knowledge_deleted AFTER DELETE ON knowledge BEGIN
        INSERT INTO knowledge_fts(knowledge_fts, rowid, text, key)
            VALUES ('delete', old.id, old.text, old.key);
    END;
    CREATE TRIGGER knowledge_changed AFTER UPDATE OF text, key ON knowledge BEGIN
        INSERT INTO knowledge_fts(knowledge_fts, rowid, text, key)
            VALUES ('delete', old.id, old.text, old.key);
        INSERT INTO knowledge_fts(rowid, text, key) VALUES (new.id, new.text, new.key);
    END;
    CREATE TABLE knowledge_uses (
        run_id TEXT NOT NULL,
        entry_id INTEGER NOT NULL,       -- kept when the entry is forgotten: stats stay true
        role TEXT NOT NULL,              -- planner | implementer | reviewer | diagnoser
        at REAL NOT NULL,
        PRIMARY KEY (run_id, entry_id, role)
    );
    CREATE INDEX knowledge_uses_by_entry ON knowledge_uses(entry_id);
    CREATE TABLE knowledge_sources (
        path TEXT PRIMARY KEY,           -- an instruction file read as conventions (AGENTS.md)
        digest TEXT NOT NULL
    );
    """,
    # 3: tokens an implementer did not report are unknown (NULL), not 0
    """
    CREATE TABLE usage_new (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id),
        attempt INTEGER NOT NULL,
        role TEXT NOT NULL,
        model TEXT NOT NULL,
        input_tokens INTEGER,            -- NULL: not reported
        output_tokens INTEGER,           -- NULL: not reported
        cost REAL,                       -- US dollars, where the provider reports a price
        at REAL NOT NULL
    );
    INSERT INTO usage_new SELECT id, run_id, attempt, role, model, input_tokens, output_tokens,
        cost, at FROM usage;
    DROP TABLE usage;
    ALTER TABLE usage_new RENAME TO usage;
    CREATE INDEX usage_by_run ON usage(run_id);
    """,
)
