"""``shipyard memory``: the project's knowledge, listed, searched, added to, forgotten,
exported as Markdown and imported back.

Reading creates nothing: with no ``.shipyard/`` yet, the project's instruction files are read
into a database in memory. Exit codes: 0 done · 2 bad input (an unknown id, a malformed file).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from shipyard.cli_fail import WORKING, fail
from shipyard.exceptions import InputError, ShipyardError
from shipyard.store import knowledge
from shipyard.store.knowledge import Entry, Kind, is_kind
from shipyard.store.knowledge_md import DOC_KEY

T = TypeVar("T")
SCHEMA = "shipyard.memory/1"
USER_KINDS: tuple[Kind, ...] = ("fact", "convention", "decision")
"""What a person may add: commands are verified by the gates, pitfalls by a passing fix."""


@contextmanager
def _store(project: Path, *, write: bool) -> Iterator[sqlite3.Connection]:
    from shipyard.config import load_config
    from shipyard.store.db import DB_FILE, db_path, open_db
    from shipyard.store.knowledge_md import sync_docs

    project = project.resolve()
    if not project.is_dir():
        fail(InputError(f"{project}: no such folder", field="--project"))
    try:
        config = load_config(project, missing_ok=True)
        exists = (project / ".shipyard" / DB_FILE).is_file()
        conn = open_db(db_path(project) if write or exists else Path(":memory:"))
    except ShipyardError as exc:
        fail(exc, WORKING)
    try:
        if config.knowledge.enabled:
            _tx(conn, lambda db: sync_docs(db, project, config.knowledge.docs))
        yield conn
    finally:
        conn.close()


def _tx(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """``work`` in one write transaction (the ledger's own)."""
    from shipyard.store.db import transaction

    with transaction(conn) as db:
        return work(db)


def list_entries(project: Path, kind: str | None, every: bool, as_json: bool) -> None:
    if kind is not None and kind not in knowledge.KINDS:
        fail(
            InputError(
                f"unknown kind {kind!r} (one of {', '.join(knowledge.KINDS)})", field="--kind"
            )
        )
    with _store(project, write=False) as db:
        found = knowledge.entries(db, kind, superseded=every)
    _show(
        found,
        as_json,
        empty="no knowledge yet: runs add what they verify; `shipyard memory add` adds a fact",
    )


def search(project: Path, query: str, limit: int, as_json: bool) -> None:
    if knowledge.match_expression(query) is None:
        fail(InputError(f"{query!r} has no word to search for", field="QUERY"))
    with _store(project, write=False) as db:
        found = knowledge.search(db, query, limit)
    _show(found, as_json, empty=f"nothing matches {query!r}", query=query)


def add(project: Path, text: str, kind: str, key: str | None, as_json: bool) -> None:
    if not is_kind(kind) or kind not in USER_KINDS:
        why = "commands come from gates that ran them" if kind == "command" else ""
        why = why or ("pitfalls come from diagnoses whose fix passed" if kind == "pitfall" else "")
        fail(
            InputError(
                f"cannot add a {kind!r}: {why or 'unknown kind'};"
                f" add one of {', '.join(USER_KINDS)}",
                field="--kind",
            )
        )
    if not text.strip():
        fail(InputError("the text is empty", field="TEXT"))
    if (key or "").startswith(DOC_KEY):
        fail(
            InputError(f"keys starting with {DOC_KEY!r} belong to instruction files", field="--key")
        )
    entry = Entry(
        kind=kind, text=text.strip(), key=(key or "").strip(), role="user", evidence="added by hand"
    )
    with _store(project, write=True) as db:
        written = _tx(db, lambda d: knowledge.write(d, [entry]))[0]
        stored = knowledge.get(db, written.id)
    assert stored is not None
    if as_json:
        print(
            json.dumps(
                {
                    "schema": SCHEMA,
                    "outcome": written.outcome,
                    "replaced": written.replaced,
                    "entry": stored.to_json(),
                },
                indent=2,
            )
        )
        return
    extra = f" (supersedes #{written.replaced})" if written.replaced else ""
    print(f"{written.outcome} #{stored.id}{extra}: {_one(stored)}")


def forget(project: Path, entry_id: int, as_json: bool) -> None:
    with _store(project, write=True) as db:  # a rule of AGENTS.md is forgotten for good
        gone = _tx(db, lambda d: knowledge.forget(d, entry_id))
    if gone is None:
        fail(InputError(f"no knowledge entry #{entry_id} (see `shipyard memory list`)", field="ID"))
    if as_json:
        print(json.dumps({"schema": SCHEMA, "forgotten": gone.to_json()}, indent=2))
        return
    note = " (it comes back if its instruction file changes)" if gone.role == "docs" else ""
    print(f"forgot #{gone.id}: {_one(gone)}{note}")


def export(project: Path, output: Path | None) -> None:
    from shipyard.store.knowledge_md import export as to_markdown

    with _store(project, write=False) as db:
        text = to_markdown(knowledge.entries(db))
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text)
    print(f"wrote {output} ({text.count(chr(10) + '### ')} entries)", file=sys.stderr)


def import_file(project: Path, path: Path, as_json: bool) -> None:
    from shipyard.formats import read_text
    from shipyard.store.knowledge_md import parse

    try:
        found = parse(read_text(path, InputError), str(path))
    except ShipyardError as exc:
        fail(exc, WORKING)
    with _store(project, write=True) as db:
        written = _tx(db, lambda d: knowledge.write(d, found, time.time(), imported=True))
    counts = {
        o: sum(w.outcome == o for w in written)
        for o in ("added", "merged", "superseded", "ignored")
    }  # ignored: older than the store's entry of the same subject
    if as_json:
        print(
            json.dumps(
                {"schema": SCHEMA, "file": str(path), "entries": len(found), **counts}, indent=2
            )
        )
        return
    print(
        f"imported {len(found)} entries from {path}: "
        + ", ".join(f"{n} {o}" for o, n in counts.items())
    )


def _show(found: list[Entry], as_json: bool, *, empty: str, query: str | None = None) -> None:
    if as_json:
        doc: dict[str, Any] = {"schema": SCHEMA, "entries": [e.to_json() for e in found]}
        if query is not None:
            doc["query"] = query
        print(json.dumps(doc, indent=2))
        return
    if not found:
        print(empty)
        return
    for e in found:
        mark = f" superseded by #{e.superseded_by}" if e.superseded_by else ""
        print(f"#{e.id:<5} {e.kind:<10} {_one(e)}")
        source = " · ".join(x for x in (e.role, e.run_id, e.evidence) if x)
        print(f"       {source} · seen {e.seen} · used {e.used} · helped {e.helped}{mark}")


def _one(e: Entry, width: int = 110) -> str:
    text = " ".join(e.text.split())
    if e.kind == "command":
        text = f"{e.key}: {text}"
    return text if len(text) <= width else text[: width - 1] + "…"
