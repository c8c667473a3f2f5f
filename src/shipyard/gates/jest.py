"""jest: Shipyard's JUnit report comes from jest-junit, which the project installs."""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping
from pathlib import Path

from shipyard.exceptions import CommandNotFound, EnvironmentProblem


def is_jest(word: str) -> bool:
    return word == "jest" or word.endswith(("/jest", "/jest.js"))


JEST_JUNIT_FIX = "npm install --save-dev jest-junit"
JEST_FIX = "npm install --save-dev jest jest-junit"


def jest_env(
    command: str, report: Path, cwd: Path, env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What jest-junit reads from the environment: its settings (they override a
    ``jest-junit`` key in package.json), once jest and jest-junit are known to be installed
    where the suite runs (``cwd``: the ``[commands] cwd`` when set) or in a folder above."""
    if not _installed("jest", cwd) and not _jest_program(command, cwd, env or os.environ):
        raise CommandNotFound(
            f"commands.test: jest is not installed in {cwd} (no node_modules/jest there or "
            f"above, and the command's jest is not there): install it with `{JEST_FIX}`"
        )
    if not _installed("jest-junit", cwd):
        raise EnvironmentProblem(
            f"jest-junit is not installed in {cwd}: Shipyard reads jest's per-test results from "
            f"the JUnit report jest-junit writes; install it with `{JEST_JUNIT_FIX}`"
        )
    return {
        "JEST_JUNIT_OUTPUT_FILE": str(report),
        "JEST_JUNIT_UNIQUE_OUTPUT_NAME": "false",
        "JEST_JUNIT_ADD_FILE_ATTRIBUTE": "true",
        "JEST_JUNIT_ANCESTOR_SEPARATOR": " > ",
        "JEST_JUNIT_CLASSNAME": "{filepath}",
        "JEST_JUNIT_TITLE": "{classname} > {title}",
        "JEST_JUNIT_REPORT_TEST_SUITE_ERRORS": "true",
    }


def _installed(package: str, cwd: Path) -> bool:
    return any((d / "node_modules" / package / "package.json").is_file()
               for d in (cwd, *cwd.parents))  # fmt: skip


def _jest_program(command: str, cwd: Path, env: Mapping[str, str]) -> bool:
    """The command's jest exists: a path to it, or a ``jest`` on PATH (a global install)."""
    for word in _words(command):
        if is_jest(word):
            if os.sep in word:
                return (cwd / word).exists()
            return shutil.which(word, path=env.get("PATH", os.defpath)) is not None
    return False


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()
