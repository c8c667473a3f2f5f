"""Evidence files, made small enough to show: thumbnails, log excerpts around the decisive line,
HTTP exchanges with their bodies capped. Every read is bounded and stays inside its folder."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THUMB_SIZE = (360, 220)
THUMB_QUALITY = 70
MAX_IMAGE_BYTES = 20_000_000
LOG_TAIL_BYTES = 64_000
EXCERPT_BEFORE, EXCERPT_AFTER = 12, 12
BODY_CAP = 2_000
DECISIVE = re.compile(
    r"Traceback \(most recent call last\)|^E\s|^\w*(?:Error|Exception)\b|\bFAILED\b|"
    r"\berror\b|\bassert|\bnot found\b|exit (?:code )?[1-9]",
    re.IGNORECASE,
)


@dataclass(frozen=True, kw_only=True)
class Thumb:
    name: str
    data_uri: str
    """A small JPEG, embedded."""
    href: str
    """The full image, as the page links it."""
    width: int
    height: int


@dataclass(frozen=True, kw_only=True)
class Excerpt:
    path: str
    href: str
    lines: tuple[tuple[int, str, bool], ...]
    """(line number, text, decisive)."""
    note: str
    """What was left out."""


@dataclass(frozen=True, kw_only=True)
class Exchange:
    method: str
    url: str
    status: int | None
    request_body: str
    response_body: str
    elapsed: float | None


def inside(folder: Path, relative: str) -> Path | None:
    """``folder / relative`` when it resolves inside ``folder`` and is a file, else None."""
    if not relative or "\0" in relative or os.path.isabs(relative):
        return None
    root = folder.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


def thumbnail(path: Path, href: str) -> Thumb | None:
    """A JPEG thumbnail of an image file, or None when it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        if path.stat().st_size > MAX_IMAGE_BYTES:
            return None
        with Image.open(path) as img:
            width, height = img.size
            small = img.convert("RGB")
            small.thumbnail(THUMB_SIZE)
            buffer = io.BytesIO()
            small.save(buffer, "JPEG", quality=THUMB_QUALITY, optimize=True)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return Thumb(
        name=path.name, data_uri=f"data:image/jpeg;base64,{data}", href=href,
        width=width, height=height,
    )  # fmt: skip


def excerpt(path: Path, href: str, shown_as: str) -> Excerpt | None:
    """The lines around the decisive line of a log (the last that looks like the failure), from
    its last :data:`LOG_TAIL_BYTES`."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            raw = handle.read(LOG_TAIL_BYTES)
    except OSError:
        return None
    text = raw.decode("utf-8", errors="replace")
    lines = text.splitlines()
    if size > LOG_TAIL_BYTES and lines:
        lines = lines[1:]  # the first one is cut in the middle
    if not lines:
        return Excerpt(path=shown_as, href=href, lines=(), note="empty")
    first_number = _line_number(path, size) if size > LOG_TAIL_BYTES else 1
    decisive = max((i for i, line in enumerate(lines) if DECISIVE.search(line)), default=None)
    if decisive is None:
        start, end = max(0, len(lines) - EXCERPT_BEFORE - EXCERPT_AFTER), len(lines)
    else:
        start = max(0, decisive - EXCERPT_BEFORE)
        end = min(len(lines), decisive + EXCERPT_AFTER + 1)
    shown = tuple((first_number + i, lines[i][:400], i == decisive) for i in range(start, end))
    total = first_number + len(lines) - 1
    note = f"lines {shown[0][0]}–{shown[-1][0]} of {total}" if shown else ""
    return Excerpt(path=shown_as, href=href, lines=shown, note=note)


def _line_number(path: Path, size: int) -> int:
    """The number of the first whole line in the tail that :func:`excerpt` reads."""
    count = 0
    with path.open("rb") as handle:
        remaining = max(0, size - LOG_TAIL_BYTES)
        while remaining > 0:
            chunk = handle.read(min(remaining, 1 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            remaining -= len(chunk)
    return count + 2


def _table(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def exchange(path: Path) -> Exchange | None:
    """An HTTP check's exchange file (``http/<id>.json``)."""
    try:
        if path.stat().st_size > MAX_IMAGE_BYTES:
            return None
        doc = json.loads(path.read_text(errors="replace"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    request, response = _table(doc.get("request")), _table(doc.get("response"))
    status = response.get("status")
    elapsed = response.get("elapsed")
    return Exchange(
        method=str(request.get("method", "")), url=str(request.get("url", "")),
        status=status if isinstance(status, int) else None,
        request_body=_capped(request.get("body")), response_body=_capped(response.get("body")),
        elapsed=elapsed if isinstance(elapsed, int | float) else None,
    )  # fmt: skip


def _capped(body: object) -> str:
    if body is None:
        return ""
    text = body if isinstance(body, str) else json.dumps(body)
    if len(text) > BODY_CAP:
        return text[:BODY_CAP] + f"\n[… {len(text) - BODY_CAP} more characters]"
    return text
