"""The tools a coding agent uses inside a worktree: list, read, search, write, edit, run, submit.

Bad model input never raises: it comes back as ``ok=False`` with words the model can act on.
File tools are confined to the root (:mod:`shipyard.agents.sandbox`); ``run`` goes through
:mod:`shipyard.process` with the allow-listed environment of :mod:`shipyard.environment`, and
what it leaves running outside its process group is killed when it returns.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard import environment, leftovers, process
from shipyard.agents import sandbox
from shipyard.agents.sandbox import Refused, confine, relative
from shipyard.exceptions import CommandNotFound

if TYPE_CHECKING:
    from shipyard.config import Config

MAX_ENTRIES, MAX_HITS, MAX_READ_BYTES = 500, 200, 20_000_000
READ_ONLY = ("list", "read", "search")


@dataclass(frozen=True, kw_only=True)
class ToolSpec:
    name: str
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class ToolOutcome:
    ok: bool
    text: str
    changed: bool = False
    submitted: str | None = None


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _path(default: str | None = None, what: str = "File") -> Any:
    """A path field (required when there is no default); typed ``Any`` as ``Field`` is."""
    description = f"{what}, relative to the worktree root."
    if default is None:
        return Field(description=description)
    return Field(default=default, description=description)


class ListArgs(_Args):
    """List files and folders under a folder of the worktree, sorted, folders ending in '/'.
    Skips .git, .shipyard, node_modules, __pycache__ and .venv; symlinks are not followed."""

    path: str = _path(".", "Folder")
    depth: int = Field(2, ge=1, le=10, description="How many levels down to list.")


class ReadArgs(_Args):
    """Read a text file with line numbers ('  12| text'); start and end pick a range of lines.
    Long output is cut: read on with a later start."""

    path: str = _path()
    start: int = Field(1, ge=1, description="First line to show (1-based).")
    end: int | None = Field(None, ge=1, description="Last line to show; null: the end.")


class SearchArgs(_Args):
    """Find a fixed string (or a Python regular expression with regex=true) in the text files
    under a path; answers 'file:line: text' lines."""

    pattern: str = Field(min_length=1, description="Text to find (case-sensitive).")
    path: str = _path(".", "File or folder to search")
    regex: bool = Field(False, description="Treat pattern as a Python regular expression.")


class WriteArgs(_Args):
    """Create or overwrite a file with the whole content, creating parent folders. For a small
    change to an existing file use edit."""

    path: str = _path()
    content: str = Field(description="The whole new content of the file.")


class EditArgs(_Args):
    """Replace one occurrence of search with replace in a file. search must match exactly,
    whitespace included, and only once: add surrounding lines to make it unique."""

    path: str = _path()
    search: str = Field(min_length=1, description="Exact text to replace; must occur once.")
    replace: str = Field(description="Text to put in its place.")


class RunArgs(_Args):
    """Run a shell command in the worktree root (the tests, say); answers the exit code and the
    end of the output. The command and its children are killed at the timeout."""

    command: str = Field(min_length=1, description="Shell command, run in the worktree root.")
    timeout: float | None = Field(None, gt=0, description="Seconds before it is killed.")


class SubmitArgs(_Args):
    """Finish the task: the work is done. Give a summary of what changed and how it was checked."""

    summary: str = Field(min_length=1, description="What changed and how it was checked.")


class Toolbox:
    def __init__(
        self,
        root: Path,
        *,
        read_only: bool = False,
        run_timeout: float = 300,
        output_cap: int = 16_000,
        env: Mapping[str, str] | None = None,
        config: Config | None = None,
        wrap: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        """``wrap``: what to put around each ``run`` command's argv (a sandbox)."""
        self.root = Path(os.path.realpath(root))
        if not self.root.is_dir():
            raise NotADirectoryError(f"tool root {root} is not a folder")
        self.read_only, self.run_timeout, self.output_cap = read_only, run_timeout, output_cap
        self.env = environment.scrubbed(os.environ if env is None else env, config)
        self.wrap = wrap
        table: dict[str, tuple[type[_Args], Callable[[Any], ToolOutcome]]] = {
            "list": (ListArgs, self._list),
            "read": (ReadArgs, self._read),
            "search": (SearchArgs, self._search),
            "write": (WriteArgs, self._write),
            "edit": (EditArgs, self._edit),
            "run": (RunArgs, self._run),
            "submit": (SubmitArgs, self._submit),
        }
        self._all = tuple(table)
        self._tools = {k: v for k, v in table.items() if not read_only or k in READ_ONLY}

    def specs(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                name=name,
                description=" ".join((model.__doc__ or "").split()),
                schema=_schema(model),
            )
            for name, (model, _) in self._tools.items()
        ]

    def call(self, name: str, args: str | dict[str, Any] | None) -> ToolOutcome:
        if name not in self._tools:
            why = " (this toolbox is read-only)" if name in self._all else ""
            return self._no(
                f"unknown tool {name!r}{why}; available tools: {', '.join(self._tools)}"
            )
        model, method = self._tools[name]
        expected = f"\nexpected arguments of {name}: {_signature(model)}"
        try:
            data = json.loads(args) if isinstance(args, str) and args.strip() else args or {}
        except json.JSONDecodeError as exc:
            return self._no(f"the arguments are not valid JSON ({exc}){expected}")
        if not isinstance(data, dict):
            return self._no(f"the arguments must be a JSON object, got {data!r:.60}{expected}")
        try:
            parsed = model.model_validate(data)
        except ValidationError as exc:
            return self._no(f"invalid arguments for {name}: {_problems(exc)}{expected}")
        try:
            return method(parsed)
        except Refused as exc:
            return self._no(str(exc))
        except OSError as exc:  # permissions, a file where a folder should be, a name too long
            return self._no(f"{name} failed: {exc.strerror or exc}")
        except (
            UnicodeError,
            ValueError,
        ) as exc:  # a path no file system can hold (a lone surrogate)
            return self._no(f"{name} failed: the arguments cannot be used as given: {exc}")

    def _no(self, text: str) -> ToolOutcome:
        return ToolOutcome(ok=False, text=sandbox.clip(text, self.output_cap))

    def _yes(self, text: str, *, changed: bool = False) -> ToolOutcome:
        return ToolOutcome(ok=True, text=sandbox.clip(text, self.output_cap), changed=changed)

    def _list(self, a: ListArgs) -> ToolOutcome:
        top = confine(self.root, a.path)
        if not top.is_dir():
            return self._no(f"{a.path} is not a folder" + ("; use read" * top.exists()))
        rows = []
        for entry, _ in sandbox.walk(top, a.depth):
            name = relative(self.root, Path(entry.path))
            if entry.is_symlink():
                to = Path(os.path.realpath(entry.path))
                to_name = relative(self.root, to) if to.is_relative_to(self.root) else None
                rows.append(f"{name} -> {to_name or '(outside the worktree)'} (symlink)")
            else:
                rows.append(name + "/" * entry.is_dir(follow_symlinks=False))
        left = f"\n[{len(rows) - MAX_ENTRIES} more entries left out]" * (len(rows) > MAX_ENTRIES)
        return self._yes("\n".join(rows[:MAX_ENTRIES]) + left if rows else f"{a.path} is empty")

    def _read(self, a: ReadArgs) -> ToolOutcome:
        target = self._file(a.path)
        if (size := target.stat().st_size) > MAX_READ_BYTES:
            return self._no(f"{a.path} is too large to read ({size} bytes); search in it")
        if sandbox.is_binary(target):
            return self._no(f"{a.path} is a binary file; it cannot be read as text")
        if a.end is not None and a.end < a.start:
            return self._no(f"end={a.end} is before start={a.start}")
        rows, cut, total = sandbox.numbered(target, a.start, a.end, self.output_cap - 150)
        if total == 0:
            return self._yes(f"{a.path} is empty (0 lines)")
        if a.start > total:
            return self._no(f"{a.path} has {total} lines; start={a.start} is past the end")
        if cut:
            note = f"[output cut before line {cut} of {total}; read on with start={cut}]"
        else:
            note = f"[lines {a.start}-{min(a.end or total, total)} of {total}]"
        return self._yes("\n".join(rows) + "\n" + note)

    def _search(self, a: SearchArgs) -> ToolOutcome:
        top = confine(self.root, a.path)
        try:
            rx = re.compile(a.pattern if a.regex else re.escape(a.pattern))
        except re.error as exc:
            return self._no(f"bad regular expression {a.pattern!r}: {exc} (or use regex=false)")
        if top.is_file():
            files = [top]
        elif top.is_dir():
            files = [Path(e.path) for e, _ in sandbox.walk(top) if e.is_file(follow_symlinks=False)]
        else:
            return self._no(f"{a.path} does not exist")
        hits = sandbox.grep(self.root, files, rx, MAX_HITS + 1)
        if len(hits) > MAX_HITS:
            more = f"\n[stopped after {MAX_HITS} matches; narrow the pattern or the path]"
            return self._yes("\n".join(hits[:MAX_HITS]) + more)
        return self._yes("\n".join(hits) or f"no matches for {a.pattern!r} in {a.path}")

    def _write(self, a: WriteArgs) -> ToolOutcome:
        target = confine(self.root, a.path)
        data = a.content.encode("utf-8", errors="replace")
        if target.exists() and not target.is_file():
            return self._no(f"{a.path} exists and is not a regular file; nothing written")
        sandbox.single_link(target, a.path)
        if target.exists() and target.read_bytes() == data:
            return self._yes(f"{a.path} already has this content; nothing changed")
        verb = "overwrote" if target.exists() else "created"
        sandbox.put(target, data)
        return self._yes(f"{verb} {a.path} ({len(data)} bytes)", changed=True)

    def _edit(self, a: EditArgs) -> ToolOutcome:
        target = self._file(a.path, hint="; use write to create it")
        sandbox.single_link(target, a.path)
        try:
            text = target.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            return self._no(f"{a.path} is not UTF-8 text; it cannot be edited (use write)")
        search, replace = a.search, a.replace
        if "\r\n" in text and "\r\n" not in search:  # a CRLF file: match its line endings
            search, replace = search.replace("\n", "\r\n"), replace.replace("\n", "\r\n")
        if (count := text.count(search)) == 1:
            new = text.replace(search, replace, 1)
            sandbox.put(target, new.encode("utf-8", errors="replace"))
            same = "search and replace are the same; nothing changed"
            return self._yes(f"edited {a.path}" if new != text else same, changed=new != text)
        if count > 1:
            at = [
                str(text.count("\n", 0, m.start()) + 1)
                for m in re.finditer(re.escape(search), text)
            ]
            return self._no(
                f"search text found {count} times in {a.path} (lines {', '.join(at)}); "
                "include more surrounding lines so that it matches exactly once"
            )
        if replace and text.count(replace) == 1:
            return self._no(
                f"search text not found in {a.path}, nothing changed; the replacement text is "
                "already there once, so this edit may have been applied before — read the "
                "file to check"
            )
        return self._no(
            f"search text not found in {a.path}; it must match exactly, whitespace and "
            f"indentation included{sandbox.closest_lines(text, search)}"
        )

    def _run(self, a: RunArgs) -> ToolOutcome:
        timeout = min(a.timeout or self.run_timeout, self.run_timeout)
        before = sandbox.worktree_state(self.root, self.env)
        with leftovers.temporary("run") as tmp:
            log, result = Path(tmp) / "output.log", None
            try:
                command = self.wrap(process.to_argv(a.command)) if self.wrap else a.command
                result = process.run(
                    command,
                    cwd=self.root,
                    env=self.env,
                    timeout=timeout,
                    log=log,
                    what="command not found",
                )
                size, tail = log.stat().st_size, process.tail_of(log, lines=1000)
            except CommandNotFound as exc:  # the message starts with "command not found: "
                size, tail = 0, str(exc)
            finally:
                process.kill_adopted()  # `setsid cmd &`, a daemon: nothing outlives the call
        changed = before is None or sandbox.worktree_state(self.root, self.env) != before
        if result is None:
            return ToolOutcome(ok=False, text=sandbox.clip(tail, self.output_cap), changed=changed)
        if result.timed_out:
            head = f"timed out after {timeout:g} s: the command and its children were killed"
        else:
            head = f"exit {result.exit_code} after {result.duration:.2f} s"
        if size > process.TAIL_BYTES:
            head += f" (the last {len(tail.encode())} of {size} bytes of output)"
        room = max(self.output_cap - len(head) - 1, 0)
        text = f"{head}\n" + sandbox.clip(tail or "(no output)", room, tail=True)
        return ToolOutcome(ok=result.ok, text=sandbox.clip(text, self.output_cap), changed=changed)

    def _submit(self, a: SubmitArgs) -> ToolOutcome:
        return ToolOutcome(ok=True, text="submitted", submitted=a.summary)

    def _file(self, path: str, hint: str = "") -> Path:
        target, path = confine(self.root, path), path or "."
        if target.is_dir():
            raise Refused(f"{path} is a folder, not a file; use list")
        if target.exists() and not target.is_file():
            raise Refused(f"{path} is not a regular file")
        if not target.exists():
            raise Refused(f"{path} does not exist{hint}")
        return target


def _schema(model: type[_Args]) -> dict[str, Any]:
    return copy.deepcopy(_schema_of(model))


@functools.cache
def _schema_of(model: type[_Args]) -> dict[str, Any]:
    """Built once per process: pydantic's schema generation is the slow part of a step."""
    schema = model.model_json_schema()
    schema.pop("description", None)  # the docstring is the tool's description already
    return schema


def _signature(model: type[_Args]) -> str:
    parts = []
    for name, field in model.model_fields.items():
        kind = getattr(field.annotation, "__name__", None) or str(field.annotation)
        parts.append(
            f"{name}: {kind}" + (" (required)" if field.is_required() else f" = {field.default!r}")
        )
    return ", ".join(parts)


def _problems(exc: ValidationError) -> str:
    words = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "arguments"
        if err["type"] == "extra_forbidden":
            words.append(f"unknown argument {field!r}")
        elif err["type"] == "missing":
            words.append(f"missing required argument {field!r}")
        else:
            words.append(f"{field}: {err['msg']} (got {err['input']!r:.60})")
    return "; ".join(words)
