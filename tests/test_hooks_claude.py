"""A real Claude Code, headless, against a scripted Messages API on 127.0.0.1, with
``shipyard hook claude`` as its Stop and SessionStart hook (installed by ``init --agent``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import BIN, ROOT, Project, run_cli
from fixtures import agents_support as agents
from fixtures.anthropic_server import AnthropicServer, serve

pytestmark = pytest.mark.slow

CLAUDE_CANDIDATES = (
    os.environ.get("SHIPYARD_CLAUDE", ""),
    str(ROOT / ".ci" / "agents" / "node_modules" / ".bin" / "claude"),
)


def _claude() -> str:
    for candidate in CLAUDE_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("claude")
    if found is None:
        agents.not_installed("Claude Code is not installed (.ci/run installs it into .ci/agents)")
    return found


CONFIG = """
[commands]
test = "python -m pytest -q -p no:cacheprovider"
timeout = 60

[hooks]
max_blocks = {max_blocks}
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


def _project(tmp_path: Path, max_blocks: int = 3, spec: str = SPEC) -> Project:
    project = Project(tmp_path / "proj").write(
        {
            "shipyard.toml": CONFIG.format(max_blocks=max_blocks),
            "spec.yaml": spec,
            "calc.py": "def add(a, b):\n    raise NotImplementedError\n",
            "tests/test_calc.py": TEST,
            "conftest.py": "",
            ".gitignore": "__pycache__/\n",
        }
    )
    installed = run_cli("init", "--agent", "claude", cwd=project.path)
    assert installed.code == 0, installed.stderr
    assert "hooks.Stop: added" in installed.stdout
    project.commit("start")
    return project


def _run(project: Project, server: AnthropicServer) -> tuple[list[dict[str, Any]], str]:
    home = project.path.parent / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "ANTHROPIC_"))}
    env.update(
        ANTHROPIC_BASE_URL=server.base_url,
        ANTHROPIC_API_KEY="sk-test-local",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        HOME=str(home),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    argv = [
        _claude(), "-p", "make add add", "--model", "claude-test",
        "--output-format", "stream-json", "--verbose", "--include-hook-events",
        "--permission-mode", "acceptEdits", "--allowedTools", "Read,Write", "--max-turns", "12",
    ]  # fmt: skip
    proc = subprocess.run(
        argv, cwd=project.path, env=env, capture_output=True, text=True, timeout=400,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return events, proc.stdout


def _feedback(server: AnthropicServer) -> list[str]:
    return [t for t in server.user_texts() if t.startswith("Stop hook feedback:")]


def _calc(project: Project) -> str:
    return str(project.path / "calc.py")


def test_wrong_then_right_is_blocked_once_then_verifies(tmp_path: Path) -> None:
    project = _project(tmp_path)
    with serve() as server:
        server.tool("Read", {"file_path": _calc(project)}).write(_calc(project), WRONG)
        server.say("Done: add works.")
        server.write(_calc(project), RIGHT).say("Fixed it.")
        events, _ = _run(project, server)
    feedback = _feedback(server)
    assert len(feedback) == 1, feedback
    assert "tests/test_calc.py::test_add" in feedback[0]
    assert "assert -1 == 5" in feedback[0]
    assert "Block 1 of 3" in feedback[0]
    assert events[-1]["result"] == "Fixed it."
    assert project.verify().json["verdict"] == "passed"


def test_always_wrong_is_allowed_after_max_blocks(tmp_path: Path) -> None:
    project = _project(tmp_path, max_blocks=2)
    with serve() as server:
        server.tool("Read", {"file_path": _calc(project)}).write(_calc(project), WRONG)
        server.say("Done.").say("Still done.").say("Really done.").say("Done again.")
        events, stdout = _run(project, server)
    feedback = _feedback(server)
    assert len(feedback) == 2, feedback
    assert "Block 1 of 2" in feedback[0]
    assert "the same failure again" in feedback[1] and "Stop guessing" in feedback[1]
    assert "What was tried" in feedback[1]
    assert "after 2 blocks, but the change does NOT verify" in stdout
    assert events[-1]["result"] == "Really done."


def test_broken_spec_is_never_blocked_and_warns(tmp_path: Path) -> None:
    project = _project(tmp_path, spec=SPEC.replace("text: add(2, 3) is 5", "txet: typo"))
    with serve() as server:
        server.tool("Read", {"file_path": _calc(project)}).write(_calc(project), WRONG)
        server.say("Done.")
        events, stdout = _run(project, server)
    assert _feedback(server) == []
    assert "shipyard hook: bad input" in stdout and "spec.yaml" in stdout
    assert events[-1]["result"] == "Done."
