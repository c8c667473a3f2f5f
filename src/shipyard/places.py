"""Where a check lives in the project: the file and line a CI annotation points at.

An acceptance id and the spec's own checks point at the spec; a test at the line that defines
it; a build, the test command and the app at their keys in ``shipyard.toml``. Anything else
has no place (an annotation without a file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from shipyard.config import Config, config_line, load_config
from shipyard.exceptions import ShipyardError
from shipyard.results import CheckResult
from shipyard.spec import spec_lines

CONFIG_KEYS = {
    "build": ("commands", "build"),
    "suite": ("commands", "test"),
    "app": ("app", "start"),
}
SPEC_KINDS = ("coverage", "http", "cli", "ui")
MAX_SOURCE = 2_000_000
"""Bytes of a test file searched for the test's definition."""


@dataclass(frozen=True, kw_only=True)
class Place:
    file: Path
    line: int | None = None


class Places:
    """Finds places for the checks of one verdict; files are read once, on demand."""

    def __init__(self, project: Path, spec: Path | None) -> None:
        self.project = project
        self.spec = spec
        self._spec_lines: dict[tuple[str, str], int] | None = None
        self._config: Config | None = None

    def of(self, check: CheckResult) -> Place | None:
        if check.kind in SPEC_KINDS:
            return self._spec_place(check.kind, check.id)
        if "::" in check.id:
            return self._test(check.id) or self._spec_place("required", check.id)
        if check.kind in CONFIG_KEYS:
            return self._in_config(check.kind)
        return None

    def _spec_place(self, kind: str, check_id: str) -> Place | None:
        line = self._in_spec(kind, check_id)
        return Place(file=self.spec, line=line) if self.spec and line else None

    def _in_spec(self, kind: str, check_id: str) -> int | None:
        if self.spec is None:
            return None
        if self._spec_lines is None:
            try:
                self._spec_lines = spec_lines(self.spec)
            except ShipyardError:
                self._spec_lines = {}
        return self._spec_lines.get((kind, check_id))

    def _in_config(self, kind: str) -> Place | None:
        if self._config is None:
            try:
                self._config = load_config(self.project)
            except ShipyardError:
                return None
        if not self._config.source:
            return None
        line = config_line(self._config, *CONFIG_KEYS[kind])
        return Place(file=Path(self._config.source), line=line)

    def _test(self, test_id: str) -> Place | None:
        file, _, name = test_id.partition("::")
        path = self.project / file
        if not path.is_file():
            return None
        return Place(file=path, line=definition_line(path, name))


def definition_line(path: Path, name: str) -> int | None:
    """The line defining test ``name`` (pytest: ``Class::test_x[param]``; node: ``a > b``)."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(MAX_SOURCE).decode("utf-8", errors="replace")
    except OSError:
        return None
    last = name.split("::")[-1].split(" > ")[-1]
    if path.suffix == ".py":
        pattern = rf"^\s*(async\s+)?def\s+{re.escape(last.split('[')[0])}\s*\("
    else:
        pattern = rf"""(['"`]){re.escape(last)}\1"""
    for number, line in enumerate(text.splitlines(), start=1):
        if re.search(pattern, line):
            return number
    return None
