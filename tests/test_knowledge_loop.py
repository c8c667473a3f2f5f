"""Knowledge across runs, end to end: the real CLI, a real project, scripted models.

A first task fails on a quirk of the project, is diagnosed and ships; the diagnosis becomes a
pitfall and the test command a verified command. A second, different task then ships in one
attempt where the same task on the same code without the store takes three. A known pitfall's
fix reaches the implementer as soon as its failure appears, before any diagnosis. The
project's AGENTS.md reaches the instructions a real (local, OpenAI-compatible) model receives.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from conftest import CliRun, git, run_cli
from fixtures import knowledge_support as ks
from fixtures.loop_support import (
    APPROVE,
    DIAGNOSIS,
    GOOD_SESSION,
    RIGHT,
    TEST_MULTIPLY,
    script,
    spec_file,
    submit,
)
from fixtures.loop_support import make_project as make_multiply_project
from fixtures.openai_server import serve

TEST_COMMAND = "python -m pytest -q -p no:cacheprovider"


def _run(project: Path, op: str, model: Path, tmp: Path, *extra: str) -> CliRun:
    spec = tmp / f"{op}.spec.yaml"
    spec.write_text(ks.spec_text(op))
    return run_cli(
        "run", f"add {op} to calc", "--spec", str(spec), "--model", f"script:{model}", "--yes",
        *extra, cwd=project, timeout=180,
    )  # fmt: skip


def _db(project: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(project / ".shipyard" / "shipyard.db", timeout=30)
    conn.row_factory = sqlite3.Row
    return conn


def _last_run(project: Path) -> dict:
    with _db(project) as conn:
        run = conn.execute("SELECT * FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()
        tokens = conn.execute(
            "SELECT SUM(input_tokens) FROM usage WHERE run_id = ?", (run["id"],)
        ).fetchone()[0]
        first = conn.execute(
            "SELECT data FROM messages WHERE run_id = ? AND conversation = 'implementer'"
            " ORDER BY seq LIMIT 1",
            (run["id"],),
        ).fetchone()[0]
        kinds = [
            r[0] for r in conn.execute("SELECT kind FROM events WHERE run_id = ?", (run["id"],))
        ]
        conversations = {
            r[0]
            for r in conn.execute(
                "SELECT conversation FROM messages WHERE run_id = ?", (run["id"],)
            )
        }
    state = json.loads(run["state"])
    return {
        "id": run["id"], "status": run["status"], "attempts": state["attempt"],
        "input_tokens": tokens, "instructions": json.loads(first)[0]["parts"][0]["content"],
        "events": kinds, "conversations": conversations,
    }  # fmt: skip


def _memory(project: Path) -> list[dict]:
    listed = run_cli("memory", "list", "--json", cwd=project)
    assert listed.code == 0, listed.stderr
    return json.loads(listed.stdout)["entries"]


@pytest.fixture(scope="module")
def after_first_task(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The calc project after ``add multiply``: failed twice on the registry, diagnosed,
    shipped and merged. Tests copy it."""
    tmp = tmp_path_factory.mktemp("first")
    project = ks.make_project(tmp)
    result = _run(
        project.path, "multiply", ks.model_script(tmp, "multiply", ["add"]), tmp, "--merge"
    )
    assert result.code == 0, result.stdout + result.stderr
    return project.path, _last_run(project.path)


def test_a_quirk_is_diagnosed_once_and_kept_as_a_pitfall_with_the_verified_command(
    after_first_task: tuple[Path, dict],
) -> None:
    project, first = after_first_task
    assert first["status"] == "shipped" and first["attempts"] == 3
    assert "diagnosis" in first["events"]
    entries = _memory(project)
    pitfalls = [e for e in entries if e["kind"] == "pitfall"]
    assert len(pitfalls) == 1, pitfalls  # the specific test, not also the suite's summary
    pitfall = pitfalls[0]
    # the old test that passed at the base and fails now: its weakening check is the specific one
    assert pitfall["topic"] == (
        "tests|tests/test_registry.py::test_every_operation_is_registered|assertion"
    )
    assert "multiply is not registered in OPERATIONS" in pitfall["text"]
    assert "Fix that then passed: Register the new function in the OPERATIONS" in pitfall["text"]
    assert pitfall["role"] == "diagnoser" and pitfall["run_id"] == first["id"]
    commands = {e["key"]: e for e in entries if e["kind"] == "command"}
    assert commands["test"]["text"] == TEST_COMMAND
    assert commands["test"]["role"] == "gates" and first["id"] in commands["test"]["evidence"]
    assert commands["test"]["seen"] == 1  # recorded once a run, not at every verify


def test_the_next_task_ships_in_one_attempt_with_the_store_and_takes_three_without(
    after_first_task: tuple[Path, dict], tmp_path: Path
) -> None:
    template, _ = after_first_task
    with_store = tmp_path / "with"
    shutil.copytree(template, with_store)
    without = tmp_path / "without"  # the same code, no .shipyard: no store
    git(tmp_path, "clone", "-q", str(template), str(without))
    assert (without / "calc.py").read_text() == (template / "calc.py").read_text()
    assert not (without / ".shipyard").exists()
    model = ks.model_script(tmp_path, "subtract", ["add", "multiply"])

    for project in (with_store, without):
        result = _run(project, "subtract", model, tmp_path)
        assert result.code == 0, result.stdout + result.stderr
    helped, alone = _last_run(with_store), _last_run(without)

    assert helped["attempts"] == 1 and "diagnosis" not in helped["events"]
    assert alone["attempts"] == 3 and "diagnosis" in alone["events"]
    assert helped["input_tokens"] < alone["input_tokens"] / 2, (helped, alone)
    # what the implementer was told: the pitfall and the verified command
    told = helped["instructions"]
    assert (
        "[pitfall] When tests tests/test_registry.py::test_every_operation_is_registered fails "
        "(assertion): passed at the base revision, failed now: " in told
    )
    assert "tests/test_registry.py::test_every_operation_is_registered" in told
    assert f"[command] test: `{TEST_COMMAND}` (verified: the tests gate passed, run r-" in told
    assert "[pitfall]" not in alone["instructions"]

    stats = json.loads(run_cli("stats", "--json", cwd=with_store).stdout)
    assert stats["attempts_with_knowledge"] == {
        "value": 1.0,
        "numerator": 1,
        "denominator": 1,
        "min": 1,
        "max": 1,
    }
    assert stats["attempts_without_knowledge"]["value"] == 3.0  # the first task
    assert stats["tokens_with_knowledge"]["value"] < stats["tokens_without_knowledge"]["value"]
    assert stats["knowledge_entries_per_run"]["numerator"] >= 2
    text = run_cli("stats", cwd=with_store).stdout
    assert "attempts, with knowledge" in text and "tokens, without" in text
    entries = {e["kind"]: e for e in _memory(with_store)}
    assert entries["pitfall"]["used"] == 1 and entries["pitfall"]["helped"] == 1


def test_a_failure_matching_a_known_pitfall_gets_its_fix_at_once_without_a_diagnosis(
    after_first_task: tuple[Path, dict], tmp_path: Path
) -> None:
    template, _ = after_first_task
    project = tmp_path / "deaf"
    shutil.copytree(template, project)
    # this model ignores its instructions (where the knowledge is): it fails once, and the
    # failure's fingerprint (another function's name in it) matches the known pitfall
    model = ks.model_script(tmp_path, "subtract", ["add", "multiply"], reads_instructions=False)
    result = _run(project, "subtract", model, tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    run = _last_run(project)
    assert run["attempts"] == 2
    assert "pitfall" in run["events"] and "diagnosis" not in run["events"]
    assert not any(c.startswith("diagnoser") for c in run["conversations"])
    assert "a known pitfall: 1 matched" in result.stdout
    with _db(project) as conn:
        said = [
            r[0] for r in conn.execute(
                "SELECT data FROM messages WHERE run_id = ? AND conversation = 'implementer'",
                (run["id"],),
            )
        ]  # fmt: skip
    handed = [m for m in said if "This failure is a known pitfall of this project" in m]
    assert len(handed) == 1 and "Fix that then passed: Register the new function" in handed[0]
    stats = json.loads(run_cli("stats", "--json", cwd=project).stdout)
    assert stats["pitfalls_matched"]["numerator"] == 1


def _changes(problem: str) -> dict:
    finding = {"acceptance_id": "multiply", "problem": problem, "change": "test it"}
    return {"output": {"decision": "changes", "summary": problem, "findings": [finding]}}


def _planned(tmp_path: Path) -> dict:
    decision = {"choice": "multiply lives in calc.py", "reason": "next to add"}
    return {"output": {"spec_yaml": spec_file(tmp_path).read_text(), "decisions": [decision]}}


def test_decisions_and_findings_are_kept_when_a_run_ships_and_a_recurring_one_is_a_convention(
    tmp_path: Path,
) -> None:
    project = make_multiply_project(tmp_path)
    again = [*GOOD_SESSION, submit("negative numbers tested")]
    for n, problem in enumerate(
        ["no test multiplies negative numbers", "no test multiplies two negative numbers"]
    ):
        path = script(
            tmp_path, planner=[_planned(tmp_path)], implementer=again,
            reviewer=[_changes(problem), APPROVE],
        )  # fmt: skip
        result = run_cli(
            "run", "multiply two numbers", "--model", f"script:{path}", "--yes", cwd=project.path
        )
        assert result.code == 0, result.stdout + result.stderr
        kinds = {e["kind"]: e for e in _memory(project.path)}
        if n == 0:  # seen once: a finding, not handed to anyone
            assert kinds["finding"]["text"] == "no test multiplies negative numbers Change: test it"
            assert "convention" not in kinds
    kinds = {e["kind"]: e for e in _memory(project.path)}
    assert "finding" not in kinds
    assert kinds["convention"]["role"] == "reviewer" and kinds["convention"]["seen"] == 2
    assert kinds["decision"]["text"] == "multiply lives in calc.py (because next to add)"
    assert kinds["decision"]["seen"] == 2  # the same decision twice: merged
    # the second run's planner was given the first run's decision
    with _db(project.path) as conn:
        run = conn.execute("SELECT id FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()[0]
        planner = conn.execute(
            "SELECT data FROM messages WHERE run_id = ? AND conversation = 'planner'", (run,)
        ).fetchone()[0]
    assert "[decision] multiply lives in calc.py (because next to add)" in planner


def test_a_blocked_run_stores_only_what_was_verified(tmp_path: Path) -> None:
    project = make_multiply_project(tmp_path, attempts=2)
    path = script(
        tmp_path, planner=[_planned(tmp_path)], implementer=[*GOOD_SESSION, submit("again")],
        reviewer=[_changes("no negative numbers"), _changes("no negative numbers")],
    )  # fmt: skip
    result = run_cli(
        "run", "multiply two numbers", "--model", f"script:{path}", "--yes", cwd=project.path
    )
    assert result.code == 1, result.stdout + result.stderr
    assert "blocked" in result.stdout
    entries = _memory(project.path)
    # the gates ran the test command and it worked: verified, kept; the planner's decision and
    # the reviewer's finding were never verified by a shipped run: dropped
    assert [(e["kind"], e["key"]) for e in entries] == [("command", "test")]


def test_a_project_with_knowledge_disabled_neither_reads_nor_writes_it(tmp_path: Path) -> None:
    project = ks.make_project(tmp_path)
    (project.path / "AGENTS.md").write_text("- Register every operation in OPERATIONS.\n")
    config = project.path / "shipyard.toml"
    config.write_text(config.read_text() + "\n[knowledge]\nenabled = false\n")
    project.commit("no knowledge")
    model = ks.model_script(tmp_path, "multiply", ["add"])
    result = _run(project.path, "multiply", model, tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    run = _last_run(project.path)
    assert run["attempts"] == 3 and "knowledge" not in run["events"]
    assert "learned" not in run["events"] and "AGENTS.md" not in run["instructions"]
    with _db(project.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM knowledge").fetchone()[0] == 0


AGENTS_RULE = "Name every test after the behaviour it checks, never after the function (R-17)."
MODELS = """
[models]
implementer = "local:m"
reviewer = "script:{script}"
diagnoser = "script:{script}"

[models.providers.local]
base_url = "{url}"
"""


def test_an_agents_md_rule_reaches_the_instructions_the_model_receives(tmp_path: Path) -> None:
    with serve() as server:
        project = make_multiply_project(tmp_path)
        script = tmp_path / "roles.yaml"
        script.write_text(yaml.safe_dump({"reviewer": [APPROVE], "diagnoser": [DIAGNOSIS]}))
        project.write(
            {
                "AGENTS.md": f"# Rules\n\n## Tests\n\n- {AGENTS_RULE}\n- Keep files short.\n",
                "shipyard.toml": (project.path / "shipyard.toml").read_text()
                + MODELS.format(script=script, url=server.base_url),
            }
        )
        project.commit("rules for agents")
        server.reply(
            calls=[("edit", {"path": "calc.py", "search": "    return a + b\n", "replace": RIGHT})]
        )
        server.reply(
            calls=[("write", {"path": "tests/test_multiply.py", "content": TEST_MULTIPLY})]
        )
        server.reply(calls=[("submit", {"summary": "multiply added"})])
        result = run_cli(
            "run", "multiply", "--spec", str(spec_file(tmp_path)), "--yes", cwd=project.path,
            timeout=120,
        )  # fmt: skip
        assert result.code == 0, result.stdout + result.stderr
        system = [m for m in server.bodies[0]["messages"] if m["role"] == "system"]
    assert len(system) == 1
    assert f"[convention · AGENTS.md:5] Tests: {AGENTS_RULE}" in system[0]["content"]
    assert "implementer given 1 command" not in result.stdout  # no command known yet
    assert "implementer given 2 conventions" in result.stdout
