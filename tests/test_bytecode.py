"""Bytecode Python might run although its source changed is removed before a verify runs."""

from __future__ import annotations

import importlib.util
import os
import py_compile
from pathlib import Path

from shipyard import verify
from shipyard.bytecode import purge_ambiguous

Mode = py_compile.PycInvalidationMode


def compiled(source: Path, mode: Mode, second: int, written: float) -> Path:
    """``source`` compiled as ``mode`` with its mtime at ``second`` + 0.1, the .pyc's at
    ``written``."""
    source.parent.mkdir(parents=True, exist_ok=True)
    if not source.exists():
        source.write_text("def add(a, b):\n    return a - b\n")
    os.utime(source, (second + 0.1, second + 0.1))
    cached = Path(importlib.util.cache_from_source(str(source)))
    py_compile.compile(str(source), cfile=str(cached), doraise=True, invalidation_mode=mode)
    os.utime(cached, (written, written))
    return cached


def test_what_goes_and_what_stays(tmp_path: Path) -> None:
    second = 1_700_000_000
    same_second = compiled(tmp_path / "a.py", Mode.TIMESTAMP, second, second + 0.5)
    later = compiled(tmp_path / "pkg" / "b.py", Mode.TIMESTAMP, second, second + 2)
    unchecked = compiled(tmp_path / "c.py", Mode.UNCHECKED_HASH, second, second + 2)
    checked = compiled(tmp_path / "d.py", Mode.CHECKED_HASH, second, second + 2)
    in_venv = compiled(tmp_path / ".venv" / "lib" / "e.py", Mode.TIMESTAMP, second, second)
    in_env = compiled(tmp_path / "env" / "lib" / "f.py", Mode.TIMESTAMP, second, second)
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    in_site = compiled(tmp_path / "lib" / "site-packages" / "g.py", Mode.TIMESTAMP, second, second)
    outside = compiled(tmp_path.parent / "outside" / "h.py", Mode.TIMESTAMP, second, second)
    link = same_second.parent / "link.cpython-311.pyc"
    link.symlink_to(outside)
    fifo = same_second.parent / "fifo.cpython-311.pyc"
    os.mkfifo(fifo)  # never opened for reading: that would block
    (same_second.parent / "notes.txt").write_text("kept\n")

    removed = purge_ambiguous(tmp_path)
    assert sorted(removed) == sorted([same_second, unchecked, link])
    for kept in (later, checked, in_venv, in_env, in_site, outside, fifo):
        assert kept.exists() or kept.is_fifo(), kept
    assert (same_second.parent / "notes.txt").is_file()
    assert purge_ambiguous(tmp_path) == []


def test_the_commands_read_the_bytecode_in_the_tree() -> None:
    env = verify._env({"PYTHONPYCACHEPREFIX": "/tmp/elsewhere", "PATH": "/usr/bin"})
    assert "PYTHONPYCACHEPREFIX" not in env and env["PATH"] == "/usr/bin"


def test_before_a_loop_verify_every_pyc_of_the_tree_goes(tmp_path: Path) -> None:
    from shipyard.bytecode import purge_all

    second = 1_700_000_000
    later = compiled(tmp_path / "a.py", Mode.TIMESTAMP, second, second + 2)  # looks fresh
    in_venv = compiled(tmp_path / ".venv" / "lib" / "e.py", Mode.TIMESTAMP, second, second + 2)
    assert purge_all(tmp_path) == [later]
    assert in_venv.is_file() and (tmp_path / "a.py").is_file()
