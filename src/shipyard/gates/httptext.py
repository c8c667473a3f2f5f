"""The first lines of a response body as a failure message shows them: HTML as its text."""

from __future__ import annotations

from html.parser import HTMLParser

from shipyard.excerpt import decisive_line

MAX_LINES = 12
MAX_WIDTH = 160
SKIPPED = frozenset({"script", "style", "template", "svg"})
BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "label", "legend", "li", "main", "nav", "ol", "option", "p", "pre", "section",
    "select", "table", "td", "textarea", "th", "title", "tr", "ul", "button",
})  # fmt: skip


class _Text(HTMLParser):
    """Visible text, one line per block element; scripts and styles left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED:
            self.skipping += 1
        elif tag in BLOCKS:
            self.parts.append("\n")
        elif tag == "input" and (value := dict(attrs).get("value")):
            self.parts.append(f" [{value}] ")

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_text(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return [line for line in lines if line]


def is_html(body: str, content_type: str) -> bool:
    start = body.lstrip()[:15].lower()
    return "html" in content_type.lower() or start.startswith(("<!doctype html", "<html"))


def body_lines(body: str, content_type: str) -> tuple[list[str], int]:
    """The first lines to show, and how many lines there are in all."""
    lines = html_text(body) if is_html(body, content_type) else body.splitlines()
    shown = [line.rstrip() for line in lines[:MAX_LINES]]
    clipped = [line if len(line) <= MAX_WIDTH else line[: MAX_WIDTH - 3] + "..." for line in shown]
    return clipped, len(lines)


def describe_body(body: str, content_type: str) -> list[str]:
    """``response body: …`` for a one-line body, else a header line and ``  | `` quoted lines."""
    lines, total = body_lines(body, content_type)
    if not any(line.strip() for line in lines):
        return ["response body: (empty)"]
    line = decisive_line(body)
    if line is not None and not any(line in shown for shown in lines):
        lines = [*lines, "...", line]  # the error that explains the status, further down
    what = "response body (its text)" if is_html(body, content_type) else "response body"
    if total == 1:
        return [f"{what}: {lines[0]}"]
    more = f", first {len(lines)} of {total} lines" if total > len(lines) else ""
    return [f"{what}{more}:", *(f"  | {line}" for line in lines)]
