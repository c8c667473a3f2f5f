"""Errors nobody wrote a check for: in the app's own output, and in the page of a UI flow.

After every check the runtime gate reads the app's stdout and stderr from where it last
stopped. A traceback, an uncaught exception or a 5xx in an access-log line fails the check that
was running, so a handler that swallows an exception, logs it and still answers 200 surfaces.
The patterns are data: one row per (regex, what it is). ``PageErrors`` does the same for what a
browser page reports (described in ``browser.py``), with the flow's ``allow_errors``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Traceback \(most recent call last\)"), "a traceback"),
    (re.compile(r"\b(?:Uncaught|Unhandled)\w*\b"), "an uncaught exception"),
    (re.compile(r"^[\w.]*\w+(?:Error|Exception): "), "an uncaught exception"),
    (re.compile(r"^\s+at (?:.+ \()?\S+:\d+:\d+\)?$"), "a stack trace"),
    (
        re.compile(
            r"\b(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \S+(?: HTTP/[\d.]+\"?)? (5\d\d)\b"
        ),
        "an HTTP 5xx response",
    ),
)
"""(pattern, kind). A pattern with a group captures an HTTP status, which a check may expect."""

PAGE_IGNORED = (
    re.compile(r"/favicon\.ico\)?$"),  # the browser asks for it by itself
    re.compile(r"net::ERR_ABORTED"),  # a request a navigation cancelled
)
"""Page errors that are not the page's."""

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
"""Colour codes: Werkzeug, for one, colours its access log even into a file."""

MAX_QUOTED = 12
"""Lines quoted in a message."""
TRACEBACK_WAIT = 0.3
"""Seconds to wait for the rest of a traceback the app is still writing."""
MAX_READ = 1_000_000
"""Bytes read per scan; a flood of output is read in the next scans."""


@dataclass(frozen=True, kw_only=True)
class Finding:
    kind: str
    lines: tuple[str, ...]


class LogScanner:
    """Reads what the app wrote since the last read; remembers an offset per file."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._offsets = {path: 0 for path in paths}

    def new_lines(self) -> list[str]:
        lines: list[str] = []
        for path, offset in self._offsets.items():
            try:
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read(MAX_READ)
            except FileNotFoundError:
                continue
            complete = data.rfind(b"\n") + 1  # a partly written line waits for the next scan
            self._offsets[path] = offset + complete
            text = data[:complete].decode("utf-8", errors="replace")
            lines.extend(ANSI_ESCAPE.sub("", text).splitlines())
        return lines

    def scan(self, expected_statuses: Collection[int] = ()) -> list[Finding]:
        """The findings in the new lines; a traceback cut off mid-way (the app is still writing
        it) is awaited for up to TRACEBACK_WAIT seconds, so its exception line is quoted."""
        lines = self.new_lines()
        deadline = time.monotonic() + TRACEBACK_WAIT
        while _open_traceback(lines) and time.monotonic() < deadline:
            time.sleep(0.02)
            lines += self.new_lines()
        return find_problems(lines, expected_statuses)


def _open_traceback(lines: Sequence[str]) -> bool:
    """The last traceback in ``lines`` has not reached its exception line yet."""
    starts = [i for i, line in enumerate(lines) if _classify(line, ()) == "a traceback"]
    return bool(starts) and _block_end(lines, starts[-1]) == len(lines) and lines[-1][:1].isspace()


def find_problems(lines: Sequence[str], expected_statuses: Collection[int] = ()) -> list[Finding]:
    """Each offending line with its context; a traceback is quoted up to its exception line."""
    findings: list[Finding] = []
    skip_until = 0
    for index, line in enumerate(lines):
        if index < skip_until:
            continue
        kind = _classify(line, expected_statuses)
        if kind is None:
            continue
        end = _block_end(lines, index) if kind == "a traceback" else index + 1
        findings.append(Finding(kind=kind, lines=tuple(lines[index:end])))
        skip_until = end
    return findings


def _classify(line: str, expected_statuses: Collection[int]) -> str | None:
    for pattern, kind in PATTERNS:
        found = pattern.search(line)
        if found is None:
            continue
        if found.groups() and int(found.group(1)) in expected_statuses:
            continue
        return kind
    return None


def _block_end(lines: Sequence[str], start: int) -> int:
    """A traceback runs through indented frame lines to the first unindented line after them."""
    for index in range(start + 1, len(lines)):
        if lines[index] and not lines[index][0].isspace():
            return index + 1
    return len(lines)


def describe(findings: Sequence[Finding], check_id: str) -> str:
    """``the app logged a traceback while 'create' ran:`` and the quoted lines."""
    kinds = list(dict.fromkeys(f.kind for f in findings))
    quoted = [line for f in findings for line in _abbreviated(f.lines)]
    shown = quoted[:MAX_QUOTED]
    if len(quoted) > MAX_QUOTED:
        # the exception lines of tracebacks past the cut are what a reader needs most
        last = [f.lines[-1] for f in findings if f.kind == "a traceback" and len(f.lines) > 1]
        lost = [line for line in dict.fromkeys(last) if line not in shown]
        shown = quoted[: MAX_QUOTED - len(lost)] if lost else shown
        shown.append(f"... ({len(quoted) - len(shown)} more lines)")
        shown += lost
    head = f"the app logged {' and '.join(kinds)} while {check_id!r} ran:"
    return "\n".join([head, *(f"  | {line}" for line in shown)])


def _abbreviated(lines: tuple[str, ...], keep_last: int = 4) -> list[str]:
    """A long traceback as its first line and its last frames: the exception line matters."""
    if len(lines) <= keep_last + 2:
        return list(lines)
    return [lines[0], f"... ({len(lines) - 1 - keep_last} lines)", *lines[-keep_last:]]


class PageErrors:
    """A flow's page errors as one-line descriptions; those ``allow_errors`` matches kept apart."""

    def __init__(self, allow: Sequence[str]) -> None:
        self.allow = [re.compile(p) for p in allow]
        self.seen: list[dict[str, object]] = []
        self._taken = 0

    def add(self, description: str) -> None:
        if any(p.search(description) for p in PAGE_IGNORED):
            return
        allowed = any(p.search(description) for p in self.allow)
        self.seen.append({"error": description, "allowed": allowed})

    def take_new(self) -> str | None:
        """The first not-allowed error since the last call, with a count of the others."""
        new = [e["error"] for e in self.seen[self._taken :] if not e["allowed"]]
        self._taken = len(self.seen)
        if not new:
            return None
        more = f" (and {len(new) - 1} more)" if len(new) > 1 else ""
        return f"the page had an error: {new[0]}{more}"
