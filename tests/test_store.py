"""The ledger's database: numbered migrations, refusal of a newer schema, one transaction per
step, and one live process per run."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shipyard.exceptions import EnvironmentProblem, RunBusy, RunNotFound
from shipyard.loop.fingerprint import failure, normalise
from shipyard.loop.state import RunState
from shipyard.loop.step import Step
from shipyard.store import migrations
from shipyard.store.db import open_db
from shipyard.store.ledger import Ledger, UsageRow


def _ledger(tmp_path: Path) -> Ledger:
    return Ledger(open_db(tmp_path / "shipyard.db"), RunState.model_validate_json)


def _run(ledger: Ledger, run_id: str = "r-1") -> None:
    ledger.create_run(
        run_id=run_id, task="t", base_sha="abc", branch=f"shipyard/{run_id}", worktree="/w",
        options={}, state=RunState(),
    )  # fmt: skip


def test_a_new_database_gets_every_migration(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "shipyard.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "attempts", "events", "gate_results", "usage", "messages"} <= tables
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_only_missing_migrations_run_and_a_failing_one_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "shipyard.db"
    open_db(path).close()
    extra = "CREATE TABLE later (x INTEGER);\nINSERT INTO nowhere VALUES (1);\n"
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, extra))
    from shipyard.store import db

    monkeypatch.setattr(db, "MIGRATIONS", migrations.MIGRATIONS)
    with pytest.raises(EnvironmentProblem, match="no such table: nowhere"):
        open_db(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS) - 1
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "later" not in names  # rolled back with the migration


def test_a_database_from_a_newer_shipyard_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(EnvironmentProblem, match="schema version 99 is newer"):
        open_db(path)


def test_a_step_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    _run(ledger)
    state = RunState(stage="implement", step=3)
    step = Step(usage=[UsageRow(role="implementer", model="m", input_tokens=5, output_tokens=1)])
    step.event("model", "step 3")
    step.messages.append(("implementer", '{"not": "checked here"}'))
    step.gates.append(("v-1", {"name": "nonexistent-column-test"}))  # no "status": fails
    with pytest.raises(KeyError):
        ledger.commit("r-1", state, step)
    assert [e.kind for e in ledger.events("r-1")] == ["run"]
    assert ledger.run("r-1").state.step == 0
    assert ledger.messages("r-1", "implementer") == []


def test_runs_are_found_by_a_unique_prefix(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    _run(ledger, "r-20261124-aaa")
    _run(ledger, "r-20261124-abb")
    assert ledger.run("r-20261124-aa").id == "r-20261124-aaa"
    with pytest.raises(RunNotFound, match="names 2 runs"):
        ledger.run("r-20261124-a")
    with pytest.raises(RunNotFound, match="no run 'zzz'"):
        ledger.run("zzz")


def test_a_run_held_by_a_live_process_is_refused(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    _run(ledger)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "shipyard"], stdin=subprocess.DEVNULL
    )
    try:
        cmdline = Path(f"/proc/{holder.pid}/cmdline")
        while b"shipyard" not in cmdline.read_bytes():  # until the child has exec'd
            time.sleep(0.01)
        ledger.conn.execute("UPDATE runs SET pid = ? WHERE id = 'r-1'", (holder.pid,))
        with pytest.raises(RunBusy, match=str(holder.pid)):
            ledger.claim("r-1")
    finally:
        holder.kill()
        holder.wait()
    ledger.claim("r-1")  # the holder is gone: the run can be taken
    assert ledger.run("r-1").pid == os.getpid()


def test_fingerprints_ignore_what_changes_between_runs() -> None:
    a = failure("tests", "t::x", "tests/t.py:12: assert 7 == 12 at 0x7f3a2b at /tmp/a/b.py")
    b = failure("tests", "t::x", "tests/t.py:40: assert 8 == 12 at 0x11ff00 at /work/c/d.py")
    c = failure("tests", "t::y", "tests/t.py:12: assert 7 == 12 at 0x7f3a2b at /tmp/a/b.py")
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert a.kind == "assertion"
    assert normalise("2026-11-24T16:00:01Z took 1.25s") == "<time> took <n>s"
