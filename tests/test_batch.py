"""``shipyard batch``: a suite of real runs (scripted models) on the local pool and on a real
Ray cluster; resubmission, a worker killed mid-run, Ctrl-C, and suites that are bad input."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import yaml

from conftest import BIN, EXAMPLES, ROOT, run_cli

FIXTURES = ROOT / "tests" / "fixtures" / "batch"
PYCALC = EXAMPLES / "pycalc"


def suite_file(tmp_path: Path, tasks: list[dict], defaults: dict | None = None) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"defaults": defaults or {}, "tasks": tasks}, sort_keys=False))
    return path


def four_tasks(tmp_path: Path) -> Path:
    bare = tmp_path / "pycalc.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    spec = yaml.safe_load((FIXTURES / "power.spec.yaml").read_text())
    power = {"task": "add a power operation", "project": str(PYCALC)}
    return suite_file(
        tmp_path,
        [
            {"id": "power", **power, "spec": str(FIXTURES / "power.spec.yaml"),
             "model": f"script:{FIXTURES / 'power.yaml'}"},
            {"id": "power-inline", **power, "spec": spec,
             "model": f"script:{FIXTURES / 'power.yaml'}"},
            {"id": "wrong", **power, "spec": str(FIXTURES / "power.spec.yaml"),
             "model": f"script:{FIXTURES / 'wrong.yaml'}", "budget": {"attempts": 2}},
            {"id": "no-such-commit", "task": "anything", "project": str(bare),
             "commit": "0" * 40, "plan": True, "model": f"script:{FIXTURES / 'power.yaml'}"},
        ],
    )  # fmt: skip


def outcomes(rows: list[dict]) -> dict[str, str]:
    return {row["id"]: row["outcome"] for row in rows}


EXPECTED = {"power": "shipped", "power-inline": "shipped", "wrong": "blocked",
            "no-such-commit": "error"}  # fmt: skip


def db_rows(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "batch.db") as conn:
        return conn.execute("SELECT task_id, outcome FROM tasks ORDER BY task_id").fetchall()


def test_a_suite_on_the_local_pool_finishes_every_task_and_a_resubmit_skips_them(tmp_path):
    suite, out = four_tasks(tmp_path), tmp_path / "out"
    first = run_cli("batch", str(suite), "--out", str(out), cwd=tmp_path, timeout=300)
    assert first.code == 3, first.stdout + first.stderr  # one task could not be run
    for task in EXPECTED:
        assert f"queued   {task}" in first.stdout
    assert "shipped  power  " in first.stdout and "blocked  wrong  " in first.stdout
    assert "2 shipped · 1 blocked · 1 error" in first.stdout

    stats = run_cli("stats", "--batch", str(out), "--json", cwd=tmp_path)
    doc = stats.json
    assert outcomes(doc["tasks"]) == EXPECTED
    power = next(t for t in doc["tasks"] if t["id"] == "power")
    assert power["attempts"] == 2 and power["tokens"] > 0 and power["seconds"] > 0
    wrong = next(t for t in doc["tasks"] if t["id"] == "wrong")
    assert wrong["attempts"] == 2 and "attempt" in wrong["reason"]
    broken = next(t for t in doc["tasks"] if t["id"] == "no-such-commit")
    assert broken["reason"].startswith("checkout failed: git checkout")
    assert broken["attempts"] is None and broken["tokens"] is None
    # The evidence of each run is unpacked beside the database: its ledger and its report.
    evidence = out / power["evidence"]
    assert (evidence / ".shipyard" / "shipyard.db").is_file()
    assert list((evidence / ".shipyard" / "runs").glob("r-*/report.md"))
    assert "shipped" in (evidence / "console.log").read_text()

    again = run_cli("batch", str(suite), "--out", str(out), cwd=tmp_path, timeout=300)
    for task in ("power", "power-inline", "wrong"):
        assert f"skipped  {task}  finished before" in again.stdout
    assert "queued   no-such-commit" in again.stdout  # an error is not finished: run again
    assert len(db_rows(out)) == 4

    redo = run_cli("batch", str(suite), "--out", str(out), "--redo", cwd=tmp_path, timeout=300)
    assert "skipped" not in redo.stdout and "queued   power" in redo.stdout
    assert len(db_rows(out)) == 4  # one row per task and digest, replaced


def test_a_changed_task_runs_again_and_the_others_are_skipped(tmp_path):
    spec = str(FIXTURES / "power.spec.yaml")
    model = f"script:{FIXTURES / 'power.yaml'}"
    task = {"project": str(PYCALC), "spec": spec, "model": model}
    tasks = [{"id": "a", "task": "add a power operation", **task}, {"id": "b", "task": "x", **task}]
    suite, out = suite_file(tmp_path, tasks), tmp_path / "out"
    assert run_cli("batch", str(suite), "--out", str(out), cwd=tmp_path, timeout=300).code == 0
    tasks[1]["task"] = "add a power operation, please"
    suite_file(tmp_path, tasks)
    again = run_cli("batch", str(suite), "--out", str(out), cwd=tmp_path, timeout=300)
    assert "skipped  a  " in again.stdout and "queued   b" in again.stdout


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("tasks: []\n", "tasks: List should have at least 1 item"),
        ("tasks:\n  - id: a\n    project: .\n    task: t\n    model: m:x\n",
         "tasks[0]: Value error, needs a `spec`"),
        ("tasks:\n  - {id: a, project: nowhere, task: t, plan: true, model: m:x}\n",
         "tasks[0].project: 'nowhere': no such folder"),
        ("tasks:\n  - {id: a, project: ., task: t, plan: true, model: m:x}\n"
         "  - {id: a, project: ., task: t, plan: true, model: m:x}\n", "task id 'a' is used twice"),
        ("tasks:\n  - {id: a, project: ., task: t, plan: true, colour: red}\n",
         "tasks[0].colour: unknown key 'colour'"),
        ("tasks:\n  - {id: a, project: ., task: t, plan: true}\n",
         "tasks[0].model: no model and no implementer"),
    ],
)  # fmt: skip
def test_a_bad_suite_is_bad_input_naming_the_file_and_field(tmp_path, body, message):
    path = tmp_path / "suite.yaml"
    path.write_text(body)
    result = run_cli("batch", str(path), cwd=tmp_path)
    assert result.code == 2, result.stdout + result.stderr
    assert "shipyard: bad input:" in result.stderr and str(path) in result.stderr
    assert message.replace("Value error, ", "") in result.stderr
    assert not (tmp_path / "suite.batch").exists() or not list((tmp_path / "suite.batch").iterdir())


def test_stats_of_a_folder_with_no_batch_says_so(tmp_path):
    result = run_cli("stats", "--batch", str(tmp_path), cwd=tmp_path)
    assert result.code == 3 and "no batch database here" in result.stderr


def test_ctrl_c_stops_the_batch_and_every_run_it_started(tmp_path):
    slow = {
        "project": str(PYCALC),
        "spec": str(FIXTURES / "power.spec.yaml"),
        "model": f"script:{FIXTURES / 'slow-power.yaml'}",
        "task": "add a power operation",
    }
    suite, out = suite_file(tmp_path, [{"id": "s1", **slow}, {"id": "s2", **slow}]), tmp_path / "o"
    proc = subprocess.Popen(
        [str(BIN / "shipyard"), "batch", str(suite), "--out", str(out)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
    )  # fmt: skip
    try:
        # two tasks at once; each `shipyard run` may show as more than one process (its launcher)
        runs = wait_for(
            lambda: (found := shipyard_runs(proc.pid)) and len(found) >= 2 and found, 60
        )
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stdout + stderr
    assert "every run of the batch was stopped" in stderr
    assert not [p for p in runs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert db_rows(out) == []  # nothing finished: nothing recorded, all run again next time


def shipyard_runs(ancestor: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(ancestor).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if "run" in _cmd(p) and "-m shipyard" in " ".join(_cmd(p))]


def _cmd(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def wait_for(probe, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.2)
    raise AssertionError(f"not seen within {seconds}s")


# --- a real Ray cluster, in a network namespace of its own with only loopback ----------------

RAY_DRIVER = textwrap.dedent(
    """
    import json, subprocess, sys, threading, time, socket, psutil, signal
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    interfaces = [name for _, name in socket.if_nameindex()]
    listening, stop = set(), threading.Event()
    def watch():
        while not stop.is_set():
            try:
                found = psutil.net_connections("inet")
            except (psutil.Error, OSError):  # a process went away while it was read
                found = []
            listening.update(c.laddr.ip for c in found if c.status == "LISTEN")
            time.sleep(0.5)
    threading.Thread(target=watch, daemon=True).start()
    argv, kill = sys.argv[1:-1], sys.argv[-1] == "kill"
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = None
    if kill:  # SIGKILL the Ray worker that runs the first `shipyard run` seen
        deadline = time.time() + 120
        while killed is None and time.time() < deadline:
            for p in psutil.process_iter():
                try:
                    cmd = p.cmdline()
                    if "-m" in cmd and "shipyard" in cmd and "run" in cmd:
                        worker = p.parent()
                        while worker is not None and not worker.name().startswith("ray::"):
                            worker = worker.parent()
                        if worker is not None:
                            killed = {"worker": worker.pid, "run": p.pid}
                            worker.send_signal(signal.SIGKILL)
                            break
                except psutil.Error:
                    pass
            time.sleep(0.2)
    out, _ = proc.communicate(timeout=600)
    stop.set()
    print(json.dumps({"code": proc.returncode, "out": out, "interfaces": interfaces,
                      "listening": sorted(listening), "killed": killed}))
    """
)


def ray_batch(tmp_path: Path, suite: Path, out: Path, *extra: str, kill: bool = False) -> dict:
    argv = [str(BIN / "shipyard"), "batch", str(suite), "--engine", "ray", "--out", str(out)]
    script = tmp_path / "driver.py"
    script.write_text(RAY_DRIVER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        ["unshare", "--net", sys.executable, str(script), *argv, *extra, "kill" if kill else "-"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.slow
def test_the_same_suite_on_a_real_ray_cluster_gives_the_same_rows_and_stays_on_loopback(
    tmp_path,
):
    suite = four_tasks(tmp_path)
    local = run_cli(
        "batch", str(suite), "--out", str(tmp_path / "local"), cwd=tmp_path, timeout=300
    )
    result = ray_batch(tmp_path, suite, tmp_path / "ray")
    assert result["code"] == local.code == 3, result["out"]
    assert result["interfaces"] == ["lo"]  # nothing Ray opened can be reached from elsewhere
    assert result["listening"], "Ray's sockets were not seen"
    loopback = [ip for ip in result["listening"] if ipaddress.ip_address(ip).is_loopback
                or ip.startswith("::ffff:127.")]  # fmt: skip
    assert loopback == result["listening"], result["listening"]
    ray_rows = run_cli("stats", "--batch", str(tmp_path / "ray"), "--json", cwd=tmp_path).json
    local_rows = run_cli("stats", "--batch", str(tmp_path / "local"), "--json", cwd=tmp_path).json
    assert outcomes(ray_rows["tasks"]) == outcomes(local_rows["tasks"]) == EXPECTED
    for a, b in zip(
        sorted(ray_rows["tasks"], key=lambda t: t["id"]),
        sorted(local_rows["tasks"], key=lambda t: t["id"]),
        strict=True,
    ):
        assert (a["attempts"], a["tokens"]) == (b["attempts"], b["tokens"])


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_retried_and_every_task_is_recorded_once(tmp_path):
    slow = {
        "project": str(PYCALC),
        "spec": str(FIXTURES / "power.spec.yaml"),
        "model": f"script:{FIXTURES / 'slow-power.yaml'}",
        "task": "add a power operation",
    }
    suite = suite_file(tmp_path, [{"id": "slow", **slow}, {"id": "fast", **slow,
                       "model": f"script:{FIXTURES / 'power.yaml'}"}])  # fmt: skip
    out = tmp_path / "out"
    result = ray_batch(tmp_path, suite, out, kill=True)
    assert result["killed"] is not None, result["out"]
    assert result["code"] == 0, result["out"]
    assert db_rows(out) == [("fast", "shipped"), ("slow", "shipped")]
    assert not _alive(result["killed"]["run"])  # the killed worker's run died with it


def _alive(pid: int, within: float = 20.0) -> bool:
    """Still running after ``within`` seconds: a run told to stop when its worker died unwinds
    first (its app and test runs stopped on the way out); a zombie not yet reaped is dead."""
    deadline = time.monotonic() + within
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.2)


@pytest.mark.slow
def test_no_process_above_a_batch_run_shows_the_callers_keys(tmp_path):
    """Code a model wrote reads /proc/PID/environ of every process above it, up to the batch
    driver: none holds a key the run did not pass on; the run itself got its keys back."""
    project = tmp_path / "pycalc"
    shutil.copytree(PYCALC, project)
    with (project / "shipyard.toml").open("a") as config:
        config.write('\n[environment]\npass = ["DEPLOY_TOKEN"]\n')
    walker = (FIXTURES / "walk_up.py").read_text()
    session = {"implementer": [
        {"call": "write", "args": {"path": "walk_up.py", "content": walker}},
        {"call": "run", "args": {"command": "python walk_up.py"}},
        {"call": "submit", "args": {"summary": "looked around"}},
    ], "reviewer": [{"output": {"decision": "approve", "summary": "unused"}}],
       "diagnoser": [{"output": {"root_cause": "-", "evidence": "-", "fix_plan": "-",
                                 "confidence": 0}}]}  # fmt: skip
    script = tmp_path / "walk.yaml"
    script.write_text(yaml.safe_dump(session))
    task = {"id": "walk", "project": str(project), "task": "look around", "budget": {"attempts": 1},
            "spec": str(FIXTURES / "power.spec.yaml"), "model": f"script:{script}"}  # fmt: skip
    suite, out = suite_file(tmp_path, [task]), tmp_path / "out"
    keys = {"VAULT_TOKEN": "vault-4f1d9c", "DEPLOY_TOKEN": "deploy-77ab"}
    result = run_cli("batch", str(suite), "--out", str(out), cwd=tmp_path, env=keys, timeout=300)
    assert result.code == 1, result.stdout + result.stderr  # blocked: power was never written
    with sqlite3.connect(out / "evidence" / "walk" / ".shipyard" / "shipyard.db") as db:
        said = "\n".join(r[0] for r in db.execute("SELECT data FROM messages"))
    assert "deploy token: deploy-77ab" in said  # handed over to the run, passed to the tool
    assert "driver seen: True" in said  # the walk went all the way up
    assert "leaks: []" in said and "vault-4f1d9c" not in said
