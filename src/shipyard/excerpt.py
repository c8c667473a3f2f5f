"""Excerpts of output that keep the decisive line: a traceback's last exception line, a test
runner's own assertion or error line. A tail or a head cut at a fixed size drops it too often
(``db.execute(`` shown, ``sqlite3.OperationalError: no such table: user`` not)."""

from __future__ import annotations

import re

DECISIVE = (
    re.compile(r"^E\s{2,}\S"),  # pytest's error lines
    re.compile(r"^\s*(?:Uncaught )?[\w.$]*(?:Error|Exception|Exit|Interrupt)\b(?:\s*\[\w+\])?: \S"),
    re.compile(r"^\s*(?:Uncaught )?[\w.$]*(?:Error|Exception)$"),
    re.compile(r"^\s*(?:AssertionError|assert )"),
    re.compile(r"validation errors? for |is not an allowed value|\bfield required\b"),
)
"""Lines that say what went wrong: ``E   assert 1 == 2``, ``ValueError: bad``,
``Error: Cannot find module 'after'``, ``AssertionError [ERR_ASSERTION]: …``."""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MAX_LINE = 300


def decisive_line(text: str) -> str | None:
    """The last line of ``text`` that names an exception or a failed assertion, stripped."""
    lines = ANSI.sub("", text).splitlines()
    for index in range(len(lines) - 1, -1, -1):
        while index > 0 and lines[index].startswith("E ") and lines[index - 1].startswith("E "):
            index -= 1  # pytest's E block: its first line says it, the rest explain
        line = lines[index]
        for pattern in DECISIVE:
            if (found := pattern.search(line)) is not None:
                line = line.strip()
                if len(line) > MAX_LINE and found.start() > MAX_LINE // 3:
                    line = "..." + line[max(0, found.start() - 40) :]
                return _short(line)
    return None


def tail(text: str, lines: int = 8) -> str:
    """The last ``lines`` lines; the decisive line first when it is further up."""
    all_lines = ANSI.sub("", text).splitlines()
    shown = all_lines[-lines:]
    line = decisive_line(text)
    if line is not None and not any(line in _short(s.strip()) for s in shown):
        shown = [line, "...", *shown]
    return "\n".join(shown)


def head(text: str, limit: int = 300) -> str:
    """The first ``limit`` characters; the decisive line after them when it is further on."""
    if len(text) <= limit:
        return text
    line = decisive_line(text[limit:])
    return text[:limit] + "..." + (f" {line}" if line else "")


def first_and_decisive(text: str) -> str:
    """A message's first line, and its decisive line when that is another one."""
    lines = text.strip().splitlines()
    if not lines:
        return ""
    first = _short(lines[0].strip())
    line = decisive_line("\n".join(lines[1:]))
    if line is None or line.removeprefix("E ").strip() in first:
        return first
    return f"{first} ... {line}"


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, keeping its decisive line when the cut drops it."""
    if len(text) <= limit:
        return text
    line = decisive_line(text[limit:])
    if line is None:
        return text[:limit]
    return text[: max(0, limit - len(line) - 5)] + " ... " + line


def _short(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."
