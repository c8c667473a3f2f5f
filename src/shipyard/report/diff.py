"""The change a run made, as a diff split by file, each line highlighted in its file's language
(Pygments), capped in size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup, escape

from shipyard.exceptions import GitError

MAX_DIFF_CHARS = 400_000
MAX_LINE_CHARS = 500


@dataclass(frozen=True, kw_only=True)
class DiffLine:
    sign: str
    """'+', '-', ' ' or '@' (a hunk header)."""
    html: Markup


@dataclass(frozen=True, kw_only=True)
class FileDiff:
    path: str
    added: int
    removed: int
    lines: tuple[DiffLine, ...]


@dataclass(frozen=True, kw_only=True)
class Diff:
    files: tuple[FileDiff, ...]
    note: str
    """What was left out, or why there is no diff."""


def of_trees(project: Path, base: str, tree: str | None) -> Diff:
    """``git diff base tree`` in the project (relative to it), read from the object store."""
    from shipyard import workspace

    if not tree:
        return Diff(files=(), note="nothing was submitted")
    try:
        text = workspace.git(
            "diff", "--no-color", "--no-ext-diff", "--relative", base, tree, cwd=project
        ).stdout
    except GitError as exc:
        return Diff(files=(), note=f"the diff could not be read: {exc}")
    except OSError as exc:  # the project folder is gone
        return Diff(files=(), note=f"the diff could not be read: {exc}")
    return parse(text)


def parse(text: str) -> Diff:
    note = ""
    if len(text) > MAX_DIFF_CHARS:
        cut = text.rfind("\n", 0, MAX_DIFF_CHARS)
        note = f"the diff is cut at {MAX_DIFF_CHARS:,} characters (of {len(text):,})"
        text = text[: cut if cut > 0 else MAX_DIFF_CHARS]
    files = [_file(chunk) for chunk in _chunks(text)]
    return Diff(files=tuple(files), note=note or ("" if files else "no change"))


def _chunks(text: str) -> list[list[str]]:
    chunks: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("diff --git ") or not chunks:
            chunks.append([])
        chunks[-1].append(line)
    return [c for c in chunks if c and c[0].startswith("diff --git ")]


def _file(lines: list[str]) -> FileDiff:
    path = _path(lines)
    body_start = next((i for i, line in enumerate(lines) if line.startswith("@@")), len(lines))
    body = lines[body_start:]
    highlighted = _highlight(path, [line[1:] for line in body])
    out: list[DiffLine] = []
    added = removed = 0
    for line, html in zip(body, highlighted, strict=True):
        sign = line[:1] if line[:1] in "+- " and line[:1] else "@"
        if line.startswith("@@"):
            sign, html = "@", escape(line[:MAX_LINE_CHARS])
        elif line.startswith("\\"):
            sign, html = "@", escape(line)
        added += sign == "+"
        removed += sign == "-"
        out.append(DiffLine(sign=sign, html=html))
    if not body:  # binary, a mode change, an empty file
        out = [DiffLine(sign="@", html=escape(line)) for line in lines[1:6]]
    return FileDiff(path=path, added=added, removed=removed, lines=tuple(out))


def _path(lines: list[str]) -> str:
    for line in lines:
        if line.startswith("+++ ") and line != "+++ /dev/null":
            return line[6:] if line.startswith("+++ b/") else line[4:]
        if line.startswith("--- ") and line != "--- /dev/null":
            fallback = line[6:] if line.startswith("--- a/") else line[4:]
            if not any(x.startswith("+++ ") and x != "+++ /dev/null" for x in lines):
                return fallback
    head = lines[0].split(" b/", 1)
    return head[1] if len(head) == 2 else lines[0][len("diff --git ") :]


def _highlight(path: str, texts: list[str]) -> list[Markup]:
    """Each text highlighted in the language of ``path``: one Pygments pass over them all,
    split back into lines (the formatter closes its spans at each line's end)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_for_filename
    from pygments.lexers.special import TextLexer
    from pygments.util import ClassNotFound

    if not texts:
        return []
    try:
        lexer = get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False, ensurenl=False)
    capped = [t[:MAX_LINE_CHARS] for t in texts]
    html = highlight("\n".join(capped), lexer, HtmlFormatter(nowrap=True))
    out = html.removesuffix("\n").split("\n")
    if len(out) != len(texts):  # a lexer that changed the line count: show plain text
        return [escape(t) for t in capped]
    return [Markup(line) for line in out]


def css() -> str:
    """The highlighting's colours, for ``.hl`` blocks."""
    from pygments.formatter import Formatter
    from pygments.formatters import HtmlFormatter

    # as the base class: its stubs annotate get_style_defs, HtmlFormatter's leave it untyped
    formatter: Formatter[str] = HtmlFormatter(style="default")
    return formatter.get_style_defs(".hl")
