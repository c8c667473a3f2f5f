"""The Flask application: a JSON API over SQLite and the static page at ``/``."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request

SCHEMA = """
CREATE TABLE IF NOT EXISTS todos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0
)
"""

bp = Blueprint("todos", __name__)


def create_app(db_path: str | os.PathLike[str] | None = None) -> Flask:
    """The app, storing todos in ``db_path`` (default: ``$TODO_DB``, else ``todo.db`` here)."""
    app = Flask(__name__)
    app.config["TODO_DB"] = os.fspath(db_path or os.environ.get("TODO_DB", "todo.db"))
    with closing(sqlite3.connect(app.config["TODO_DB"])) as db:
        db.execute(SCHEMA)
    app.register_blueprint(bp)
    app.teardown_appcontext(_close_db)
    return app


def _db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["TODO_DB"])
        g.db.row_factory = sqlite3.Row
    return g.db


def _close_db(_exc: BaseException | None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def _as_json(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "title": row["title"], "completed": bool(row["completed"])}


def _error(message: str, status: int) -> tuple[Any, int]:
    return jsonify(error=message), status


def _find(todo_id: int) -> sqlite3.Row | None:
    return _db().execute("SELECT * FROM todos WHERE id = ?", (todo_id,)).fetchone()


def _title(value: object) -> str | None:
    """The stripped title, or None when it is not a non-blank string."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


@bp.get("/")
def index() -> Any:
    return current_app.send_static_file("index.html")


@bp.get("/healthz")
def healthz() -> Any:
    return jsonify(ok=True)


@bp.get("/api/todos")
def list_todos() -> Any:
    rows = _db().execute("SELECT * FROM todos ORDER BY id DESC").fetchall()
    return jsonify([_as_json(row) for row in rows])


@bp.post("/api/todos")
def create_todo() -> Any:
    data = request.get_json(silent=True)
    title = _title(data.get("title")) if isinstance(data, dict) else None
    if title is None:
        return _error("title is required and must not be blank", 400)
    db = _db()
    with db:
        cursor = db.execute("INSERT INTO todos (title) VALUES (?)", (title,))
    return jsonify(_as_json(_find(cursor.lastrowid))), 201


@bp.get("/api/todos/<int:todo_id>")
def get_todo(todo_id: int) -> Any:
    row = _find(todo_id)
    if row is None:
        return _error(f"no todo with id {todo_id}", 404)
    return jsonify(_as_json(row))


@bp.patch("/api/todos/<int:todo_id>")
def update_todo(todo_id: int) -> Any:
    if _find(todo_id) is None:
        return _error(f"no todo with id {todo_id}", 404)
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not {"title", "completed"} & data.keys():
        return _error("send completed (true or false) and/or title", 400)
    changes: dict[str, Any] = {}
    if "completed" in data:
        if not isinstance(data["completed"], bool):
            return _error("completed must be true or false", 400)
        changes["completed"] = int(data["completed"])
    if "title" in data:
        if (title := _title(data["title"])) is None:
            return _error("title must not be blank", 400)
        changes["title"] = title
    assignments = ", ".join(f"{column} = ?" for column in changes)
    db = _db()
    with db:
        db.execute(f"UPDATE todos SET {assignments} WHERE id = ?", (*changes.values(), todo_id))
    return jsonify(_as_json(_find(todo_id)))


@bp.delete("/api/todos/<int:todo_id>")
def delete_todo(todo_id: int) -> Any:
    db = _db()
    with db:
        deleted = db.execute("DELETE FROM todos WHERE id = ?", (todo_id,)).rowcount
    if not deleted:
        return _error(f"no todo with id {todo_id}", 404)
    return "", 204
