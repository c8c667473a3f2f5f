"""The command runner: process groups, timeouts, capped output."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from shipyard import process
from shipyard.exceptions import CommandNotFound

ENV = {"PATH": "/usr/bin:/bin"}


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    script = f"sleep 300 & echo $! > {pidfile}; sleep 300"
    started = time.monotonic()
    result = process.run(script, cwd=tmp_path, env=ENV, timeout=1, log=tmp_path / "log")
    assert result.timed_out and result.exit_code is None and not result.ok
    assert time.monotonic() - started < 1 + process.KILL_GRACE + 1
    grandchild = int(pidfile.read_text())
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie"


def test_children_left_behind_after_a_normal_exit_are_stopped(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    result = process.run(
        f"sleep 300 & echo $! > {pidfile}", cwd=tmp_path, env=ENV, timeout=10, log=tmp_path / "log"
    )
    assert result.ok
    grandchild = int(pidfile.read_text())
    time.sleep(0.1)
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie"


def test_output_goes_to_the_log_and_the_tail_is_capped(tmp_path: Path) -> None:
    log = tmp_path / "log"
    result = process.run(
        "python3 -c \"print('x' * 100 + chr(10), end='' ) or [print(i) for i in range(100000)]\"",
        cwd=tmp_path,
        env=ENV,
        timeout=30,
        log=log,
    )
    assert result.ok
    assert log.stat().st_size > 500_000
    assert len(result.tail) <= process.TAIL_BYTES
    assert result.tail.splitlines()[-1] == "99999"


def test_argv_and_shell_forms() -> None:
    assert process.to_argv("python -m pytest -q") == ["python", "-m", "pytest", "-q"]
    assert process.to_argv("pytest 'a b'") == ["pytest", "a b"]
    assert process.to_argv("make && make test")[:2] == ["/bin/sh", "-c"]
    assert process.to_argv("FOO=1 pytest")[:2] == ["/bin/sh", "-c"]
    assert process.to_argv(["a", "b c"]) == ["a", "b c"]


def test_program_not_found(tmp_path: Path) -> None:
    with pytest.raises(CommandNotFound, match="'no-such-program' was not found on PATH"):
        process.run("no-such-program --x", cwd=tmp_path, env=ENV, timeout=5, log=tmp_path / "l")


def test_a_process_that_leaves_the_group_is_stopped_too(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    result = process.run(
        f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' & "
        f"while [ ! -s {pidfile} ]; do sleep 0.01; done",
        cwd=tmp_path,
        env=ENV,
        timeout=10, log=tmp_path / "log",
    )  # fmt: skip
    assert result.ok
    escaped = int(pidfile.read_text())
    time.sleep(0.1)
    assert not psutil.pid_exists(escaped) or psutil.Process(escaped).status() == "zombie"
