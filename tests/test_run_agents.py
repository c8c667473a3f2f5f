"""``shipyard run --implementer``: the real Claude Code, Codex and aider (and any command) as the
implementer of a real run, each against a local fake model server; the reviewer and the
diagnoser are scripted. For each agent: wrong first, right on attempt 2 with the failure
evidence in its second prompt; always wrong, blocked; hanging, stopped at its timeout. And a
``kill -9`` of Shipyard during an invocation, then ``resume``."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import BIN, Project, git, leftover_processes, run_cli
from fixtures import agents_support as agents
from fixtures.anthropic_server import AnthropicServer
from fixtures.anthropic_server import serve as anthropic
from fixtures.loop_support import TEST_MULTIPLY, LedgerView, make_project, script, spec_file
from fixtures.openai_server import Reply
from fixtures.openai_server import serve as openai
from fixtures.responses_server import serve as responses

BASE = "\ndef add(a, b):\n    return a + b\n"
WRONG = BASE + "\n\ndef multiply(a, b):\n    return a + b\n"
RIGHT = BASE + "\n\ndef multiply(a, b):\n    return a * b\n"
EVIDENCE = "tests/test_multiply.py::test_multiply"
DIAGNOSED = "multiply adds its arguments instead of multiplying them"
TASK = "multiply two numbers"


def _files(calc: str, test: bool = True) -> str:
    """A shell command that writes calc.py (and the test), as an agent's shell tool would."""
    files = {"calc.py": calc, **({"tests/test_multiply.py": TEST_MULTIPLY} if test else {})}
    return " && ".join(f"printf %s {shlex.quote(text)} > {name}" for name, text in files.items())


def _project(tmp_path: Path, agents_toml: str = "", attempts: int = 4) -> Project:
    project = make_project(tmp_path, attempts=attempts)
    if agents_toml:
        config = project.path / "shipyard.toml"
        config.write_text(config.read_text() + agents_toml)
        project.commit("agents")
    return project


def _run(
    project: Project, tmp_path: Path, implementer: str, env: dict[str, str], *extra: str
) -> tuple[int, str]:
    result = run_cli(
        "run", TASK, "--spec", str(spec_file(tmp_path)), "--model", f"script:{script(tmp_path)}",
        "--implementer", implementer, "--yes", *extra, cwd=project.path, env=env, timeout=400,
    )  # fmt: skip
    return result.code, result.stdout + result.stderr


def _one_commit(project: Project) -> None:
    """The ship commit, on the base, holding the verified tree: none of the agent's own."""
    run = LedgerView(project).run()
    commits = git(project.path, "log", "--format=%s", f"{run['base_sha']}..{run['branch']}")
    assert commits.splitlines() == ["calc.multiply multiplies two numbers"]
    assert git(project.path, "show", f"{run['branch']}:calc.py") == RIGHT.strip("\n")


def _prompts(project: Project) -> list[str]:
    evidence = project.path / ".shipyard" / "runs" / LedgerView(project).run()["id"]
    return [p.read_text() for p in sorted(evidence.glob("agent-*.prompt.md"))]


def _implementer_usage(project: Project) -> list[tuple[str, int, int, float]]:
    """(model, input tokens, output tokens, cost) of each invocation, as the ledger has them."""
    rows = LedgerView(project)._rows("SELECT * FROM usage WHERE role = 'implementer' ORDER BY id")
    return [(r["model"], r["input_tokens"], r["output_tokens"], r["cost"]) for r in rows]


def _agent_events(project: Project) -> list[str]:
    return [r["summary"] for r in LedgerView(project).events("agent")]


# -- Claude Code ---------------------------------------------------------------------------------


@contextmanager
def _claude(tmp_path: Path) -> Iterator[tuple[AnthropicServer, dict[str, str]]]:
    with anthropic() as server:
        env = agents.claude_env(server.base_url, tmp_path / "home")
        yield server, env


def _claude_toml(**settings: str) -> str:
    lines = [f'binary = "{agents.binary("claude-code")}"', 'model = "claude-test"']
    lines += [f"{k} = {v}" for k, v in settings.items()]
    return "\n[agents.claude-code]\n" + "\n".join(lines) + "\n"


@pytest.mark.slow
def test_claude_code_wrong_then_right_ships_on_attempt_two(tmp_path: Path) -> None:
    project = _project(tmp_path, _claude_toml())
    with _claude(tmp_path) as (server, env):
        server.tool("Bash", {"command": _files(WRONG)}).say("Done: multiply works, tests pass.")
        server.tool("Bash", {"command": _files(RIGHT, test=False)}).say("Fixed multiply.")
        code, out = _run(project, tmp_path, "claude-code", env)
        texts = server.user_texts()
    assert code == 0, out
    assert "implementer claude-code: 2." in out and "shipped (exit 0)" in out
    assert out.count("says: Fixed multiply.") == 1, out  # shown as streamed, not again
    second = [t for t in texts if "Your last attempt did not pass" in t]
    assert len(second) == 1 and EVIDENCE in second[0], texts
    assert "[tests]" in second[0]
    events = _agent_events(project)
    session = LedgerView(project).state()["agent_session"]
    assert session and f"session {session} (claude-test)" in events
    assert "claude-code: attempt 2, resuming session " + session in events
    assert any(e.startswith("Bash printf %s") for e in events)
    attempts = LedgerView(project).attempts()
    assert [a["outcome"] for a in attempts] == ["failed", "shipped"]
    rows = _implementer_usage(project)
    assert len(rows) == 2 and all(i and o and c for _, i, o, c in rows), rows
    assert rows[0][0] == "claude-code:claude-test"
    _one_commit(project)


@pytest.mark.slow
def test_claude_code_always_wrong_ends_blocked_with_the_diagnosis_in_its_prompt(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path, _claude_toml())
    with _claude(tmp_path) as (server, env):
        for _ in range(3):
            server.tool("Bash", {"command": _files(WRONG)}).say("All tests pass.")
        code, out = _run(project, tmp_path, "claude-code", env)
    assert code == 1, out
    state = LedgerView(project).state()
    assert state["stage"] == "blocked"
    assert "the same failure a third time" in state["reason"] and EVIDENCE in state["reason"]
    prompts = _prompts(project)
    assert len(prompts) == 3 and DIAGNOSED in prompts[2] and EVIDENCE in prompts[1]


@pytest.mark.slow
def test_claude_code_that_hangs_is_stopped_and_the_attempt_fails(tmp_path: Path) -> None:
    project = _project(tmp_path, _claude_toml(timeout="6"), attempts=1)
    with _claude(tmp_path) as (server, env):
        server.hang()
        code, out = _run(project, tmp_path, "claude-code", env)
    assert code == 1, out
    reason = LedgerView(project).state()["reason"]
    assert "implement timeout: claude-code ran past its timeout of 6s" in reason
    assert "whole process tree" in reason
    assert not [p for p in leftover_processes() if "claude" in " ".join(p.cmdline())]


@pytest.mark.slow
def test_claude_code_killed_with_shipyard_is_started_again_by_resume(tmp_path: Path) -> None:
    project = _project(tmp_path, _claude_toml())
    with _claude(tmp_path) as (server, env):
        server.tool("Bash", {"command": "sleep 61 && echo slept"})
        server.tool("Bash", {"command": _files(RIGHT)}).say("multiply works.")
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        proc = subprocess.Popen(
            [str(BIN / "shipyard"), "run", TASK, "--spec", str(spec_file(tmp_path)),
             "--model", f"script:{script(tmp_path)}", "--implementer", "claude-code", "--yes"],
            cwd=project.path, env={**environ, **env}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        ledger = LedgerView(project)
        ledger.wait_for(lambda _: bool(_sleeping()), timeout=120, proc=proc)
        run_id = ledger.run()["id"]
        agent = [p for p in _tagged(run_id) if os.getpgid(p) != os.getpgid(_sleeping()[0])]
        assert agent  # Claude Code and its launcher, carrying the run's id
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        # the agent went with Shipyard; what its shell tool started in a session of its own
        # is left, until resume stops it
        ledger.wait_for(lambda _: not set(agent) & set(_tagged(run_id)), timeout=15)
        assert _sleeping()
        assert ledger.state()["stage"] == "implement" and ledger.state()["step"] == 1
        result = run_cli("resume", ledger.run()["id"], cwd=project.path, env=env, timeout=400)
    assert result.code == 0, result.stdout + result.stderr
    assert not _sleeping()
    assert "was cut short (Shipyard stopped); starting it again" in result.stdout
    attempts = ledger.attempts()
    assert [a["outcome"] for a in attempts] == ["shipped"]  # the same attempt, not a second
    assert len(_implementer_usage(project)) == 1  # only the invocation that finished
    assert len(_prompts(project)) == 2
    _one_commit(project)


def _sleeping() -> list[int]:
    return _running("sleep\x0061\x00")


def _tagged(run_id: str) -> list[int]:
    """Processes whose environment carries the run's id."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                environ = Path(f"/proc/{entry.name}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"SHIPYARD_RUN_ID={run_id}".encode() in environ:
                found.append(int(entry.name))
    return found


def _running(part: str) -> list[int]:
    """Processes whose command line holds ``part``."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if part.encode() in Path(f"/proc/{entry.name}/cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


# -- Codex ---------------------------------------------------------------------------------------


@contextmanager
def _codex(tmp_path: Path) -> Iterator[tuple[object, dict[str, str]]]:
    with responses() as server, agents.codex_home(server.base_url) as home:
        yield server, agents.codex_env(home, tmp_path / "home")


CODEX_TOML = '\n[agents.codex]\nbinary = "{}"\n'


@pytest.mark.slow
def test_codex_wrong_then_right_ships_on_attempt_two(tmp_path: Path) -> None:
    project = _project(tmp_path, CODEX_TOML.format(agents.binary("codex")))
    with _codex(tmp_path) as (server, env):
        server.call("exec_command", {"cmd": _files(WRONG)}).say("Done, tests pass.")  # type: ignore[attr-defined]
        server.call("exec_command", {"cmd": _files(RIGHT, test=False)}).say("Fixed.")  # type: ignore[attr-defined]
        code, out = _run(project, tmp_path, "codex", env)
        texts = server.input_texts()  # type: ignore[attr-defined]
    assert code == 0, out
    assert "implementer codex: codex-cli 0.169.0 at " in out
    second = [t for t in texts if "Your last attempt did not pass" in t]
    assert len(second) == 1 and EVIDENCE in second[0], texts
    session = LedgerView(project).state()["agent_session"]
    assert "codex: attempt 2, resuming session " + session in _agent_events(project)
    rows = _implementer_usage(project)
    assert len(rows) == 2 and all(i and o and c is None for _, i, o, c in rows), rows
    _one_commit(project)


@pytest.mark.slow
def test_codex_always_wrong_is_blocked_and_a_hang_is_stopped(tmp_path: Path) -> None:
    project = _project(
        tmp_path, CODEX_TOML.format(agents.binary("codex")) + "timeout = 8\n", attempts=3
    )
    with _codex(tmp_path) as (server, env):
        server.call("exec_command", {"cmd": _files(WRONG)}).say("All good.")  # type: ignore[attr-defined]
        server.call("exec_command", {"cmd": _files(WRONG)}).say("All good.")  # type: ignore[attr-defined]
        server.hang()  # type: ignore[attr-defined]
        code, out = _run(project, tmp_path, "codex", env)
    assert code == 1, out
    state = LedgerView(project).state()
    assert "budget: 3 attempts used" in state["reason"]
    assert "codex ran past its timeout of 8s" in state["reason"]
    failed = [r["summary"] for r in LedgerView(project).events("failed")]
    assert EVIDENCE in failed[0] and EVIDENCE in failed[1] and "timeout" in failed[2]


# -- aider ---------------------------------------------------------------------------------------


def _whole(calc: str, test: bool = True) -> str:
    out = f"calc.py\n```python\n{calc.lstrip()}```\n"
    if test:
        out += f"\ntests/test_multiply.py\n```python\n{TEST_MULTIPLY}```\n"
    return out


AIDER_TOML = """
[agents.aider]
binary = "{}"
model = "openai/test-model"
args = ["calc.py", "tests/test_multiply.py"]
"""


@pytest.mark.slow
def test_aider_wrong_then_right_ships_on_attempt_two(tmp_path: Path) -> None:
    project = _project(tmp_path, AIDER_TOML.format(agents.binary("aider")))
    with openai(model_names=("test-model",)) as server:
        server.reply(_whole(WRONG)).reply(_whole(RIGHT, test=False))
        server.then = Reply("Done.")
        env = agents.aider_env(server.base_url, tmp_path / "home")
        code, out = _run(project, tmp_path, "aider", env)
        sent = [str(m.get("content")) for b in server.bodies for m in b["messages"]]
    assert code == 0, out
    assert "implementer aider: aider 0.86.2 at " in out
    assert any("Your last attempt did not pass" in t and EVIDENCE in t for t in sent)
    assert "edited calc.py" in _agent_events(project)
    _one_commit(project)


@pytest.mark.slow
def test_aider_always_wrong_is_blocked_and_a_hang_is_stopped(tmp_path: Path) -> None:
    toml = AIDER_TOML.format(agents.binary("aider")) + "timeout = 15\n"
    project = _project(tmp_path, toml, attempts=3)
    with openai(model_names=("test-model",)) as server:
        server.reply(_whole(WRONG)).reply(_whole(WRONG)).delay(600)
        server.then = Reply("Done.")
        env = agents.aider_env(server.base_url, tmp_path / "home")
        code, out = _run(project, tmp_path, "aider", env)
    assert code == 1, out
    reason = LedgerView(project).state()["reason"]
    assert "budget: 3 attempts used" in reason and "aider ran past its timeout of 15s" in reason


# -- any command ---------------------------------------------------------------------------------

AGENT = """
import pathlib, sys
prompt = pathlib.Path(sys.argv[1]).read_text()
assert "The locked spec" in prompt and "multiply(3, 4) returns 12" in prompt
fixed = "Your last attempt did not pass" in prompt and {evidence!r} in prompt
pathlib.Path("calc.py").write_text({right!r} if fixed else {wrong!r})
pathlib.Path("tests/test_multiply.py").write_text({test!r})
print("fixed it" if fixed else "done, all tests pass")
"""


def test_a_command_wrong_then_right_ships_and_reports_unknown_usage(tmp_path: Path) -> None:
    project = _project(tmp_path)
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT.format(evidence=EVIDENCE, right=RIGHT, wrong=WRONG, test=TEST_MULTIPLY))
    command = f"cmd:{sys.executable} {agent} {{prompt_file}}"
    code, out = _run(project, tmp_path, command, {})
    assert code == 0, out
    assert "shipped (exit 0)" in out and "says: fixed it" in out
    ledger = LedgerView(project)
    assert ledger.state()["usage"]["unreported"] == 2
    rows = ledger._rows("SELECT * FROM usage WHERE role = 'implementer'")
    assert [(r["input_tokens"], r["output_tokens"], r["cost"]) for r in rows] == [(None,) * 3] * 2
    report = run_cli("report", LedgerView(project).run()["id"], cwd=project.path)
    assert "2 did not report tokens" in report.stdout, report.stdout
    _one_commit(project)


def test_a_command_that_hangs_or_fails_ends_the_attempt_with_the_reason(tmp_path: Path) -> None:
    project = _project(tmp_path, "\n[agents.cmd]\ntimeout = 2\n", attempts=2)
    code, out = _run(project, tmp_path, "cmd:echo starting; exit 7", {})
    assert code == 1, out
    failed = [r["summary"] for r in LedgerView(project).events("failed")]
    assert "implement agent: cmd exited with 7" in failed[0] and "starting" in failed[0]
    project2 = _project(tmp_path / "two", "\n[agents.cmd]\ntimeout = 2\n", attempts=1)
    code, out = _run(project2, tmp_path / "two", "cmd:sleep 300", {})
    assert code == 1, out
    assert "cmd ran past its timeout of 2s" in LedgerView(project2).state()["reason"]
    assert not [p for p in leftover_processes() if "sleep" in " ".join(p.cmdline())]


def test_an_unknown_or_missing_implementer_is_refused_before_the_run(tmp_path: Path) -> None:
    project = _project(tmp_path)
    code, out = _run(project, tmp_path, "cursor", {})
    assert code == 2 and "'cursor' is not an implementer" in out, out
    code, out = _run(project, tmp_path, "cmd:no-such-agent-here {prompt_file}", {})
    assert code == 3 and "'no-such-agent-here' was not found on PATH" in out, out
    assert not (project.path / ".shipyard" / "runs").exists() or not list(
        (project.path / ".shipyard" / "runs").iterdir()
    )


# -- kill -9 during Codex's and aider's invocations ----------------------------------------------


def _kill_during_invocation_then_resume(
    project: Project, tmp_path: Path, implementer: str, env: dict[str, str], started: object
) -> str:
    """Shipyard killed with SIGKILL once ``started()`` holds (the agent is mid-invocation); the
    agent goes with it, and ``resume`` starts the attempt again. Returns resume's output."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.Popen(
        [str(BIN / "shipyard"), "run", TASK, "--spec", str(spec_file(tmp_path)),
         "--model", f"script:{script(tmp_path)}", "--implementer", implementer, "--yes"],
        cwd=project.path, env={**environ, **env}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    ledger = LedgerView(project)
    ledger.wait_for(lambda _: bool(started()), timeout=180, proc=proc)  # type: ignore[operator]
    run_id = ledger.run()["id"]
    sleeping = {os.getpgid(p) for p in _sleeping()}
    agent = [p for p in _tagged(run_id) if os.getpgid(p) not in sleeping]
    assert agent  # the agent and its launcher, carrying the run's id
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    ledger.wait_for(lambda _: not set(agent) & set(_tagged(run_id)), timeout=15)
    assert ledger.state()["stage"] == "implement" and ledger.state()["step"] == 1
    result = run_cli("resume", run_id, cwd=project.path, env=env, timeout=400)
    out = result.stdout + result.stderr
    assert result.code == 0, out
    assert not _sleeping()
    assert "was cut short (Shipyard stopped); starting it again" in result.stdout, out
    assert [a["outcome"] for a in ledger.attempts()] == ["shipped"]  # the same attempt
    assert len(_implementer_usage(project)) <= 1  # nothing of the cut invocation counted
    assert len(_prompts(project)) == 2
    _one_commit(project)
    return out


@pytest.mark.slow
def test_codex_killed_with_shipyard_is_started_again_by_resume(tmp_path: Path) -> None:
    project = _project(tmp_path, CODEX_TOML.format(agents.binary("codex")))
    with _codex(tmp_path) as (server, env):
        server.call("exec_command", {"cmd": "sleep 61 && echo slept"})  # type: ignore[attr-defined]
        server.call("exec_command", {"cmd": _files(RIGHT)}).say("Fixed.")  # type: ignore[attr-defined]
        _kill_during_invocation_then_resume(project, tmp_path, "codex", env, _sleeping)


@pytest.mark.slow
def test_aider_killed_with_shipyard_is_started_again_by_resume(tmp_path: Path) -> None:
    project = _project(tmp_path, AIDER_TOML.format(agents.binary("aider")))
    with openai(model_names=("test-model",)) as server:
        server.delay(600).reply(_whole(RIGHT))  # the first answer never comes
        server.then = Reply("Done.")
        env = agents.aider_env(server.base_url, tmp_path / "home")
        _kill_during_invocation_then_resume(
            project, tmp_path, "aider", env, lambda: len(server.bodies) >= 1
        )
