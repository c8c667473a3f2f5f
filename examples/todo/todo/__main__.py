"""``python -m todo --port PORT``: serve the todo app with Flask's built-in server."""

from __future__ import annotations

import argparse

from todo.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="todo",
        description="Serve the todo list: a JSON API under /api/todos and a page at /.",
        epilog="Todos are stored in the SQLite file named by $TODO_DB (default: ./todo.db).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (%(default)s)")
    args = parser.parse_args(argv)
    create_app().run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
