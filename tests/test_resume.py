"""Durable runs: ``kill -9`` of ``shipyard run`` at several points, then ``shipyard resume``
ships; the user's tree is untouched meanwhile and no completed step's side effect repeats."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from conftest import git, leftover_processes, run_cli
from fixtures.loop_support import (
    GOOD_SESSION,
    LedgerView,
    add_multiply,
    call,
    make_project,
    script,
    spec_file,
    start_run,
    submit,
    tree_snapshot,
    write_test,
)

MARK = call("run", command="echo once >> marks.txt")
SLOW = call("run", command="sleep 4")


def _kill(proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def _resume(project, run_id: str):
    result = run_cli("resume", run_id, cwd=project.path, timeout=180)
    assert result.code == 0, result.stdout + result.stderr
    assert "shipped (exit 0)" in result.stdout
    return result


def _model_step(summary: str):
    return lambda ledger: any(summary in r["summary"] for r in ledger.events("model"))


def test_killed_during_implement_resumes_without_repeating_a_tool(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    before = tree_snapshot(project)
    session = [MARK, SLOW, add_multiply(), write_test(), submit()]
    proc = start_run(project, script(tmp_path, implementer=session), spec_file(tmp_path), "--merge")
    ledger = LedgerView(project)
    ledger.wait_for(_model_step("run sleep 4"), proc=proc)
    _kill(proc)
    assert tree_snapshot(project) == before
    run = ledger.run()
    assert run["status"] == "running" and ledger.state()["stage"] == "implement"
    result = _resume(project, run["id"])
    assert "resume" in result.stdout
    branch = run["branch"]
    # the completed `echo once` ran once; the cut-short `sleep` ran again; one commit; merged
    assert git(project.path, "show", f"{branch}:marks.txt") == "once"
    commits = git(project.path, "log", "--format=%s", f"{run['base_sha']}..{branch}").splitlines()
    assert commits == ["calc.multiply multiplies two numbers"]
    assert git(project.path, "rev-parse", "HEAD") == git(project.path, "rev-parse", branch)
    assert "merged: main fast-forwarded" in result.stdout
    assert not [p for p in leftover_processes() if "sleep" in " ".join(p.cmdline())]


def test_killed_during_verify_resumes_and_verifies_again(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    slow_test = "import time\n\n\ndef test_slowly():\n    time.sleep(3)\n"
    slow = call("write", path="tests/test_slow.py", content=slow_test)
    session = [slow, add_multiply(), write_test(), submit()]
    proc = start_run(project, script(tmp_path, implementer=session), spec_file(tmp_path))
    ledger = LedgerView(project)
    ledger.wait_for(lambda lg: bool(lg.events("submit")), proc=proc)
    evidence = project.path / ".shipyard" / "runs" / ledger.run()["id"] / "verify-1"
    ledger.wait_for(lambda lg: evidence.exists())
    _kill(proc)
    before = tree_snapshot(project)
    assert ledger.state()["stage"] == "verify"
    _resume(project, ledger.run()["id"])
    assert tree_snapshot(project) == before
    verifies = LedgerView(project).events("verify")
    assert len(verifies) == 1 and "verify 1: passed" in verifies[0]["summary"]
    assert (evidence.parent / "verify-1.2").is_dir()  # the cut-short verify's folder was kept


SLOW_REVIEWER = """
import time
from pathlib import Path

import yaml
from pydantic_ai.messages import ModelResponse, ToolCallPart

from shipyard.agents.scripted import ScriptedModel, parse_replies

_replies = yaml.safe_load(Path({script!r}).read_text())
implementer = ScriptedModel(parse_replies(_replies["implementer"])).function
diagnoser = implementer  # never called here


def reviewer(messages, info):
    Path({started!r}).write_text("reviewing")
    time.sleep(30)
    return ModelResponse(parts=[ToolCallPart(tool_name="final_result",
                                             args={{"decision": "approve", "summary": "fine"}})])
"""


def test_killed_after_verify_resumes_without_verifying_again(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    replies = script(tmp_path, implementer=GOOD_SESSION)
    started = tmp_path / "review-started"
    slow = tmp_path / "slow.py"
    slow.write_text(SLOW_REVIEWER.format(script=str(replies), started=str(started)))
    proc = start_run(project, slow, spec_file(tmp_path))
    ledger = LedgerView(project)
    ledger.wait_for(lambda lg: started.exists(), timeout=90, proc=proc)
    _kill(proc)
    assert ledger.state()["stage"] == "review"
    assert len(ledger.events("verify")) == 1
    started.unlink()
    # the resumed run uses the same --model; the slow reviewer is told to hurry up
    slow.write_text(slow.read_text().replace("time.sleep(30)", "pass"))
    _resume(project, ledger.run()["id"])
    after = LedgerView(project)
    assert len(after.events("verify")) == 1
    assert len(after.events("commit")) == 1


def test_sigterm_pauses_the_run_and_stops_what_it_started(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    session = [call("run", command="sleep 30"), *GOOD_SESSION]
    proc = start_run(project, script(tmp_path, implementer=session), spec_file(tmp_path))
    ledger = LedgerView(project)
    ledger.wait_for(_model_step("run sleep 30"), proc=proc)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 128 + signal.SIGTERM, out
    run = ledger.run()
    assert run["status"] == "paused" and run["reason"] == "interrupted"
    assert not [p for p in leftover_processes() if "sleep 30" in " ".join(p.cmdline())]
    result = run_cli("status", cwd=project.path)
    assert "paused" in result.stdout and "interrupted" in result.stdout
