"""Open the project's database, applying migrations. The one way to get a connection."""

from __future__ import annotations

import atexit
import contextlib
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shipyard.evidence import state_dir
from shipyard.exceptions import EnvironmentProblem, LedgerDamaged
from shipyard.store.migrations import MIGRATIONS

DB_FILE = "shipyard.db"
BUSY_TIMEOUT_MS = 30_000
DAMAGE_CODES = (11, 26)
"""SQLITE_CORRUPT, SQLITE_NOTADB: the file is not (or no longer) a readable database."""


class _Connection(sqlite3.Connection):
    """A connection that can be held weakly (the base type cannot)."""


_OPEN: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
"""Connections still open: closed at exit, so that the WAL is folded into the database file
(the CLI spares the interpreter's last garbage collection, which would otherwise close them; a
copy of ``shipyard.db`` alone, as a batch packs it, then holds every row)."""


@atexit.register
def _close_all() -> None:
    for conn in list(_OPEN):
        # another thread's connection, or one already broken, stays: SQLite keeps its WAL
        with contextlib.suppress(sqlite3.Error):
            conn.close()


def db_path(project: Path) -> Path:
    return state_dir(project) / DB_FILE


def open_db(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, foreign keys on,
    migrated to the latest schema."""
    try:
        conn = sqlite3.connect(
            path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, factory=_Connection
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.row_factory = sqlite3.Row
        migrate(conn, path)
        _OPEN.add(conn)
    except sqlite3.DatabaseError as exc:
        raise damage(exc, path) or EnvironmentProblem(
            f"{path}: cannot open the database: {exc}"
        ) from exc
    return conn


def damage(exc: sqlite3.DatabaseError, path: Path) -> LedgerDamaged | None:
    """The error to show for a corrupt database file, or None for any other database error."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None or code & 0xFF not in DAMAGE_CODES:
        return None
    shown = _shown(path)
    return LedgerDamaged(
        f"the ledger is damaged: {shown} ({exc}). Move it aside to keep it "
        f"for a look, and the next command starts a new one: mv {shown} {shown}.damaged "
        f"(and its -wal and -shm files, if any); the runs' evidence stays in .shipyard/runs/"
    )


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. On a database file that several processes open at once, SQLite answers
    "database is locked" here at once instead of waiting: try again, within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def like_escaped(text: str) -> str:
    """``text`` for a ``LIKE ? ESCAPE '\\'`` pattern: its ``%`` and ``_`` taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def migrate(conn: sqlite3.Connection, path: Path | str = "database") -> int:
    """Apply the migrations not yet applied; returns the schema version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise EnvironmentProblem(
            f"{path}: schema version {version} is newer than this Shipyard knows "
            f"({len(MIGRATIONS)}); upgrade Shipyard"
        )
    for number in range(version + 1, len(MIGRATIONS) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # re-read inside the lock: another process may have migrated meanwhile
            if conn.execute("PRAGMA user_version").fetchone()[0] >= number:
                conn.execute("ROLLBACK")
                continue
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (``executescript`` would commit on its own)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def known_sum(column: str) -> str:
    """SQL for the sum of ``column`` AS ``column``: NULL when any row's value is unknown (NULL),
    so that an unreported count never reads as a smaller one."""
    return f"CASE WHEN COUNT({column}) = COUNT(*) THEN SUM({column}) END AS {column}"
