"""Finding the project's knowledge: full-text search (SQLite FTS5) over the entries, the ones
relevant to a task within a token budget, and the known pitfall for a failure. Writing, merging
and superseding stay in :mod:`shipyard.store.knowledge`, which re-exports these names."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence

from shipyard.store.knowledge import (
    ALWAYS,
    ALWAYS_CANDIDATES,
    COMMON_TERM,
    HANDED,
    KINDS,
    MAX_QUERY_TERMS,
    NEAR_PITFALL,
    RANKED_CANDIDATES,
    RANKED_ROWS,
    STANDING_SHARE,
    STOPWORDS,
    Entry,
    entry_of,
    line,
    overlap,
    tokens,
)


def search(db: sqlite3.Connection, query: str, limit: int = 20) -> list[Entry]:
    return [entry_of(r) for r in matching(db, query, KINDS, limit=limit)]


def match_expression(text: str) -> str | None:
    """An FTS5 query: the distinctive words of ``text``, any of them (ranked by bm25)."""
    terms = _terms(text)
    return " OR ".join(f'"{t}"' for t in terms) if terms else None


def _terms(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for word in re.findall(r"[^\W_]+", text.lower()):
        if len(word) > 2 and word not in STOPWORDS and not word.isdigit():
            seen.setdefault(word, None)
    return list(seen)[:MAX_QUERY_TERMS]


def matching(
    db: sqlite3.Connection, text: str, kinds: Sequence[str], limit: int
) -> list[sqlite3.Row]:
    """The current entries of these kinds that match ``text``, best first. On a store of more
    than RANKED_ROWS entries a search by every word would rank most of them: only the rarest
    words are searched for, and common words alone only among the newest COMMON_TERM entries."""
    terms = _terms(text)
    if not terms:
        return []
    newest = db.execute("SELECT COALESCE(MAX(id), 0) FROM knowledge").fetchone()[0]
    terms, after = _rarest(db, terms, newest) if newest > RANKED_ROWS else (terms, 0)
    marks = ",".join("?" * len(kinds))
    return db.execute(
        "SELECT k.* FROM knowledge_fts f JOIN knowledge k ON k.id = f.rowid"
        " WHERE knowledge_fts MATCH ? AND f.rowid > ? AND k.superseded_by IS NULL"
        f" AND k.kind IN ({marks}) ORDER BY bm25(knowledge_fts, 1.0, 0.5) LIMIT ?",
        (" OR ".join(f'"{t}"' for t in terms), after, *kinds, limit),
    ).fetchall()


def _rarest(db: sqlite3.Connection, terms: list[str], newest: int) -> tuple[list[str], int]:
    """The words to search for, rarest first while their entries add up to RANKED_ROWS (the
    rarest one always), and the id after which to search: 0, or when every word is common the
    id that leaves the newest COMMON_TERM entries."""
    counts = {t: _count(db, t) for t in terms}  # COMMON_TERM: that many or more
    terms = sorted(terms, key=counts.__getitem__)  # stable: the query's order among equals
    common = counts[terms[0]] >= COMMON_TERM
    kept, rows = terms[:1], counts[terms[0]]
    for term in terms[1:]:
        if rows + counts[term] > RANKED_ROWS or (counts[term] >= COMMON_TERM and not common):
            break
        kept.append(term)
        rows += counts[term]
    return kept, newest - COMMON_TERM if common else 0


def _count(db: sqlite3.Connection, term: str) -> int:
    """The entries with ``term``, counted up to COMMON_TERM (superseded ones and findings too)."""
    count: int = db.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM knowledge_fts WHERE knowledge_fts MATCH ? LIMIT ?)",
        (f'"{term}"', COMMON_TERM),
    ).fetchone()[0]
    return count


def relevant(db: sqlite3.Connection, query: str, budget: int) -> list[Entry]:
    """The entries to give a role whose task is ``query``, within ``budget`` tokens: verified
    commands and conventions first (those matching the query before the others), then
    pitfalls, decisions and facts by relevance. Commands are taken first; conventions then take
    at most STANDING_SHARE of what is left while ranked entries wait, and what those leave."""
    ranked = matching(db, query, HANDED, limit=RANKED_CANDIDATES)
    standing = db.execute(
        "SELECT * FROM knowledge WHERE kind IN ('command', 'convention')"
        " AND superseded_by IS NULL ORDER BY kind = 'convention', helped DESC, used DESC,"
        " id DESC LIMIT ?",
        (ALWAYS_CANDIDATES,),
    ).fetchall()
    commands = [r for r in (*ranked, *standing) if r["kind"] == "command"]
    conventions = [r for r in (*ranked, *standing) if r["kind"] == "convention"]
    rest = [r for r in ranked if r["kind"] not in ALWAYS]
    seen: dict[int, tuple[Entry, int]] = {}  # by id: the entry and its cost in tokens
    chosen: dict[str, int] = {}  # the same text is handed once (a rule of AGENTS.md and a
    # person's entry with its text are two entries); a command is its key and its text

    def fill(rows: Iterable[sqlite3.Row], room: int) -> int:
        """Choose the entries of ``rows`` that fit in ``room`` tokens, in order; the room left."""
        for row in rows:
            same = f"{row['key']}: {row['digest']}" if row["kind"] == "command" else row["digest"]
            if same in chosen:
                continue
            if row["id"] not in seen:
                entry = entry_of(row)
                seen[row["id"]] = entry, tokens(line(entry))
            if seen[row["id"]][1] <= room:
                chosen[same] = row["id"]
                room -= seen[row["id"]][1]
        return room

    left = fill(commands, budget)
    share = int(left * STANDING_SHARE) if rest else left
    left -= share - fill(conventions, share)
    fill(conventions, fill(rest, left))
    ids = set(chosen.values())
    order = {row["id"]: None for row in (*commands, *conventions, *rest) if row["id"] in ids}
    return [seen[i][0] for i in order]


def pitfall_for(db: sqlite3.Connection, fingerprint: str, topic: str, message: str) -> Entry | None:
    """The known pitfall of a failure: the same fingerprint, or the same gate, check and kind
    with a message that shares most of its words."""
    row = db.execute(
        "SELECT * FROM knowledge WHERE kind = 'pitfall' AND key = ? AND superseded_by IS NULL",
        (fingerprint,),
    ).fetchone()
    if row is not None:
        return entry_of(row)
    best: tuple[float, sqlite3.Row] | None = None
    for near in db.execute(
        "SELECT * FROM knowledge WHERE topic = ? AND kind = 'pitfall' AND superseded_by IS NULL"
        " ORDER BY id DESC LIMIT 50",
        (topic,),
    ):
        score = overlap((json.loads(near["data"] or "{}")).get("message", ""), message)
        if score >= NEAR_PITFALL and (best is None or score > best[0]):
            best = (score, near)
    return entry_of(best[1]) if best else None
