"""Durable state: one SQLite database per project, ``.shipyard/shipyard.db``."""
