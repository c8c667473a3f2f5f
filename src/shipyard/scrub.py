"""Secrets (the ``[commands] env_file`` values) taken out of messages, errors and evidence.

A value is replaced in every form it may take in the evidence (:func:`secret_forms`): as is, as
Python and JSON show it, and escaped in XML or HTML. A JSON file is scrubbed inside its strings
only, so that a value such as ``true`` or ``localhost`` never breaks it; any other file as text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from urllib import parse

MIN_SECRET = 4
"""Shorter env_file values are not scrubbed: they would replace ordinary text in the logs."""
MIN_CUT = 10
"""A value this long is also scrubbed where a tool shortened it to its head or tail around
``...`` (pytest's assertion messages): the pieces together could give the whole value."""
MIN_PIECE = 6
"""The shortest head or tail of a shortened value that is scrubbed."""
REDACTED = "[env_file value]"


def secret_forms(value: str) -> set[str]:
    """``value`` as it may appear in evidence: as is, percent-encoded (a password in a URL), as
    Python shows it (``repr``, as in an assertion's message), escaped in a JSON string (ASCII or
    not), and each of those escaped in XML or HTML text or attributes, each writer's way
    (``&quot;`` or a raw ``"``, ``&apos;``, ``&#39;``, ``&#x27;`` or a raw ``'``, ``&gt;`` or a
    raw ``>``)."""
    texts = {value, repr(value)[1:-1], parse.quote(value)}
    texts |= {parse.quote(value, safe=""), parse.quote_plus(value)}
    texts |= {json.dumps(t, ensure_ascii=a)[1:-1] for t in set(texts) for a in (True, False)}
    forms = set(texts)
    for text in texts:
        if not any(ch in text for ch in "&<>\"'"):
            continue
        base = text.replace("&", "&amp;").replace("<", "&lt;")
        for gt in (">", "&gt;"):
            for quote in ('"', "&quot;", "&#34;"):
                for apos in ("'", "&apos;", "&#39;", "&#x27;"):
                    forms.add(base.replace(">", gt).replace('"', quote).replace("'", apos))
    return forms


class Scrubber:
    def __init__(self, values: Iterable[str]) -> None:
        found = {v for v in values if len(v) >= MIN_SECRET}
        forms = {f for v in found for f in secret_forms(v)}
        self.secrets = tuple(sorted(forms, key=len, reverse=True))
        self.cut = tuple(f for v in found for f in {v, repr(v)[1:-1]} if len(f) >= MIN_CUT)

    def _pieces(self, text: str) -> str:
        """The heads and tails of long values at a ``...`` cut."""
        for value in self.cut:
            for k in range(len(value) - 1, MIN_PIECE - 1, -1):
                text = text.replace(value[:k] + "...", REDACTED + "...")
                text = text.replace("..." + value[-k:], "..." + REDACTED)
        return text

    def text(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return self._pieces(text) if self.cut and "..." in text else text

    def error(self, exc: BaseException) -> None:
        """``exc``'s message (a command line, a command's output) without the values, in place
        (and the errors it was raised from): what the CLI prints and ``--json`` carries is
        ``str(exc)``."""
        seen: set[int] = set()
        found: BaseException | None = exc
        while found is not None and id(found) not in seen and self.secrets:
            seen.add(id(found))
            found.args = tuple(self.text(a) if isinstance(a, str) else a for a in found.args)
            if isinstance(detail := getattr(found, "detail", None), str):
                found.detail = self.text(detail)  # type: ignore[attr-defined]
            found = found.__cause__ or found.__context__

    def files(self, folder: Path) -> None:
        """Every file under ``folder`` without the values."""
        if not self.secrets:
            return
        forms = [s.encode() for s in self.secrets]
        for path in folder.rglob("*"):
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            clean = self._json(data) if path.suffix == ".json" else None
            if clean is None:
                try:
                    clean = self.text(data.decode("utf-8")).encode("utf-8")
                except UnicodeDecodeError:
                    clean = data
                    for secret in forms:
                        clean = clean.replace(secret, REDACTED.encode())
            if clean != data:
                path.write_bytes(clean)

    def _json(self, data: bytes) -> bytes | None:
        """``data`` parsed, its keys and strings scrubbed, written as ``RunDir.write_json``
        does; None when it is not JSON."""
        try:
            doc = json.loads(data)
        except ValueError:
            return None

        def walk(node: object) -> object:
            if isinstance(node, str):
                return self.text(node)
            if isinstance(node, list):
                return [walk(item) for item in node]
            if isinstance(node, dict):
                return {self.text(str(k)): walk(v) for k, v in node.items()}
            return node

        clean = walk(doc)
        if clean == doc:
            return data
        return (json.dumps(clean, indent=2) + "\n").encode()
