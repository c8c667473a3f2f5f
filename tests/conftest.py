"""Shared fixtures: real git repositories in tmp_path and the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

# Every process this suite starts inherits this mark, even after it is reparented away from us,
# so the session can assert at the end that none of them is still running.
TEST_MARK = f"shipyard-tests-{os.getpid()}"
os.environ["SHIPYARD_TEST_MARK"] = TEST_MARK
# No test talks to a real model: every model that is not scripted or on 127.0.0.1 is refused,
# in this process and in every `shipyard` it starts.
os.environ["SHIPYARD_BLOCK_MODEL_REQUESTS"] = "1"
# Runs keep their worktrees under $XDG_STATE_HOME/shipyard: a folder of this session's own.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="shipyard-tests-state-")

ROOT = Path(__file__).resolve().parent.parent
collect_ignore = ["fixtures"]
"""Projects the tests verify: their own test files are theirs, not this suite's."""
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent


@dataclass
class CliRun:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)

    def check(self, check_id: str, kind: str | None = None) -> dict[str, Any]:
        for gate in self.json["gates"]:
            for check in gate["checks"]:
                if check["id"] == check_id and (kind is None or check["kind"] == kind):
                    return check
        raise AssertionError(f"no check {check_id!r} ({kind}) in {self.stdout}")


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> CliRun:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    environ.update(env or {})
    proc = subprocess.run(
        [str(BIN / "shipyard"), *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


class Project:
    """A real git repository with files written from dedented strings."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", "main")
        git(path, "config", "user.email", "test@example.com")
        git(path, "config", "user.name", "Test")
        git(path, "config", "commit.gpgsign", "false")

    def write(self, files: dict[str, str]) -> Project:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text).lstrip("\n"))
        return self

    def remove(self, name: str) -> Project:
        (self.path / name).unlink()
        return self

    def commit(self, message: str = "commit") -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "HEAD")

    def verify(self, *args: str, env: dict[str, str] | None = None) -> CliRun:
        if os.environ.get(SERIAL_VERIFY) == "1":
            self.serial()
        return run_cli("verify", "--json", *args, cwd=self.path, env=env)

    def serial(self) -> None:
        """``[verify] parallel = false`` in the project's shipyard.toml."""
        config = self.path / "shipyard.toml"
        text = config.read_text() if config.is_file() else ""
        if "[verify]" not in text:
            config.write_text(f"{text.rstrip()}\n\n[verify]\nparallel = false\n".lstrip())


SERIAL_VERIFY = "SHIPYARD_TEST_SERIAL_VERIFY"
"""Set to 1 by ``verify_modes``: every ``Project.verify`` of the test runs one check at a time."""


@pytest.fixture(params=["parallel", "serial"])
def verify_modes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test twice: the verify in parallel (the default) and one check after another; a
    module opts in with ``pytestmark = pytest.mark.usefixtures("verify_modes")``."""
    monkeypatch.setenv(SERIAL_VERIFY, "1" if request.param == "serial" else "0")
    return str(request.param)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "proj")


PY_CONFIG = """
[commands]
build = ["python -m compileall -q calc.py"]
test = "python -m pytest -q -p no:cacheprovider"
timeout = 60
"""

CALC_OLD = """
def add(a, b):
    return a - b
"""

CALC_NEW = """
def add(a, b):
    return a + b
"""


def leftover_processes() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get("SHIPYARD_TEST_MARK") == TEST_MARK and proc.status() != "zombie":
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Assert that no process started by the suite outlives it."""
    deadline = time.monotonic() + 5
    while (left := leftover_processes()) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        names = ", ".join(f"{p.pid} {' '.join(p.cmdline())[:80]}" for p in left)
        print(f"\nFAILED: processes started by the test suite are still running: {names}")
        for proc in left:
            proc.kill()
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
