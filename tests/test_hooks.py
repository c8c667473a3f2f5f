"""``shipyard hook AGENT`` through the real CLI: each agent's documented stdin and stdout, loop
safety, the session's base, the budget, the lock, and never blocking on its own trouble."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import BIN, Project, run_cli

CONFIG = """
[commands]
test = "python -m pytest -q -p no:cacheprovider"
timeout = 60
{extra}
"""

SPEC = """
task: add adds
acceptance:
  - id: add
    text: add(2, 3) is 5
checks:
  tests:
    required:
      - id: tests/test_calc.py::test_add
        covers: [add]
"""

TEST = """
from calc import add


def test_add():
    assert add(2, 3) == 5
"""

WRONG = "def add(a, b):\n    return a - b\n"
RIGHT = "def add(a, b):\n    return a + b\n"


def hook(agent: str, event: Any, timeout: float = 120) -> tuple[int, dict[str, Any], str]:
    """Run ``shipyard hook AGENT`` with ``event`` (JSON, or raw bytes) on stdin."""
    data = event if isinstance(event, bytes) else json.dumps(event).encode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [str(BIN / "shipyard"), "hook", agent], input=data, capture_output=True,
        timeout=timeout, env=env,
    )  # fmt: skip
    stdout = proc.stdout.decode()
    assert len(stdout.strip().splitlines()) == 1, f"only one JSON line on stdout: {stdout!r}"
    return proc.returncode, json.loads(stdout), proc.stderr.decode()


def stop(project: Project, agent: str = "claude", session: str = "s1") -> dict[str, Any]:
    events = {
        "claude": {"hook_event_name": "Stop", "session_id": session, "stop_hook_active": False},
        "codex": {"hook_event_name": "Stop", "session_id": session, "turn_id": "t1",
                  "stop_hook_active": False, "model": "m", "last_assistant_message": "done"},
        "gemini": {"hook_event_name": "AfterAgent", "session_id": session, "prompt": "p",
                   "prompt_response": "done", "stop_hook_active": False},
        "cursor": {"hook_event_name": "stop", "conversation_id": session, "status": "completed",
                   "loop_count": 0, "workspace_roots": [str(project.path)]},
    }  # fmt: skip
    event = events[agent]
    if agent != "cursor":
        event["cwd"] = str(project.path)
    code, out, _ = hook(agent, event)
    assert code == 0
    return out


@pytest.fixture
def calc(tmp_path: Path) -> Project:
    """Committed: a failing stub and its test; the working tree gets the wrong answer."""
    project = Project(tmp_path / "proj").write(
        {
            "shipyard.toml": CONFIG.format(extra="[hooks]\nmax_blocks = 2"),
            "spec.yaml": SPEC,
            "calc.py": "def add(a, b):\n    raise NotImplementedError\n",
            "tests/test_calc.py": TEST,
            "conftest.py": "",
            ".gitignore": "__pycache__/\n",
        }
    )
    project.commit("start")
    project.write({"calc.py": WRONG})
    return project


def test_claude_blocks_with_the_failing_test_then_allows_when_fixed(calc: Project) -> None:
    start = {"hook_event_name": "SessionStart", "session_id": "s1", "cwd": str(calc.path),
             "source": "startup"}  # fmt: skip
    assert hook("claude", start)[:2] == (0, {})
    out = stop(calc)
    assert out["decision"] == "block"
    reason = out["reason"]
    assert "tests/test_calc.py::test_add" in reason and "assert -1 == 5" in reason
    assert "evidence: .shipyard/runs/h-" in reason and "Block 1 of 2" in reason
    assert len(reason) <= 2000
    calc.write({"calc.py": RIGHT})
    assert stop(calc) == {}


def test_same_failure_twice_is_a_diagnosis_brief_then_allowed_after_max_blocks(
    calc: Project,
) -> None:
    first = stop(calc)["reason"]
    assert "Stop guessing" not in first
    calc.write({"notes.txt": "tried something\n"})
    second = stop(calc)["reason"]
    assert "the same failure again (2 times; block 2 of 2)" in second
    assert "Stop guessing: find the cause" in second
    assert "- block 1: tests suite, tests tests/test_calc.py::test_add" in second
    assert "files changed since: notes.txt" in second
    third = stop(calc)
    assert "decision" not in third
    assert "after 2 blocks, but the change does NOT verify" in third["systemMessage"]
    assert "tests/test_calc.py::test_add" in third["systemMessage"]
    assert stop(calc)["decision"] == "block", "the next task in the session starts afresh"


@pytest.mark.parametrize(
    ("agent", "key", "value"),
    [("codex", "decision", "block"), ("gemini", "decision", "deny"), ("cursor", None, None)],
)
def test_each_agent_gets_its_own_protocol(
    calc: Project, agent: str, key: str | None, value: str | None
) -> None:
    out = stop(calc, agent)
    text = out["followup_message"] if agent == "cursor" else out["reason"]
    assert "tests/test_calc.py::test_add" in text
    if key is not None:
        assert out[key] == value
    else:
        assert set(out) == {"followup_message"}
    calc.write({"calc.py": RIGHT})
    assert stop(calc, agent) == {}


def test_cursor_aborted_stop_is_not_checked(calc: Project) -> None:
    event = {"hook_event_name": "stop", "conversation_id": "c", "status": "aborted",
             "loop_count": 0, "workspace_roots": [str(calc.path)]}  # fmt: skip
    assert hook("cursor", event)[:2] == (0, {})


@pytest.mark.parametrize(
    ("agent", "data", "says"),
    [
        ("vim", b"{}", "unknown agent 'vim'"),
        ("claude", b"not json", "stdin is not a JSON event"),
        ("claude", b"[1, 2]", "stdin is not a JSON object"),
        ("claude", b'{"hook_event_name": "Stop"}', "the Stop event has no cwd"),
        ("", b"{}", "unknown agent ''"),
    ],
)
def test_bad_input_never_blocks(agent: str, data: bytes, says: str) -> None:
    code, out, err = hook(agent, data)
    assert code == 0
    assert "decision" not in out
    assert says in out["systemMessage"] and says in err


def test_no_config_warns_and_allows(tmp_path: Path) -> None:
    project = Project(tmp_path / "bare").write({"a.py": "x = 1\n"})
    out = stop(project)
    assert "decision" not in out
    assert "no shipyard.toml" in out["systemMessage"]
    assert "shipyard init --agent claude" in out["systemMessage"]


def test_broken_spec_warns_and_allows(calc: Project) -> None:
    calc.write({"spec.yaml": SPEC.replace("covers: [add]", "covers: [add]\n        colour: red")})
    out = stop(calc, "gemini")
    assert "decision" not in out
    assert "bad input" in out["systemMessage"] and "spec.yaml" in out["systemMessage"]
    assert "colour" in out["systemMessage"]


def test_other_events_are_answered_empty(calc: Project) -> None:
    event = {"hook_event_name": "PreToolUse", "session_id": "s", "cwd": str(calc.path)}
    assert hook("claude", event)[:2] == (0, {})


def test_base_is_the_session_start_and_fail_to_pass_only_for_tests_changed_since(
    tmp_path: Path,
) -> None:
    """A feature shipped earlier: its required test passes at the base. Hook mode does not hold
    that against an unrelated change; ``verify --base`` (every required test) does."""
    project = Project(tmp_path / "shipped").write(
        {
            "shipyard.toml": CONFIG.format(extra=""),
            "spec.yaml": SPEC,
            "calc.py": RIGHT,
            "tests/test_calc.py": TEST,
            "conftest.py": "",
            ".gitignore": "__pycache__/\n",
        }
    )
    base = project.commit("shipped")
    start = {"hook_event_name": "SessionStart", "session_id": "b", "cwd": str(project.path)}
    hook("claude", start)
    project.write({"README.md": "docs\n"})
    project.commit("later commit in the session")
    assert stop(project, session="b") == {}
    record = next((project.path / ".shipyard/hooks/sessions").glob("claude-b-*.json"))
    assert json.loads(record.read_text())["base"] == base
    plain = project.verify("--base", base)
    assert plain.check("tests/test_calc.py::test_add", "fail_to_pass")["status"] == "failed"


def test_budget_past_names_what_did_not_run_and_allows(calc: Project) -> None:
    config = CONFIG.format(extra="[hooks]\nbudget = 3")
    calc.write({"shipyard.toml": config.replace("[commands]", '[commands]\nbuild = ["sleep 30"]')})
    out = stop(calc)
    assert "decision" not in out
    message = out["systemMessage"]
    assert "did not finish within the budget of 3s" in message
    assert "not run: build, tests, runtime" in message
    assert "tests/test_calc.py::test_add" in message and "UNVERIFIED" in message


def test_concurrent_calls_for_one_worktree_are_serialised(calc: Project) -> None:
    """Two stops at once: one verifies, the other waits for the lock and is answered from
    the verdict cache (one verify ran, not two)."""
    answers: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda s=s: answers.append(stop(calc, session=s)))
        for s in ("x", "y")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [a["decision"] for a in answers] == ["block", "block"]
    assert len(list((calc.path / ".shipyard/hooks/calls").glob("*.log"))) == 1


def test_init_agent_merges_idempotently_and_keeps_other_settings(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").write(
        {
            "shipyard.toml": CONFIG.format(extra=""),
            ".claude/settings.json": json.dumps(
                {
                    "model": "x",
                    "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "echo mine"}]}]},
                }
            ),  # fmt: skip
        }
    )
    first = run_cli("init", "--agent", "claude", cwd=project.path)
    assert first.code == 0, first.stderr
    assert "hooks.SessionStart: added" in first.stdout and "hooks.Stop: added" in first.stdout
    settings = json.loads((project.path / ".claude/settings.json").read_text())
    assert settings["model"] == "x"
    commands = [h["command"] for e in settings["hooks"]["Stop"] for h in e["hooks"]]
    assert commands[0] == "echo mine" and commands[1].endswith("hook claude")
    again = run_cli("init", "--agent", "claude", cwd=project.path)
    assert "already there; nothing changed" in again.stdout
    assert json.loads((project.path / ".claude/settings.json").read_text()) == settings
    for agent, file, event in [
        ("codex", ".codex/hooks.json", "Stop"),
        ("gemini", ".gemini/settings.json", "AfterAgent"),
        ("cursor", ".cursor/hooks.json", "stop"),
    ]:
        assert run_cli("init", "--agent", agent, cwd=project.path).code == 0
        doc = json.loads((project.path / file).read_text())
        assert f"hook {agent}" in json.dumps(doc["hooks"][event])
    assert json.loads((project.path / ".cursor/hooks.json").read_text())["version"] == 1
    gemini = json.loads((project.path / ".gemini/settings.json").read_text())
    assert gemini["hooks"]["AfterAgent"][0]["hooks"][0]["timeout"] == 60000
    bad = run_cli("init", "--agent", "vim", cwd=project.path)
    assert bad.code == 2 and "unknown agent 'vim'" in bad.stderr
