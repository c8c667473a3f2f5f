"""``shipyard bench``: the bundled suite's scripted sessions (a wrong first attempt, a vacuous
test, a swallowed error) through Shipyard's loop and the naive one, judged by hidden checks."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, run_cli
from fixtures.loop_support import make_project, script, spec_file

BENCH = ROOT / "bench"
MISTAKES = ("pycalc-power", "pycalc-mod", "pycalc-log")
"""A wrong first attempt, a vacuous test, a swallowed error: each fixable."""


def bundled_subset(tmp_path: Path, ids: tuple[str, ...]) -> Path:
    """The bundled suite cut down to ``ids``, its paths made absolute."""
    doc = yaml.safe_load((BENCH / "suite.yaml").read_text())
    tasks = []
    for task in doc["tasks"]:
        if task["id"] in ids:
            for key in ("project", "spec", "hidden"):
                task[key] = str((BENCH / task[key]).resolve())
            task["model"] = "script:" + str(BENCH / task["model"].removeprefix("script:"))
            tasks.append(task)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"defaults": doc["defaults"], "tasks": tasks}))
    return path


@pytest.mark.slow
def test_the_loop_ships_nothing_broken_and_the_naive_loop_is_measured(tmp_path):
    suite, out = bundled_subset(tmp_path, MISTAKES), tmp_path / "out"
    result = run_cli("bench", str(suite), "--out", str(out), "--json", cwd=tmp_path, timeout=900)
    assert result.code == 0, result.stdout + result.stderr
    doc = result.json
    assert doc["schema"] == "shipyard.bench/1"
    loop, naive, plain = (doc["passes"][p] for p in ("shipyard", "naive", "no-knowledge"))
    # Shipyard's loop ships every fixable task, and nothing it ships fails the hidden checks.
    assert loop["ship_rate"] == {"value": 1.0, "numerator": 3, "denominator": 3}
    assert loop["false_ship_rate"]["numerator"] == 0
    assert loop["hidden_passing"]["numerator"] == 3
    assert loop["attempts_per_shipped"] == 2.0  # each mistake cost one attempt
    # The naive loop ships its first submission: every seeded mistake is a false ship.
    assert naive["ship_rate"]["numerator"] == 3 and naive["attempts_per_shipped"] == 1.0
    assert naive["false_ship_rate"] == {"value": 1.0, "numerator": 3, "denominator": 3}
    assert naive["required_tests_passing"]["numerator"] == 0
    assert (
        naive["runtime_checks_passing"]["numerator"] < loop["runtime_checks_passing"]["numerator"]
    )
    assert plain["false_ship_rate"]["numerator"] == 0
    by_id = {t["id"]: t for t in doc["tasks"]}
    log = by_id["pycalc-log"]
    assert log["naive"]["outcome"] == "shipped" and log["naive"]["false_ship"] is True
    assert log["shipyard"]["hidden"] == "passed" and log["shipyard"]["attempts"] == 2

    # The judgment ran the hidden test in the shipped tree...
    judged = out / "naive" / log["naive"]["evidence"] / "judge" / "verify.json"
    checks = {c["id"]: c for g in json.loads(judged.read_text())["gates"] for c in g["checks"]}
    hidden_test = checks["tests/test_hidden_log.py::test_log_refuses"]
    assert hidden_test["status"] == "failed" and "DID NOT RAISE" in hidden_test["message"]
    assert checks["log-of-zero"]["status"] == "failed"
    # ...which was not on disk while the agent worked: its `ls tests` saw only its own files.
    for name in ("shipyard", "naive"):
        listing = tool_output(out / name / by_id["pycalc-log"][name]["evidence"], "ls tests")
        assert "test_calc.py" in listing and "test_hidden_log.py" not in listing
    # Knowledge: the later tasks on pycalc were given what the earlier ones verified.
    assert (out / "shipyard" / "knowledge" / "pycalc-power.md").read_text().count("### ") >= 2
    assert knowledge_given(out / "shipyard" / by_id["pycalc-log"]["shipyard"]["evidence"]) > 0
    assert (
        knowledge_given(out / "no-knowledge" / by_id["pycalc-log"]["no-knowledge"]["evidence"]) == 0
    )

    # Submitted again: nothing runs again, and the table shows the same figures.
    again = run_cli("bench", str(suite), "--out", str(out), cwd=tmp_path, timeout=600)
    assert again.code == 0, again.stdout + again.stderr
    assert "naive        skipped  pycalc-mod  finished before" in again.stdout
    table = again.stdout
    assert row(table, "ship rate") == ["3/3 (100%)", "3/3 (100%)"]
    assert row(table, "false-ship rate (of shipped)") == ["0/3 (0%)", "3/3 (100%)"]
    assert row(table, "hidden checks passing") == ["3/3 (100%)", "0/3 (0%)"]
    assert row(table, "attempts per shipped task") == ["2", "1"]
    assert row(table, "pycalc-mod") == [
        "shipped, works",
        "shipped, BROKEN (failed)",
        "shipped, works",
    ]
    print(table)


def row(table: str, label: str) -> list[str]:
    line = next(x for x in table.splitlines() if x.startswith(label + "  "))
    return [c.strip() for c in line[34:].split("  ") if c.strip()]


def tool_output(evidence: Path, command: str) -> str:
    """What the implementer's ``run`` tool answered to ``command``, from the run's ledger."""
    with sqlite3.connect(evidence / ".shipyard" / "shipyard.db") as db:
        rows = []
        for (data,) in db.execute("SELECT data FROM messages ORDER BY seq"):
            found = json.loads(data)
            rows += found if isinstance(found, list) else [found]
    calls = {
        p["tool_call_id"]: p for m in rows for p in m["parts"] if p.get("part_kind") == "tool-call"
    }
    for message in rows:
        for part in message["parts"]:
            call = calls.get(part.get("tool_call_id", ""))
            if part.get("part_kind") == "tool-return" and call and command in str(call["args"]):
                return str(part["content"])
    raise AssertionError(f"no {command!r} in the ledger of {evidence}")


def knowledge_given(evidence: Path) -> int:
    with sqlite3.connect(evidence / ".shipyard" / "shipyard.db") as db:
        return db.execute("SELECT COUNT(*) FROM knowledge_uses").fetchone()[0]


def test_every_task_of_the_bundled_suite_has_its_hidden_checks_and_a_session(tmp_path):
    from shipyard.batch.bench import bench_tasks
    from shipyard.batch.suite import hidden_files, load_suite

    suite = load_suite(BENCH / "suite.yaml")
    tasks = bench_tasks(suite, None)
    assert len(tasks) >= 8
    projects = {Path(t.plan.project).name for t in tasks}
    assert projects == {"pycalc", "node-greet", "todo"}  # library, CLI, HTTP API, web page
    for task in tasks:
        assert task.plan.model and task.plan.model.startswith("script:")
        assert task.hidden.acceptance, task.plan.id
        # the hidden checks live beside the suite, never inside the project an agent gets
        assert not Path(task.plan.hidden).is_relative_to(task.plan.project)
        files = hidden_files(task.plan.hidden)
        assert files is None or not files.is_relative_to(task.plan.project)
    assert sum(bool(t.hidden.checks.ui) for t in tasks) >= 2


@pytest.mark.parametrize(
    ("hidden", "message"),
    [
        (None, "tasks[0].hidden: `shipyard bench` judges every task by its hidden checks"),
        ("task: t\nacceptance: [{id: a, text: x}]\ncolour: red\n", "colour"),
        ("task: t\nacceptance: [{id: a, text: x}]\n", "no hidden check covers the acceptance ids"),
    ],
)  # fmt: skip
def test_a_task_without_valid_hidden_checks_is_bad_input(tmp_path, hidden, message):
    task = {"id": "a", "project": str(ROOT / "examples" / "pycalc"), "task": "t", "plan": True,
            "model": "openai:gpt-4.1"}  # fmt: skip
    if hidden is not None:
        (tmp_path / "hidden.yaml").write_text(hidden)
        task["hidden"] = "hidden.yaml"
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"tasks": [task]}))
    result = run_cli("bench", str(suite), cwd=tmp_path)
    assert result.code == 2, result.stdout + result.stderr
    assert "shipyard: bad input:" in result.stderr and message in result.stderr
    where = suite if hidden is None else tmp_path / "hidden.yaml"
    assert str(where) in result.stderr
    assert not (tmp_path / "suite.bench").exists()  # nothing ran


def test_implementer_is_refused_while_run_has_no_such_option(tmp_path):
    import inspect

    from shipyard.cli import run

    if "implementer" in inspect.signature(run).parameters:
        pytest.skip("`shipyard run --implementer` exists: bench passes it through")
    missing = tmp_path / "no-suite.yaml"
    result = run_cli("bench", str(missing), "--implementer", "claude-code", cwd=tmp_path)
    assert result.code == 2, result.stdout + result.stderr
    assert "--implementer is not available" in result.stderr
    assert "not a regular file" not in result.stderr


def test_a_naive_run_ships_its_first_submission_unchecked(tmp_path):
    import shutil
    import subprocess

    project = tmp_path / "pycalc"
    shutil.copytree(ROOT / "examples" / "pycalc", project)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True)
    fixtures = ROOT / "tests" / "fixtures" / "batch"
    result = run_cli(
        "run", "add a power operation", "--spec", str(fixtures / "power.spec.yaml"),
        "--model", f"script:{fixtures / 'wrong.yaml'}", "--naive", "--yes", cwd=project,
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    assert "shipped as submitted: no gates, no review (--naive)" in result.stdout
    assert "\nverify " not in result.stdout and "\nreview " not in result.stdout  # no stage ran
    status = run_cli("status", "--json", cwd=project).json[0]
    assert status["status"] == "shipped" and status["attempts"] == 1
    shown = subprocess.run(
        ["git", "show", status["commit"]], cwd=project, capture_output=True, text=True, check=True
    ).stdout
    assert "Shipped as the model submitted it (--naive: no gates, no review)." in shown
    assert "return a * b" in shown  # the wrong power, shipped
    run_dir = project / ".shipyard" / "runs" / status["id"]
    assert not list(run_dir.glob("verify-*"))  # no gate ran
    config = json.loads((run_dir / "config.json").read_text())
    assert config["knowledge"]["enabled"] is False
    memory = run_cli("memory", "list", "--json", cwd=project).json
    assert memory["entries"] == []  # nothing learned: no memory in the naive loop
    # ...and its implementer was not told that gates would check its submission
    system = system_prompt(project / ".shipyard" / "shipyard.db")
    assert "nothing builds, tests or reviews it after you" in system
    assert "gates" not in system


def system_prompt(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        for (data,) in conn.execute("SELECT data FROM messages ORDER BY seq"):
            found = json.loads(data)
            for message in found if isinstance(found, list) else [found]:
                for part in message["parts"]:
                    if part.get("part_kind") == "system-prompt":
                        return str(part["content"])
    raise AssertionError(f"no system prompt in {db}")


def test_a_naive_agent_is_not_promised_gates(tmp_path):
    project = make_project(tmp_path)
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import pathlib, sys\n"
        "pathlib.Path('calc.py').write_text(pathlib.Path('calc.py').read_text()"
        " + '\\n\\ndef multiply(a, b):\\n    return a * b\\n')\n"
        "print('done')\n"
    )
    result = run_cli(
        "run", "multiply two numbers", "--spec", str(spec_file(tmp_path)), "--naive", "--yes",
        "--model", f"script:{script(tmp_path)}",
        "--implementer", f"cmd:{sys.executable} {agent} {{prompt_file}}", cwd=project.path,
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    prompts = list((project.path / ".shipyard" / "runs").glob("*/agent-1.prompt.md"))
    text = prompts[0].read_text()
    assert "shipped as it is: nothing builds, tests or reviews it after you" in text
    assert "Shipyard checks the folder itself" not in text and "probes it" not in text
