"""The coding agents as Shipyard starts them: the real Claude Code, Codex and aider CLIs, each
against a local fake model server, in a real git repository; and any command (``cmd:``).
One invocation each: what it changed, what it streamed, what it reported using, how a hang is
stopped, which variables it sees."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import Project, git
from fixtures import agents_support as agents
from fixtures.anthropic_server import serve as anthropic
from fixtures.openai_server import serve as openai
from fixtures.responses_server import serve as responses
from shipyard import process
from shipyard.agents.external import agent_for
from shipyard.agents.external.base import ExternalAgent, Outcome
from shipyard.config import Config, load_config
from shipyard.exceptions import ConfigError, EnvironmentProblem

RIGHT = "def add(a, b):\n    return a + b\n"


def _repo(tmp_path: Path) -> Project:
    project = Project(tmp_path / "proj").write({"calc.py": "def add(a, b):\n    return 0\n"})
    project.commit("start")
    return project


def _agent(name: str, **settings: object) -> ExternalAgent:
    config = Config.model_validate({"agents": {name: settings}})
    return agent_for(name, config)


def _invoke(
    agent: ExternalAgent, project: Project, tmp_path: Path, env: dict[str, str]
) -> tuple[Outcome, list[str]]:
    prompt_file = tmp_path / "evidence" / "agent-1.prompt.md"
    prompt_file.parent.mkdir(parents=True, exist_ok=True)
    prompt_file.write_text("make add add\n")
    launch = agent.launch("make add add\n", prompt_file, project.path, project.path, None)
    shown: list[str] = []
    outcome = agent.invoke(
        launch, cwd=project.path, env=agent.environment(env),
        log=tmp_path / "evidence" / "agent-1.log", on_event=shown.append,
    )  # fmt: skip
    return outcome, shown


# -- settings, environment, preflight (cheap) ----------------------------------------------------


def test_agents_table_is_validated_with_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "shipyard.toml").write_text('[agents]\nimplementer = "cursor"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    text = str(caught.value)
    assert "shipyard.toml" in text and "agents.implementer" in text
    assert "'cursor' is not an implementer" in text and "claude-code" in text
    (tmp_path / "shipyard.toml").write_text("[agents.claude-code]\ntimeout = -1\n")
    with pytest.raises(ConfigError, match=r"agents\.claude-code\.timeout"):
        load_config(tmp_path)
    (tmp_path / "shipyard.toml").write_text(
        '[agents]\nimplementer = "codex"\n[agents.codex]\nmodel = "o4"\npass = ["MY_*"]\n'
    )
    config = load_config(tmp_path)
    assert config.agents.implementer == "codex"
    assert config.agents.codex.model == "o4" and config.agents.codex.pass_ == ("MY_*",)


def test_each_agent_gets_its_own_keys_and_the_gates_none(tmp_path: Path) -> None:
    from shipyard import environment

    environ = {
        "PATH": "/usr/bin", "HOME": "/h", "ANTHROPIC_API_KEY": "a", "CLAUDE_CODE_X": "c",
        "OPENAI_API_KEY": "o", "CODEX_HOME": "/ch", "AIDER_MODEL": "m", "GITHUB_TOKEN": "g",
        "MY_TOKEN": "t",
    }  # fmt: skip
    claude = _agent("claude-code").environment(environ)
    codex = _agent("codex", **{"pass": ["MY_*"]}).environment(environ)
    aider = _agent("aider").environment(environ)
    assert {"ANTHROPIC_API_KEY", "CLAUDE_CODE_X"} <= claude.keys()
    assert not {"OPENAI_API_KEY", "CODEX_HOME", "GITHUB_TOKEN", "MY_TOKEN"} & claude.keys()
    assert {"OPENAI_API_KEY", "CODEX_HOME", "MY_TOKEN"} <= codex.keys()
    assert not {"ANTHROPIC_API_KEY", "GITHUB_TOKEN"} & codex.keys()
    assert {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AIDER_MODEL"} <= aider.keys()
    assert aider["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    gates = environment.scrubbed(environ, Config())
    assert set(gates) == {"PATH", "HOME"}


def test_preflight_names_the_version_or_how_to_install(tmp_path: Path) -> None:
    found = _agent("claude-code", binary=agents.binary("claude-code")).preflight(tmp_path)
    assert found.startswith("2.") and "(Claude Code)" in found
    assert found.endswith(f"at {agents.binary('claude-code')}")
    with pytest.raises(EnvironmentProblem) as caught:
        _agent("codex", binary="no-such-codex-here").preflight(tmp_path)
    assert "'no-such-codex-here' was not found" in str(caught.value)
    assert "npm install -g @openai/codex" in str(caught.value)
    assert "[agents.codex] binary" in str(caught.value)


def test_a_command_gets_its_prompt_file_and_folder(tmp_path: Path) -> None:
    project = _repo(tmp_path)
    config = Config()
    agent = agent_for("cmd:cp {prompt_file} {worktree}/got.md && echo copied the prompt", config)
    assert agent.preflight(tmp_path).startswith("'cp {prompt_file}")
    outcome, shown = _invoke(agent, project, tmp_path, agents.clean_environ())
    assert outcome.exit_code == 0 and not outcome.timed_out
    assert (project.path / "got.md").read_text() == "make add add\n"
    assert outcome.claim == "copied the prompt" and shown == ["says: copied the prompt"]
    assert outcome.input_tokens is None and outcome.cost is None  # unknown, not 0
    with pytest.raises(EnvironmentProblem, match="'nope-agent' was not found on PATH"):
        agent_for("cmd:nope-agent {prompt_file}", config).preflight(tmp_path)


def test_a_command_past_its_timeout_is_stopped_with_its_children(tmp_path: Path) -> None:
    project = _repo(tmp_path)
    agent = agent_for("cmd:sleep 300 & sleep 300; wait", Config.model_validate(
        {"agents": {"cmd": {"timeout": 1.5}}}
    ))  # fmt: skip
    started = time.monotonic()
    outcome, _ = _invoke(agent, project, tmp_path, agents.clean_environ())
    assert outcome.timed_out and outcome.exit_code is None
    assert time.monotonic() - started < 1.5 + process.KILL_GRACE + 3
    assert not _sleepers(tmp_path)


def _sleepers(tmp_path: Path) -> list[int]:
    """Processes still running a ``sleep 300`` started from this test's folder."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
        except OSError:
            continue
        if cmd.startswith(b"sleep\x00300") and cwd.startswith(str(tmp_path)):
            found.append(int(entry.name))
    return found


# -- the real agents against fake servers ---------------------------------------------------------


@pytest.mark.slow
def test_claude_code_edits_streams_and_reports_usage(tmp_path: Path) -> None:
    project = _repo(tmp_path)
    calc = str(project.path / "calc.py")
    with anthropic() as server:
        server.tool("Read", {"file_path": calc}).write(calc, RIGHT).say("add adds now.")
        env = agents.clean_environ(**agents.claude_env(server.base_url, tmp_path / "home"))
        agent = _agent("claude-code", binary=agents.binary("claude-code"), model="claude-test")
        outcome, shown = _invoke(agent, project, tmp_path, env)
    assert outcome.exit_code == 0, outcome.tail
    assert (project.path / "calc.py").read_text() == RIGHT
    assert outcome.claim == "add adds now."
    assert outcome.session and shown[0] == f"session {outcome.session} (claude-test)"
    assert f"Read {calc}" in shown and f"Write {calc}" in shown
    assert shown[-1].startswith("result: success after 3 turns: add adds now.")
    assert outcome.input_tokens == 36 and outcome.output_tokens == 24  # 3 turns of 12 + 8
    assert outcome.cost is not None and outcome.cost > 0
    assert "make add add" in server.user_texts()[0] or any(
        "make add add" in t for t in server.user_texts()
    )


@pytest.mark.slow
def test_claude_code_that_hangs_is_stopped_at_its_timeout(tmp_path: Path) -> None:
    project = _repo(tmp_path)
    with anthropic() as server:
        server.hang()
        env = agents.clean_environ(**agents.claude_env(server.base_url, tmp_path / "home"))
        agent = _agent(
            "claude-code", binary=agents.binary("claude-code"), model="claude-test", timeout=8
        )
        started = time.monotonic()
        outcome, _ = _invoke(agent, project, tmp_path, env)
        took = time.monotonic() - started
        assert outcome.timed_out and outcome.exit_code is None
        assert took < 8 + process.KILL_GRACE + 5
        assert len(server.agent_requests) == 1  # it was waiting on the model, and is gone


@pytest.mark.slow
def test_codex_runs_its_shell_tool_and_reports_tokens(tmp_path: Path) -> None:
    project = _repo(tmp_path)
    with responses() as server, agents.codex_home(server.base_url) as home:
        server.write("calc.py", RIGHT).say("add adds now.")
        env = agents.clean_environ(**agents.codex_env(home, tmp_path / "home"))
        outcome, shown = _invoke(
            _agent("codex", binary=agents.binary("codex")), project, tmp_path, env
        )
    assert outcome.exit_code == 0, outcome.tail
    assert (project.path / "calc.py").read_text() == RIGHT
    assert outcome.claim == "add adds now." and outcome.session
    assert shown[0] == f"session {outcome.session}"
    assert any(s.startswith("$ /bin/bash -lc") and "(exit 0)" in s for s in shown), shown
    assert outcome.input_tokens is not None and outcome.input_tokens > 0
    assert outcome.cost is None  # Codex reports no price: unknown
    assert any("make add add" in t for t in server.input_texts())


@pytest.mark.slow
def test_aider_applies_a_whole_file_edit_and_leaves_no_file_of_its_own(tmp_path: Path) -> None:
    project = _repo(tmp_path)
    with openai(model_names=("test-model",)) as server:
        edit = f"calc.py\n```python\n{RIGHT}```\n"
        # aider first adds the file it was told about to the chat, then asks again
        server.reply(edit, prompt_tokens=1200, completion_tokens=30).reply(edit).reply("Done.")
        env = agents.clean_environ(**agents.aider_env(server.base_url, tmp_path / "home"))
        agent = _agent("aider", binary=agents.binary("aider"), model="openai/test-model")
        outcome, shown = _invoke(agent, project, tmp_path, env)
        assert 1 <= server.count <= 3
    assert (project.path / "calc.py").read_text() == RIGHT
    assert "edited calc.py" in shown
    assert outcome.input_tokens == 1200 + 11 and outcome.output_tokens == 30 + 7
    assert outcome.cost is not None and outcome.cost > 0  # from the price list it was given
    assert outcome.model == "openai/test-model"
    status = git(project.path, "status", "--porcelain")
    assert status.strip() == "M calc.py", status  # no .aider* file, no .gitignore edit
    assert git(project.path, "log", "--oneline").strip().count("\n") == 0  # no commit of its own
    assert (tmp_path / "evidence" / "aider.chat.history.md").is_file()
