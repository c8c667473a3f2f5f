"""``shipyard mcp`` through the MCP SDK's own client, over stdio, as an agent would use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import BIN, Project

CONFIG = """
[commands]
test = "python -m pytest -q -p no:cacheprovider"
timeout = 60
"""
SPEC = """
task: add adds
acceptance:
  - {id: add, text: add of 2 and 3 is 5}
checks:
  tests:
    required:
      - {id: tests/test_calc.py::test_add, covers: [add]}
"""
TESTS = """
import os, time
from calc import add

def test_add():
    time.sleep(float(os.environ.get("SLOW_TEST", "0")))
    print("a test that prints to its stdout")
    assert add(2, 3) == 5
"""
GOOD = "def add(a, b):\n    return a + b\n"
BAD = "def add(a, b):\n    return a - b\n"
TOOLS = {"verify", "verify_start", "verify_result", "spec_check", "memory_search", "memory_add"}


def make(project: Project, calc: str = GOOD) -> Path:
    project.write({"shipyard.toml": CONFIG, "calc.py": calc, "tests/test_calc.py": TESTS,
                   "spec.yaml": SPEC})  # fmt: skip
    return project.path


def serve(cwd: Path, body: Callable[[ClientSession], Awaitable[None]], **env: str) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    params = StdioServerParameters(
        command=str(BIN / "shipyard"), args=["mcp"], cwd=str(cwd), env={**environ, **env}
    )

    async def main() -> None:
        with anyio.fail_after(240):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                await body(s)

    anyio.run(main)


def test_verify_passing_then_failing_with_progress(project: Project) -> None:
    root = make(project)
    seen: list[tuple[float, float | None, str | None]] = []
    docs: list[dict[str, Any]] = []

    async def body(s: ClientSession) -> None:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(tools) == TOOLS
        assert "verdict" in tools["verify"].output_schema["properties"]
        assert tools["verify"].output_schema["properties"]["schema"]["type"] == "string"

        async def progress(value: float, total: float | None, message: str | None) -> None:
            seen.append((value, total, message))

        passed = await s.call_tool("verify", {}, progress_callback=progress)
        assert not passed.is_error, passed.content
        docs.append(passed.structured_content)
        assert passed.content[0].text.startswith("verified (exit 0)")
        (root / "calc.py").write_text(BAD)
        failed = await s.call_tool("verify", {"project": str(root)})
        assert not failed.is_error  # a failed verify is an answer, not a tool failure
        docs.append(failed.structured_content)
        assert "failed: tests tests/test_calc.py::test_add: failed: assert -1 == 5" in (
            failed.content[0].text
        )

    serve(root, body)
    passed, failed = docs
    assert passed["schema"] == "shipyard.verify/1" and passed["verdict"] == "passed"
    assert passed["exit_code"] == 0 and passed["project"] == str(root)
    assert [g["name"] for g in passed["gates"]] == ["contract", "build", "tests", "runtime"]
    assert Path(passed["run_dir"], "verdict.json").is_file()
    assert (
        json.loads(Path(passed["run_dir"], "verdict.json").read_text())["run_id"]
        == (passed["run_id"])
    )
    assert failed["verdict"] == "failed" and failed["exit_code"] == 1
    required = next(c for g in failed["gates"] for c in g["checks"] if c["kind"] == "required")
    assert required["status"] == "failed" and required["message"] == "failed: assert -1 == 5"
    assert [v for v, _, _ in seen] == [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]
    assert {t for _, t, _ in seen} == {4}
    messages = [m for _, _, m in seen]
    assert messages[:4] == [
        "contract: running",
        "contract passed (1 checks)",
        "build: running",
        "build passed (0 checks)",
    ], messages
    # tests and runtime run concurrently: each starts before it ends, in either interleaving
    for gate in ("tests", "runtime"):
        started = messages.index(f"{gate}: running")
        ended = [i for i, m in enumerate(messages) if m.startswith(f"{gate} passed (")]
        assert started >= 4 and len(ended) == 1 and ended[0] > started, messages
    assert "tests passed (2 checks)" in messages


def test_bad_input_is_a_tool_error_and_the_server_goes_on(project: Project) -> None:
    root = make(project)
    (root / "broken.yaml").write_text("task: t\nacceptance:\n  - {id: a, text: b, colour: red}\n")
    answers: dict[str, Any] = {}

    async def body(s: ClientSession) -> None:
        answers["bad"] = await s.call_tool("verify", {"spec": "broken.yaml"})
        answers["missing"] = await s.call_tool("verify", {"project": str(root / "nope")})
        answers["check"] = await s.call_tool("spec_check", {"spec": "broken.yaml"})
        answers["draft"] = await s.call_tool(
            "spec_check", {"text": SPEC.replace(", covers: [add]", "")}
        )
        answers["fine"] = await s.call_tool("spec_check", {})
        answers["unknown"] = await s.call_tool("verify_result", {"job": "j-nope"})
        answers["rev"] = await s.call_tool("verify", {"base": "--help"})
        answers["add"] = await s.call_tool(
            "memory_add", {"text": "run the suite with -p no:cacheprovider", "key": "suite"}
        )
        answers["search"] = await s.call_tool("memory_search", {"query": "cacheprovider"})
        answers["refused"] = await s.call_tool("memory_add", {"text": "x", "kind": "pitfall"})

    serve(root, body)
    bad = answers["bad"]
    assert bad.is_error
    assert bad.content[0].text == (
        f"bad input: {root}/broken.yaml:3: acceptance[0].colour: unknown key 'colour'"
    )
    assert bad.structured_content["exit_code"] == 2
    assert (
        answers["missing"].is_error and "nope is not a folder" in answers["missing"].content[0].text
    )
    check = answers["check"].structured_content
    assert check["valid"] is False and "unknown key 'colour'" in check["error"]
    draft = answers["draft"].structured_content
    assert draft["valid"] is True and draft["uncovered"] == ["add"]
    fine = answers["fine"].structured_content
    assert fine["acceptance"] == [
        {"id": "add", "text": "add of 2 and 3 is 5", "covered_by": ["tests/test_calc.py::test_add"]}
    ]
    assert fine["checks"] == {"test": 1} and fine["uncovered"] == []
    assert answers["unknown"].is_error and "no job 'j-nope'" in answers["unknown"].content[0].text
    rev = answers["rev"]  # an argument is a value, never an option of the command underneath
    assert rev.is_error and rev.structured_content["exit_code"] == 3
    assert rev.content[0].text.startswith("could not check: ") and "--help" in rev.content[0].text
    entry = answers["add"].structured_content["entry"]
    assert entry["text"] == "run the suite with -p no:cacheprovider" and entry["kind"] == "fact"
    (found,) = answers["search"].structured_content["entries"]
    assert found["id"] == entry["id"]
    assert answers["refused"].is_error
    assert "cannot add a 'pitfall'" in answers["refused"].content[0].text


def test_a_long_verify_through_start_and_result(project: Project) -> None:
    root = make(project)
    states: list[dict[str, Any]] = []

    async def body(s: ClientSession) -> None:
        started = await s.call_tool("verify_start", {})
        job = started.structured_content["job"]
        again = await s.call_tool("verify", {})
        assert again.is_error and f"already running (job {job})" in again.content[0].text
        states.append((await s.call_tool("verify_result", {"job": job})).structured_content)
        while True:
            result = await s.call_tool("verify_result", {"job": job, "wait": 2})
            assert not result.is_error, result.content
            states.append(result.structured_content)
            if result.structured_content["status"] == "done":
                return

    serve(root, body, SLOW_TEST="3")
    first, *_, last = states
    assert first["status"] == "running" and first["result"] is None
    assert len(states) >= 3  # it was still running after a wait: longer than one call
    assert last["status"] == "done" and last["result"]["verdict"] == "passed"
    assert last["run_id"] == last["result"]["run_id"]
    assert last["progress"][-1] == "runtime passed (0 checks)"
    assert last["elapsed"] >= 3


def test_only_json_rpc_on_stdout(project: Project) -> None:
    root = make(project)
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "verify", "arguments": {}, "_meta": {"progressToken": "p"}}},
    ]  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    errors = root.parent / "server-stderr.log"
    with open(errors, "wb") as err, subprocess.Popen(
        [str(BIN / "shipyard"), "mcp"], cwd=root, env=environ,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
    ) as proc:  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        lines = []
        try:
            for message in messages:
                proc.stdin.write((json.dumps(message) + "\n").encode())
                proc.stdin.flush()
                while "id" in message:
                    lines.append(line := json.loads(proc.stdout.readline()))
                    if line.get("id") == message["id"]:
                        break
            proc.stdin.close()
            rest = proc.stdout.read().decode()
            assert proc.wait(timeout=30) == 0, errors.read_text()
        finally:
            proc.kill()
    assert rest == ""
    assert all(line["jsonrpc"] == "2.0" for line in lines)
    progress = [m for m in lines if m.get("method") == "notifications/progress"]
    assert len(progress) == 8 and progress[0]["params"]["progressToken"] == "p"
    assert lines[-1]["result"]["structuredContent"]["verdict"] == "passed"


def test_without_the_extra_it_says_how_to_install_it() -> None:
    code = ("import sys; sys.modules['mcp'] = None; sys.argv = ['shipyard', 'mcp']; "
            "from shipyard.cli import main; main()")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "could not check: shipyard mcp needs the MCP SDK: pip install 'shipyard[mcp]'" in (
        done.stderr
    )
    assert done.stdout == ""
