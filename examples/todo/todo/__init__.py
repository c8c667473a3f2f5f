"""A small todo list: a JSON API and a plain-JavaScript page, served by Flask over SQLite."""

from todo.app import create_app

__all__ = ["create_app"]
