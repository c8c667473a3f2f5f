"""Reading YAML and TOML with line numbers, and turning pydantic errors into InputErrors.

The only place where raw input becomes validated models is ``config.py`` and ``spec.py``; both
use these helpers so that every message names the file, the field and, where it can, the line.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from shipyard.exceptions import InputError

Loc = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)
MAX_INPUT_BYTES = 1024 * 1024
"""The largest config or spec file read (a FIFO or ``/dev/zero`` is refused before reading)."""
MAX_ALIAS_GROWTH = 100_000
"""How much YAML aliases may add to a document: nodes plus characters of scalars, counted as
if every alias were written out. Past it the document is refused (an alias bomb)."""


def dotted(loc: Iterable[str | int]) -> str:
    """``("checks", "http", 1, "covers")`` -> ``checks.http[1].covers``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def load_yaml(text: str, file: str, error: type[InputError]) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML safely; return the data and a map from each key/item path to its line."""
    node, data = safe_yaml(text, file, error)
    lines: dict[Loc, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def safe_yaml(
    text: str, file: str, error: type[InputError], loader: type[Any] = yaml.SafeLoader
) -> tuple[yaml.Node | None, Any]:
    """The node tree and the data of one YAML document, safely loaded; aliases that would
    expand it past MAX_ALIAS_GROWTH are refused before anything is built from it. Every YAML
    Shipyard reads comes through here."""
    parser = loader(text)
    try:
        node = parser.get_single_node()
        if node is not None:
            _bounded(node, file, error)
        return node, (parser.construct_document(node) if node is not None else None)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"not valid YAML: {problem}", file=file, line=line) from exc
    finally:
        parser.dispose()


def _bounded(root: yaml.Node, file: str, error: type[InputError]) -> None:
    """Refuse a document whose aliases expand it by more than MAX_ALIAS_GROWTH, or refer to a
    node from inside itself; counted once per distinct node, so the check itself is cheap."""
    expanded: dict[int, int] = {}
    distinct = 0
    pending: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            pending.discard(key)
            expanded[key] = _weight(node) + sum(expanded[id(c)] for c in _children(node))
            continue
        if key in expanded:
            continue
        if key in pending:
            raise error("a YAML alias refers to itself", file=file, line=node.start_mark.line + 1)
        pending.add(key)
        distinct += _weight(node)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in expanded)
    if expanded[id(root)] - distinct > MAX_ALIAS_GROWTH:
        raise error(
            f"YAML aliases expand this document to {expanded[id(root)]:,} nodes and characters "
            f"(written out it has {distinct:,}); aliases expand it by at most "
            f"{MAX_ALIAS_GROWTH:,}",
            file=file,
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _weight(node: yaml.Node) -> int:
    return 1 + (len(node.value) if isinstance(node, yaml.ScalarNode) else 0)


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*loc, str(key.value))
            lines[sub] = key.start_mark.line + 1
            _walk(value, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*loc, index), lines)


def toml_lines(text: str) -> dict[Loc, int]:
    """Best-effort line map for TOML (tomllib keeps no positions): tables and their keys."""
    lines: dict[Loc, int] = {}
    table: Loc = ()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if m := re.match(r"^\[\s*([^\[\]]+?)\s*\]$", line):
            table = tuple(part.strip().strip('"') for part in m.group(1).split("."))
            lines.setdefault(table, number)
        elif m := re.match(r'^("?)([A-Za-z0-9_-]+)\1\s*=', line):
            lines.setdefault((*table, m.group(2)), number)
    return lines


def line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    """The line of ``loc`` or of its nearest ancestor that has one."""
    for end in range(len(loc), -1, -1):
        if (found := lines.get(tuple(loc[:end]))) is not None:
            return found
    return None


def validate(
    model: type[ModelT],
    data: Any,
    *,
    file: str,
    lines: dict[Loc, int],
    error: type[InputError],
    prefix: Loc = (),
) -> ModelT:
    """``model.model_validate(data)``, with every error reported by field and line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, file=file, lines=lines, error=error, prefix=prefix) from exc


def from_validation(
    exc: ValidationError,
    *,
    file: str,
    lines: dict[Loc, int],
    error: type[InputError],
    prefix: Loc = (),
) -> InputError:
    problems = []
    errors = exc.errors(include_url=False)
    locs = [(*prefix, *_clean_loc(err["loc"])) for err in errors]
    for err, loc in zip(errors, locs, strict=True):
        if any(other[: len(loc)] == loc and len(other) > len(loc) for other in locs):
            continue  # a consequence of an error deeper down
        msg = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}" if loc else "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        problems.append((loc, msg, line_for(loc, lines)))
    loc, msg, line = problems[0]
    first = error(msg, file=file, field=dotted(loc) or None, line=line)
    if len(problems) > 1:
        rest = [
            str(error(m, file=file, field=dotted(lc) or None, line=ln))
            for lc, m, ln in problems[1:]
        ]
        first.args = ("\n".join([str(first), *rest]),)
    return first


def _clean_loc(loc: Iterable[Any]) -> Loc:
    # pydantic puts union member names and validator tags into loc; they are not fields.
    out: list[str | int] = []
    for part in loc:
        tag = isinstance(part, str) and re.search(r"[\[\]()]|^function-", part)
        if isinstance(part, int) or (isinstance(part, str) and not tag):
            out.append(part)
    return tuple(out)


def read_text(path: Path, error: type[InputError], limit: int = MAX_INPUT_BYTES) -> str:
    """A regular file of at most ``limit`` bytes, as UTF-8: a FIFO, a device or a huge file is
    refused without reading it."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise error("not a regular file (a FIFO, a device or a folder)", file=str(path))
        if info.st_size > limit:
            raise error(f"larger than {limit:,} bytes ({info.st_size:,})", file=str(path))
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise error(f"larger than {limit:,} bytes", file=str(path))
        return data.decode("utf-8")
    except FileNotFoundError as exc:
        raise error("file not found", file=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read: {exc}", file=str(path)) from exc


def refuse_nul(data: Any, *, file: str, lines: dict[Loc, int], error: type[InputError],
               prefix: Loc = ()) -> None:  # fmt: skip
    """Exit 2 naming the field of the first string (key or value) with a NUL character: no
    command, environment, commit message or evidence file can carry one."""
    stack: list[tuple[Loc, Any]] = [(prefix, data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                sub = (*loc, str(key))
                if isinstance(key, str) and "\0" in key:
                    raise error("a key contains a NUL character", file=file, field=dotted(loc)
                                or None, line=line_for(sub, lines))  # fmt: skip
                stack.append((sub, item))
        elif isinstance(value, list | tuple):
            stack.extend(((*loc, i), item) for i, item in enumerate(value))
        elif isinstance(value, str) and "\0" in value:
            raise error("must not contain a NUL character", file=file,
                        field=dotted(loc) or None, line=line_for(loc, lines))  # fmt: skip
