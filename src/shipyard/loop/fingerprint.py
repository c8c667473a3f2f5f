"""Failure fingerprints: the same mistake gives the same fingerprint, whatever the run.

A fingerprint is the gate, the check id, the kind of error and the message with everything
volatile removed (paths, numbers, addresses, timestamps, ids, quoted temporary names).
"""

from __future__ import annotations

import hashlib
import re

from shipyard.excerpt import shorten
from shipyard.loop.state import Failure

# (pattern in the message, kind): the first match names the kind of error. Data, not code.
KINDS: tuple[tuple[str, str], ...] = (
    (r"SyntaxError|IndentationError", "syntax"),
    (r"ImportError|ModuleNotFoundError|Cannot find module", "import"),
    (r"AssertionError|assert |expected .* got|!=|==", "assertion"),
    (r"Traceback|uncaught|Uncaught|exception", "exception"),
    (r"timed out|timeout|did not become ready|never ready", "timeout"),
    (r"not found|missing|no such|does not exist|removed", "missing"),
    (r"skipped|xfail", "skipped"),
    (r"passes against the base", "fail_to_pass"),
    (r"status \d+|-> \d{3}", "http_status"),
    (r"exit(ed)? (code )?\d+", "exit_code"),
)

_VOLATILE: tuple[tuple[str, str], ...] = (
    (r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?", "<time>"),
    (r"\b\d\d:\d\d:\d\d(\.\d+)?\b", "<time>"),
    (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uuid>"),
    (r"0x[0-9a-fA-F]+", "<addr>"),
    (r"\b[rv]-\d{8}-\d{6}-[0-9a-f]+\b", "<run>"),
    (r"\b[0-9a-f]{7,40}\b", "<hex>"),
    (r"(?:[A-Za-z]:)?(?:/[\w.@+-]+)+/?", "<path>"),
    (r"\b(?:tmp|shipyard-[a-z]+-)\w+", "<tmp>"),
    (r"\d+(\.\d+)?", "<n>"),
    (r"\s+", " "),
)


def normalise(message: str) -> str:
    text = message.strip()
    for pattern, replacement in _VOLATILE:
        text = re.sub(pattern, replacement, text)
    return text[:500]


def kind_of(message: str, default: str = "failed") -> str:
    for pattern, kind in KINDS:
        if re.search(pattern, message):
            return kind
    return default


def failure(gate: str, check: str, message: str, kind: str | None = None) -> Failure:
    kind = kind or kind_of(message)
    key = "\x1f".join((gate, check, kind, normalise(message)))
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Failure(
        fingerprint=digest, gate=gate, check=check, kind=kind, message=shorten(message, 2000)
    )
