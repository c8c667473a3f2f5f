"""``shipyard mcp`` registered in a real Claude Code with ``claude mcp add``, which then connects
to it (``claude mcp list`` starts the server and checks it). Runs where Claude Code is installed
(.ci/run installs it into .ci/agents; ``SHIPYARD_CLAUDE`` names another)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from conftest import BIN, ROOT
from fixtures import agents_support as agents

CANDIDATES = (
    os.environ.get("SHIPYARD_CLAUDE", ""),
    str(ROOT / ".ci" / "agents" / "node_modules" / ".bin" / "claude"),
)


def claude() -> str:
    for candidate in CANDIDATES:
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("claude")
    if found is None:
        agents.not_installed("Claude Code is not installed (.ci/run installs it into .ci/agents)")
    return found


def test_claude_code_connects_to_the_server(tmp_path: Path) -> None:
    program = claude()
    home = tmp_path / "home"  # Claude Code's user settings go here, not to the machine's
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env |= {"HOME": str(home), "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [program, "mcp", *args]
        return subprocess.run(argv, cwd=tmp_path, env=env, text=True, capture_output=True,
                              timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip

    added = run("add", "--scope", "user", "shipyard", "--", str(BIN / "shipyard"), "mcp")
    assert added.returncode == 0, added.stdout + added.stderr
    assert "Added stdio MCP server shipyard" in added.stdout
    listed = run("list")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith("shipyard:"))
    assert f"{BIN / 'shipyard'} mcp" in line and "Connected" in line, listed.stdout
