"""The project's knowledge: what earlier runs learned, kept in ``shipyard.db`` with full-text
search (SQLite FTS5), and handed to every role within a token budget.

Kinds: *command* (a command a gate ran and that worked), *decision* (the planner's design
choices), *pitfall* (a failure, its diagnosed cause and the fix that then passed), *convention*
(the project's instruction files; review findings that recurred), *fact* (added by a person),
and *finding* (a review finding seen once: it becomes a convention when another run repeats it;
never handed to a role).

Writing: an entry with the kind and normalised text of a current one is merged into it (seen
+1); one with the kind and key of a current one but other text supersedes it (the old one stays,
marked, and is no longer handed out). Every write runs inside the caller's transaction, so
concurrent runs serialise on SQLite's write lock and lose nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeGuard

Kind = Literal["command", "decision", "pitfall", "convention", "fact", "finding"]
KINDS: tuple[Kind, ...] = ("command", "decision", "pitfall", "convention", "fact", "finding")
HANDED = ("command", "convention", "pitfall", "decision", "fact")
"""The kinds roles are given; a finding waits to recur."""
ALWAYS = ("command", "convention")
"""Given first, whatever the task: verified commands and the project's conventions."""
ALWAYS_CANDIDATES = 200
RANKED_CANDIDATES = 60
STANDING_SHARE = 0.5
"""Of the budget left after commands, the most that conventions take while entries ranked for
the task wait (what those leave goes back to the conventions): a few hundred conventions must not
crowd out the pitfalls of the task."""
COMMON_TERM = 1000
"""A query word in this many entries or more is common: searched for only when no word is rarer,
and then among the newest COMMON_TERM entries."""
RANKED_ROWS = 2000
"""About the most entries one search ranks (counted once per word): the rarest words are kept
while their entries add up to no more (the rarest one always), which bounds a search's time on a
large store."""
RECUR_SIMILARITY = 0.5
"""Word overlap (Jaccard) at which a review finding counts as the same finding again."""
NEAR_PITFALL = 0.5
"""Word overlap at which a failure of the same check and kind matches a known pitfall."""
_STOP = (
    "the and for with that this from into are was were has have had not but its it's our you "
    "your can will would should must may when then than them they there their what which who "
    "how all any each one two use used using does did done been being also only more most "
    "such very just over under out off per via"
)
STOPWORDS = frozenset(_STOP.split())
MAX_QUERY_TERMS = 24


def is_kind(value: str) -> TypeGuard[Kind]:
    return value in KINDS


@dataclass(frozen=True, kw_only=True)
class Entry:
    kind: Kind
    text: str
    key: str = ""
    """What makes two entries the same subject; default: the normalised text."""
    role: str = "user"
    run_id: str | None = None
    evidence: str | None = None
    topic: str | None = None
    data: dict[str, Any] | None = None
    id: int | None = None
    created_at: float | None = None
    updated_at: float | None = None
    last_used: float | None = None
    used: int = 0
    helped: int = 0
    seen: int = 1
    superseded_by: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def subject(self) -> str:
        return self.key or digest(self.text)[:12]


@dataclass(frozen=True, kw_only=True)
class Written:
    """What a write did: ``added``, ``merged`` into an entry, ``superseded`` one, ``promoted``
    a finding to a convention, or ``ignored`` (a finding already seen in the same run)."""

    outcome: Literal["added", "merged", "superseded", "promoted", "ignored"]
    id: int
    replaced: int | None = None


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower().rstrip(".;:")


def digest(text: str) -> str:
    return hashlib.sha256(normalised(text).encode()).hexdigest()[:20]


def tokens(text: str) -> int:
    """A model's token count, estimated (about four characters a token)."""
    return len(text) // 4 + 1


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9_]+", text.lower()) if len(w) > 1}


def overlap(a: str, b: str) -> float:
    left, right = words(a), words(b)
    return len(left & right) / len(left | right) if left or right else 0.0


# -- writing --------------------------------------------------------------------------------------


def write(
    db: sqlite3.Connection, entries: Iterable[Entry], now: float | None = None, *,
    imported: bool = False,
) -> list[Written]:  # fmt: skip
    """Add entries, merging duplicates and superseding what they contradict. Call it inside a
    transaction (``BEGIN IMMEDIATE``): the reads and writes of a merge must not interleave.
    ``imported``: entries read back from an export keep their counts, and importing the same
    file twice changes nothing."""
    now = now or time.time()
    return [_write_one(db, entry, now, imported) for entry in entries]


def _write_one(db: sqlite3.Connection, entry: Entry, now: float, imported: bool) -> Written:
    if entry.kind not in KINDS:
        raise ValueError(f"unknown knowledge kind {entry.kind!r}")
    if entry.kind == "finding" and not imported:
        return _finding(db, entry, now)
    # a rule read from an instruction file is the file's: a person's entry or a run's with the
    # same text is kept apart (it would go with the rule when the file drops it)
    # (two lookups, each by its own index: one query with OR scans the kind)
    text = digest(entry.text)
    same = db.execute(
        "SELECT * FROM knowledge WHERE kind = ? AND digest = ? AND superseded_by IS NULL"
        " AND (role != 'docs' OR ? = 'docs') LIMIT 1",
        (entry.kind, text, entry.role),
    ).fetchone()
    if same is not None:
        _merge(db, same["id"], entry, now, imported)
        return Written(outcome="merged", id=same["id"])
    same = db.execute(
        "SELECT * FROM knowledge WHERE kind = ? AND key = ? AND superseded_by IS NULL",
        (entry.kind, entry.subject),
    ).fetchone()
    # exports keep times to the second: an entry edited in the file has the stored one's time
    if imported and same is not None and int(same["updated_at"]) > int(entry.updated_at or now):
        return Written(outcome="ignored", id=same["id"])  # the store's is newer: an old export
    new_id = _insert(db, entry, now, placeholder=same is not None)
    if same is None:
        return Written(outcome="added", id=new_id)
    db.execute("UPDATE knowledge SET superseded_by = ? WHERE id = ?", (new_id, same["id"]))
    db.execute("UPDATE knowledge SET superseded_by = NULL WHERE id = ?", (new_id,))
    return Written(outcome="superseded", id=new_id, replaced=same["id"])


def insert(db: sqlite3.Connection, entry: Entry, now: float | None = None) -> int:
    """Add an entry under its own key, merging nothing (the rules of instruction files)."""
    return _insert(db, entry, now or time.time(), placeholder=False)


def _insert(db: sqlite3.Connection, entry: Entry, now: float, *, placeholder: bool) -> int:
    """Insert; with ``placeholder`` the row starts marked (superseded_by 0) so that it does not
    clash with the current entry of its key until that one is marked superseded."""
    cursor = db.execute(
        "INSERT INTO knowledge (kind, key, digest, text, topic, data, run_id, role, evidence,"
        " created_at, updated_at, last_used, used, helped, seen, superseded_by)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.kind, entry.subject, digest(entry.text), entry.text, entry.topic,
            json.dumps(entry.data) if entry.data else None, entry.run_id, entry.role,
            entry.evidence, entry.created_at or now, entry.updated_at or now, entry.last_used,
            entry.used, entry.helped, entry.seen, 0 if placeholder else None,
        ),
    )  # fmt: skip
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _merge(db: sqlite3.Connection, entry_id: int, entry: Entry, now: float, imported: bool) -> None:
    """The same knowledge learned again: counted, and the newest source kept (read back from an
    export: the larger counts kept)."""
    seen = "MAX(seen, ?)" if imported else "seen + ?"
    updated = "MAX(updated_at, COALESCE(?, updated_at))" if imported else "?"
    db.execute(
        f"UPDATE knowledge SET seen = {seen}, updated_at = {updated}, run_id = COALESCE(?, run_id),"
        " evidence = COALESCE(?, evidence), used = MAX(used, ?), helped = MAX(helped, ?),"
        " last_used = NULLIF(MAX(COALESCE(last_used, 0), COALESCE(?, 0)), 0) WHERE id = ?",
        (entry.seen, entry.updated_at if imported else now, entry.run_id, entry.evidence,
         entry.used, entry.helped, entry.last_used, entry_id),
    )  # fmt: skip


def _finding(db: sqlite3.Connection, entry: Entry, now: float) -> Written:
    """A review finding: the same one from another run makes it a convention."""
    same = db.execute(
        "SELECT id FROM knowledge WHERE kind = 'convention' AND superseded_by IS NULL"
        " AND digest = ? AND role != 'docs'",
        (digest(entry.text),),
    ).fetchone()
    if same is not None:  # a convention already says it
        _merge(db, same["id"], entry, now, imported=False)
        return Written(outcome="merged", id=same["id"])
    from shipyard.store.knowledge_search import matching  # beside the other lookups

    for row in matching(db, entry.text, ("finding", "convention"), limit=10):
        if row["role"] != "reviewer" or overlap(row["text"], entry.text) < RECUR_SIMILARITY:
            continue
        if row["run_id"] == entry.run_id:
            return Written(outcome="ignored", id=row["id"])
        promote = row["kind"] == "finding"
        taken = db.execute(
            "SELECT id FROM knowledge WHERE kind = 'convention' AND key = ?"
            " AND superseded_by IS NULL",
            (row["key"],),
        ).fetchone()
        if promote and taken is not None:  # the finding's subject is a convention already
            _merge(db, taken["id"], entry, now, imported=False)
            db.execute("DELETE FROM knowledge WHERE id = ?", (row["id"],))
            return Written(outcome="merged", id=taken["id"])
        db.execute(
            "UPDATE knowledge SET seen = seen + 1, updated_at = ?, run_id = ?, kind = ?"
            " WHERE id = ?",
            (now, entry.run_id, "convention", row["id"]),
        )
        return Written(outcome="promoted" if promote else "merged", id=row["id"])
    return Written(outcome="added", id=_insert(db, entry, now, placeholder=False))


def mark_used(
    db: sqlite3.Connection, run_id: str, role: str, ids: Sequence[int], now: float
) -> None:
    """Record that a role of a run was given these entries (counted once per run)."""
    for entry_id in ids:
        fresh = db.execute(
            "INSERT OR IGNORE INTO knowledge_uses (run_id, entry_id, role, at)"
            " SELECT ?, id, ?, ? FROM knowledge WHERE id = ?",
            (run_id, role, now, entry_id),
        ).rowcount
        first_for_run = (
            fresh
            and db.execute(
                "SELECT COUNT(*) FROM knowledge_uses WHERE run_id = ? AND entry_id = ?",
                (run_id, entry_id),
            ).fetchone()[0]
            == 1
        )
        db.execute(
            "UPDATE knowledge SET last_used = ?, used = used + ? WHERE id = ?",
            (now, 1 if first_for_run else 0, entry_id),
        )


def mark_helped(db: sqlite3.Connection, run_id: str) -> None:
    """The run shipped: every entry it was given helped once more."""
    db.execute(
        "UPDATE knowledge SET helped = helped + 1 WHERE id IN"
        " (SELECT DISTINCT entry_id FROM knowledge_uses WHERE run_id = ?)",
        (run_id,),
    )


# -- reading --------------------------------------------------------------------------------------


def entry_of(row: sqlite3.Row) -> Entry:
    return Entry(
        id=row["id"], kind=row["kind"], key=row["key"], text=row["text"], topic=row["topic"],
        data=json.loads(row["data"]) if row["data"] else None, run_id=row["run_id"],
        role=row["role"], evidence=row["evidence"], created_at=row["created_at"],
        updated_at=row["updated_at"], last_used=row["last_used"], used=row["used"],
        helped=row["helped"], seen=row["seen"], superseded_by=row["superseded_by"],
    )  # fmt: skip


def entries(
    db: sqlite3.Connection, kind: str | None = None, *, superseded: bool = False
) -> list[Entry]:
    sql = "SELECT * FROM knowledge WHERE (? IS NULL OR kind = ?)"
    if not superseded:
        sql += " AND superseded_by IS NULL"
    rows = db.execute(sql + " ORDER BY kind, id", (kind, kind))
    return [entry_of(r) for r in rows]


def get(db: sqlite3.Connection, entry_id: int) -> Entry | None:
    row = db.execute("SELECT * FROM knowledge WHERE id = ?", (entry_id,)).fetchone()
    return entry_of(row) if row else None


def forget(db: sqlite3.Connection, entry_id: int) -> Entry | None:
    """Delete an entry and every entry it superseded, and they in turn (a chain of edits)."""
    found = get(db, entry_id)
    if found is not None:
        db.execute(
            "WITH RECURSIVE chain(id) AS (SELECT ? UNION"
            " SELECT k.id FROM knowledge k JOIN chain c ON k.superseded_by = c.id)"
            " DELETE FROM knowledge WHERE id IN (SELECT id FROM chain)",
            (entry_id,),
        )
    return found


# -- showing --------------------------------------------------------------------------------------


def line(entry: Entry) -> str:
    """One entry as a role sees it."""
    where = f"{entry.kind}" + (
        f" · {entry.evidence}" if entry.kind == "convention" and entry.evidence else ""
    )
    text = entry.text.strip()
    if entry.kind == "command":
        text = f"{entry.key}: `{text}`" + (
            f" (verified: {entry.evidence})" if entry.evidence else ""
        )
    return f"- [{where}] {text}"


def section(found: Sequence[Entry]) -> str:
    """The knowledge part of a role's instructions ('' when there is none)."""
    if not found:
        return ""
    lines = [
        "What is known about this project (its instruction files, and what earlier runs "
        "verified). Follow its conventions; use its verified commands; avoid its pitfalls:",
        *(line(e) for e in found),
    ]
    return "\n".join(lines)


# the lookups live beside the writes; imported last, as they use what is defined above
from shipyard.store.knowledge_search import (  # noqa: E402
    match_expression,
    pitfall_for,
    relevant,
    search,
)

__all__ = ["match_expression", "pitfall_for", "relevant", "search"]
