"""Hardening: each attack in ``scripts/attack.py`` (a hostile model or project, through the real
CLI with scripted models) must hold; and the traps a subreaper and a death signal could fall
into, checked on :mod:`shipyard.process` itself."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))

import attack  # noqa: E402

from shipyard import process  # noqa: E402

ATTACKS = attack.load()


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_holds(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTACK_SPEW_BYTES", str(600 << 20))  # 600 MB: the cap, not the 3 GB
    outcome = ATTACKS[name](tmp_path)
    assert outcome.held, f"{name} broke: {outcome.reason}"
    assert outcome.reason


def test_a_failing_command_keeps_its_status_while_escapees_are_reaped(tmp_path: Path) -> None:
    """The reaper waits on adopted pids only: a command of ours, finishing while the reaper
    runs in another thread, still reports its own exit code."""
    env = {"PATH": os.environ["PATH"]}
    results = []
    command = "setsid sleep 30 & sleep 0.3; exit 7"

    def work() -> None:
        log = tmp_path / "out.log"
        results.append(process.run(command, cwd=tmp_path, env=env, timeout=20, log=log))

    worker = threading.Thread(target=work)
    worker.start()
    killed = 0
    while worker.is_alive():
        killed += process.kill_adopted()
        time.sleep(0.01)
    worker.join()
    killed += process.kill_adopted()
    assert results[0].exit_code == 7 and not results[0].timed_out
    assert killed >= 1, "the setsid child was never adopted and killed"
    assert process.adopted() == []


def test_a_process_started_in_a_thread_outlives_the_thread(tmp_path: Path) -> None:
    """The death signal is the launcher's, set before it execs: a worker thread that starts an
    app and ends does not take the app with it."""
    started = []

    def work() -> None:
        argv = ["sleep", "30"]
        env = {"PATH": os.environ["PATH"]}
        started.append(process.start(argv, cwd=tmp_path, env=env, stdout=tmp_path / "o.log"))

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    proc = started[0]
    try:
        time.sleep(0.5)
        assert proc.poll() is None, (
            f"the app died with the thread that started it: {proc.returncode}"
        )
        assert len(process.group_members(proc.pid)) == 2  # the launcher and the app
    finally:
        process.stop_group(proc)
    assert process.group_members(proc.pid) == []


def test_output_is_capped_with_head_and_tail_kept(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    command = "seq 1 200000; echo THE-END"
    env = {"PATH": os.environ["PATH"]}
    proc = process.start(["/bin/sh", "-c", command], cwd=tmp_path, env=env, stdout=log,
                         head=1000, tail=1000)  # fmt: skip
    assert process.wait_exit(proc, 20)
    process.stop_group(proc)
    text = log.read_text()
    assert text.startswith("1\n2\n3\n") and text.endswith("199999\n200000\nTHE-END\n")
    assert "bytes of output cut here; the first 1000 and the last 1000 bytes are kept]" in text
    assert len(text) < 2200


def test_a_sandbox_without_bwrap_is_exit_3_before_anything(tmp_path: Path) -> None:
    from conftest import Project, run_cli

    proj = Project(tmp_path / "p").write({"shipyard.toml": "[sandbox]\nkind = 'bwrap'\n"})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to("/usr/bin/git")
    out = run_cli("run", "x", "--yes", "--model", "script:none.yaml", cwd=proj.path,
                  env={"PATH": str(bin_dir)})  # fmt: skip
    assert out.code == 3, out.stdout + out.stderr
    assert '[sandbox] kind = "bwrap", but bwrap is not on PATH' in out.stderr
    assert "apt-get install bubblewrap" in out.stderr
    assert not (proj.path / ".shipyard" / "runs").exists()


def test_a_same_size_edit_within_the_second_is_not_hidden_by_bytecode(tmp_path: Path) -> None:
    """Writes replace the file; its mtime still moves on by a whole second, or Python's cache
    (seconds and size) would keep running the old code."""
    from shipyard.agents.tools import Toolbox

    (tmp_path / "calc.py").write_text("def f():\n    return 1\n")
    box = Toolbox(tmp_path, env={"PATH": os.environ["PATH"]})
    first = box.call("run", {"command": "python -c 'import calc; print(calc.f())'"})
    assert first.ok and first.text.endswith("\n1"), first.text
    edit = box.call("edit", {"path": "calc.py", "search": "return 1", "replace": "return 2"})
    assert edit.ok, edit.text
    again = box.call("run", {"command": "python -c 'import calc; print(calc.f())'"})
    assert again.ok and again.text.endswith("\n2"), again.text
