"""Knowledge as Markdown: ``shipyard memory export`` / ``import``, and the project's own
instruction files (``AGENTS.md``, ``CLAUDE.md`` ...) read as conventions.

The export is meant to be read and reviewed in a pull request, and read back::

    ### command · "test"
    > python -m pytest -q

    - role: gates
    - run: r-20261124-101500-1a2b3c
    - evidence: .shipyard/runs/r-20261124-101500-1a2b3c/verify-1
    - learned: 2026-11-24T10:15:02Z · updated: 2026-11-24T10:15:02Z · last used: -
    - counts: seen 1 · used 0 · helped 0

One ``###`` heading per entry (kind, then the key as a JSON string), the text quoted with
``>``, then one field per list line. Anything else in the file is ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from shipyard.config import DOC_FILES
from shipyard.exceptions import InputError
from shipyard.store import knowledge
from shipyard.store.db import like_escaped
from shipyard.store.knowledge import KINDS, Entry, Kind, is_kind

SCHEMA = "shipyard.knowledge/1"
TITLES = {
    "command": "Commands", "decision": "Decisions", "pitfall": "Pitfalls",
    "convention": "Conventions", "fact": "Facts", "finding": "Review findings (seen once)",
}  # fmt: skip
RULE_CHARS = 1500
MAX_DOC_BYTES = 256 * 1024
"""Read of each instruction file; an agent's instruction file is a page or two, not a book."""
MAX_RULES = 500
DOC_KEY = "doc:"
"""The keys of rules read from instruction files (``doc:AGENTS.md:<digest>``): no other entry
may take one."""


# -- export / import ------------------------------------------------------------------------------


def export(found: Sequence[Entry]) -> str:
    out = [
        "# Project knowledge",
        "",
        f"<!-- {SCHEMA}: written by `shipyard memory export`, read by `shipyard memory import`."
        " Each entry is a ### heading (kind and key), its text quoted with >, and its fields."
        " Changing an entry's text and importing the file supersedes the old text. -->",
    ]
    for kind in KINDS:
        group = [e for e in found if e.kind == kind]
        if not group:
            continue
        out += ["", f"## {TITLES[kind]} ({len(group)})"]
        for entry in group:
            out += ["", *_entry_lines(entry)]
    return "\n".join(out) + "\n"


def _entry_lines(e: Entry) -> list[str]:
    lines = [f"### {e.kind} · {json.dumps(e.key, ensure_ascii=False)}"]
    lines += [f"> {t}".rstrip() for t in e.text.strip().splitlines()] or [">"]
    lines.append("")
    lines.append(f"- role: {e.role}")
    for label, value in (("run", e.run_id), ("evidence", e.evidence), ("topic", e.topic)):
        if value:
            lines.append(f"- {label}: {_one_line(value)}")
    if e.data:
        lines.append(f"- data: {json.dumps(e.data, ensure_ascii=False, sort_keys=True)}")
    lines.append(
        f"- learned: {_when(e.created_at)} · updated: {_when(e.updated_at)}"
        f" · last used: {_when(e.last_used)}"
    )
    lines.append(f"- counts: seen {e.seen} · used {e.used} · helped {e.helped}")
    return lines


def parse(text: str, source: str) -> list[Entry]:
    """Entries from an export; InputError naming the file and line for a malformed one."""
    found: list[Entry] = []
    current: _Draft | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.startswith("### "):
            if current is not None:
                found.append(_entry(current, source))
            kind, key = _heading(raw[4:], source, number)
            current = _Draft(line=number, kind=kind, key=key)
        elif current is None:
            continue
        elif raw.startswith(">"):
            current.text.append(raw[2:] if raw.startswith("> ") else raw[1:])
        elif raw.startswith("- ") and ":" in raw:
            label, _, value = raw[2:].partition(":")
            current.fields[label.strip()] = (value.strip(), number)
        elif raw.startswith("#"):
            found.append(_entry(current, source))
            current = None
    if current is not None:
        found.append(_entry(current, source))
    return found


@dataclass(kw_only=True)
class _Draft:
    """An entry being read: its heading's line, kind and key; its text and fields so far."""

    line: int
    kind: Kind
    key: str
    text: list[str] = field(default_factory=list)
    fields: dict[str, tuple[str, int]] = field(default_factory=dict)
    """label -> (value, line)"""


def _heading(rest: str, source: str, line: int) -> tuple[Kind, str]:
    named, _, key = rest.partition(" · ")
    kind = named.strip()
    if not is_kind(kind):
        raise InputError(
            f"unknown kind {kind!r} (one of {', '.join(KINDS)})",
            file=source, field="kind", line=line,
        )  # fmt: skip
    try:
        parsed_key = json.loads(key) if key.strip() else ""
    except json.JSONDecodeError as exc:
        raise InputError(
            f"the key is not a JSON string: {exc}", file=source, field="key", line=line
        ) from exc
    if not isinstance(parsed_key, str):
        raise InputError("the key must be a JSON string", file=source, field="key", line=line)
    return kind, parsed_key


def _entry(current: _Draft, source: str) -> Entry:
    text = "\n".join(current.text).strip()
    if not text:
        raise InputError(
            "an entry with no text (quote it with >)",
            file=source,
            field="text",
            line=current.line,
        )
    fields = current.fields
    value = {k: v for k, (v, _) in fields.items()}
    data = None
    if "data" in fields:
        try:
            data = json.loads(value["data"])
        except json.JSONDecodeError as exc:
            raise InputError(
                f"not JSON: {exc}", file=source, field="data", line=fields["data"][1]
            ) from exc
        if not isinstance(data, dict):
            raise InputError(
                "must be a JSON object", file=source, field="data", line=fields["data"][1]
            )
    role = value.get("role", "user")
    if current.key.startswith(DOC_KEY) and role != "docs":
        raise InputError(
            f"keys starting with {DOC_KEY!r} belong to instruction files (role: docs)",
            file=source, field="key", line=current.line,
        )  # fmt: skip
    times = _times(value.get("learned", ""), source, fields.get("learned", ("", current.line))[1])
    counts = dict(re.findall(r"(seen|used|helped) (\d{1,9})\b", value.get("counts", "")))
    return Entry(
        kind=current.kind, key=current.key, text=text, role=role,
        run_id=value.get("run"), evidence=value.get("evidence"), topic=value.get("topic"),
        data=data, created_at=times.get("learned"), updated_at=times.get("updated"),
        last_used=times.get("last used"), seen=int(counts.get("seen", 1)),
        used=int(counts.get("used", 0)), helped=int(counts.get("helped", 0)),
    )  # fmt: skip


def _times(text: str, source: str, line: int) -> dict[str, float]:
    """``learned: T · updated: T · last used: T`` (the first label is eaten by the field)."""
    out: dict[str, float] = {}
    parts = [p.strip() for p in text.split("·")] if text else []
    for n, part in enumerate(parts):
        label, _, value = ("learned", "", part) if n == 0 else part.partition(":")
        label, value = label.strip(), value.strip()
        if label not in ("learned", "updated", "last used"):
            raise InputError(
                f"{part!r}: expected 'updated: TIME' or 'last used: TIME'",
                file=source, field="learned", line=line,
            )  # fmt: skip
        if value in ("", "-"):
            continue
        try:
            out[label] = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError as exc:
            raise InputError(
                f"{label}: not a time: {value!r}", file=source, field=label, line=line
            ) from exc
    return out


def _when(at: float | None) -> str:
    if not at:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(value: str) -> str:
    return re.sub(r"\s*\n\s*", " ", value).strip()


# -- the project's instruction files ---------------------------------------------------------------


def rules(text: str) -> list[tuple[int, str]]:
    """The rules of an instruction file: each list item (with what is indented under it) and
    each paragraph, with its line number; under a section, prefixed by the section's title."""
    found: list[tuple[int, str]] = []
    block: list[str] = []
    heading, start, fenced, blank = "", 0, False, False
    text = _without_front_matter(text.removeprefix("\ufeff"))
    text = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)

    def flush() -> None:
        body = re.sub(r"^\s*([-*+]|\d+[.)])\s+", "", "\n".join(block)).strip()
        if body:
            found.append((start, (f"{heading}: " if heading else "") + body[:RULE_CHARS]))
        block.clear()

    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.lstrip().startswith("```"):
            fenced = not fenced
            block.append(raw)
            continue
        if fenced:
            block.append(raw)
            continue
        if m := re.match(r"^(#{1,6})\s+(.*)", raw):
            flush()
            heading = m.group(2).strip() if len(m.group(1)) > 1 else ""
            continue
        if not raw.strip():
            blank = True
            if block and not _is_item(block[0]):
                flush()
            continue
        indented = len(raw) - len(raw.lstrip()) >= 2
        if (_is_item(raw) and not indented) or (blank and not indented):
            flush()  # a new item, or whatever follows a blank line unindented
        blank = False
        if not block:
            start = number
        block.append(raw)
    flush()
    return found


def _without_front_matter(text: str) -> str:
    """YAML front matter (``---`` ... ``---`` at the top) is settings, not rules: blanked."""
    if text.startswith("---\n") and (end := text.find("\n---", 4)) != -1:
        return "\n" * text[: end + 4].count("\n") + text[end + 4 :]
    return text


def _is_item(line: str) -> bool:
    return re.match(r"^\s*([-*+]|\d+[.)])\s+", line) is not None


def sync_docs(db: sqlite3.Connection, project: Path, names: Sequence[str] = DOC_FILES) -> int:
    """Bring the conventions read from the project's instruction files up to date with the
    files (call inside a transaction). Returns how many entries were added or removed."""
    changes = 0
    known = {r[0]: r[1] for r in db.execute("SELECT path, digest FROM knowledge_sources")}
    for name in [*names, *(n for n in known if n not in names)]:  # a file no longer listed: gone
        text = _read_doc(project, name) if name in names else None
        sha = hashlib.sha256(text.encode()).hexdigest() if text is not None else None
        if known.get(name) == sha:
            continue
        current = {
            r["key"]: r["id"]
            for r in db.execute(
                "SELECT id, key FROM knowledge WHERE role = 'docs' AND key LIKE ? ESCAPE '\\'",
                (_like_prefix(name),),
            )
        }
        wanted: dict[str, Entry] = {}
        for line, rule in rules(text or "")[:MAX_RULES]:
            key = f"{DOC_KEY}{name}:{knowledge.digest(rule)}"
            wanted[key] = Entry(
                kind="convention", key=key, text=rule, role="docs", evidence=f"{name}:{line}"
            )
        for key, entry_id in current.items():
            if key not in wanted:
                db.execute("DELETE FROM knowledge WHERE id = ?", (entry_id,))
                changes += 1
        for key, entry in wanted.items():
            if key in current:
                db.execute(
                    "UPDATE knowledge SET evidence = ? WHERE id = ?", (entry.evidence, current[key])
                )
            else:  # under its own key, never merged into a person's entry of the same text
                knowledge.insert(db, entry)
                changes += 1
        if sha is None:
            db.execute("DELETE FROM knowledge_sources WHERE path = ?", (name,))
        else:
            db.execute(
                "INSERT OR REPLACE INTO knowledge_sources (path, digest) VALUES (?, ?)", (name, sha)
            )
    return changes


def _read_doc(project: Path, name: str) -> str | None:
    """An instruction file's text: only a file inside the project (a symlink out is not read:
    its text would go into every model's prompt), at most MAX_DOC_BYTES of it."""
    path = project / name
    try:
        inside = path.resolve().is_relative_to(project.resolve())
        if not inside or not path.is_file():
            return None
        with path.open("rb") as handle:
            return handle.read(MAX_DOC_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None


def _like_prefix(name: str) -> str:
    return like_escaped(f"{DOC_KEY}{name}:") + "%"
