"""``shipyard run`` against a real OpenAI-compatible server on 127.0.0.1: provider errors are
retried, then the run pauses (exit 3) and ``resume`` finishes it; a model that cannot be used
stops the run before any work starts."""

from __future__ import annotations

from pathlib import Path

import yaml

from conftest import run_cli
from fixtures.loop_support import (
    APPROVE,
    DIAGNOSIS,
    RIGHT,
    TEST_MULTIPLY,
    LedgerView,
    make_project,
    spec_file,
)
from fixtures.openai_server import serve

MODELS = """
[models]
implementer = "local:m"
reviewer = "script:{script}"
diagnoser = "script:{script}"
retries = 2
backoff = 0.01
request_timeout = 1

[models.providers.local]
base_url = "{url}"
api_key_env = "LOCAL_TEST_KEY"
"""


def _project(tmp_path: Path, url: str):
    project = make_project(tmp_path)
    script = tmp_path / "roles.yaml"
    script.write_text(yaml.safe_dump({"reviewer": [APPROVE], "diagnoser": [DIAGNOSIS]}))
    config = project.path / "shipyard.toml"
    config.write_text(config.read_text() + MODELS.format(script=script, url=url))
    project.commit("models")
    return project


def _run(project, *args: str, key: str = "sk-test"):
    return run_cli(*args, cwd=project.path, env={"LOCAL_TEST_KEY": key}, timeout=120)


def test_provider_errors_are_retried_then_the_run_pauses_and_resume_finishes(
    tmp_path: Path,
) -> None:
    with serve(api_key="sk-test") as server:
        project = _project(tmp_path, server.base_url)
        edit = {"path": "calc.py", "search": "    return a + b\n", "replace": RIGHT}
        server.reply(calls=[("edit", edit)])
        server.fail(429, retry_after=0, times=3)  # the first try and both retries
        spec = spec_file(tmp_path)
        first = _run(project, "run", "multiply", "--spec", str(spec), "--yes")
        assert first.code == 3, first.stdout + first.stderr
        assert "paused" in first.stderr and "shipyard resume" in first.stderr
        assert "retry 1" in first.stdout and "retry 2" in first.stdout
        ledger = LedgerView(project)
        run = ledger.run()
        assert run["status"] == "paused"
        assert ledger.state()["step"] == 1  # the answer before the errors is kept
        assert server.count == 4

        server.fail(500)
        server.delay(5)  # past request_timeout: a timeout, retried
        test = {"path": "tests/test_multiply.py", "content": TEST_MULTIPLY}
        server.reply(calls=[("write", test)])
        server.reply(calls=[("submit", {"summary": "multiply added"})])
        second = _run(project, "resume", run["id"])
        assert second.code == 0, second.stdout + second.stderr
        assert "shipped (exit 0)" in second.stdout
        assert server.count == 8
        # the resumed conversation carried the first answer's tool result to the server
        last = server.bodies[-1]["messages"]
        assert any(m.get("role") == "tool" and "calc.py" in str(m) for m in last)
        usage = LedgerView(project).state()["usage"]
        assert usage["input_tokens"] >= 3 * 11


def test_an_unreachable_server_stops_the_run_before_any_work(tmp_path: Path) -> None:
    with serve() as server:
        url = server.base_url
    project = _project(tmp_path, url)  # the server is gone: nothing listens there
    result = _run(project, "run", "multiply", "--spec", str(spec_file(tmp_path)), "--yes")
    assert result.code == 3, result.stdout + result.stderr
    assert "cannot reach" in result.stderr and url in result.stderr
    assert not (project.path / ".shipyard" / "shipyard.db").exists()


def test_a_refused_key_stops_the_run_before_any_work(tmp_path: Path) -> None:
    with serve(api_key="sk-right") as server:
        project = _project(tmp_path, server.base_url)
        result = _run(project, "run", "multiply", "--spec", str(spec_file(tmp_path)), "--yes")
        assert result.code == 3, result.stdout + result.stderr
        assert "LOCAL_TEST_KEY" in result.stderr
        assert server.count == 0


def test_no_model_configured_says_what_to_set(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = run_cli(
        "run", "multiply", "--spec", str(spec_file(tmp_path)), "--yes", cwd=project.path
    )
    assert result.code == 3, result.stdout + result.stderr
    assert "[models]" in result.stderr and "--model" in result.stderr
    assert not (project.path / ".shipyard" / "shipyard.db").exists()


def test_a_cloud_model_is_refused_while_model_requests_are_blocked(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    result = run_cli(
        "run", "multiply", "--spec", str(spec_file(tmp_path)), "--yes",
        "--model", "openai:gpt-4.1", cwd=project.path, env={"OPENAI_API_KEY": "sk-x"},
    )  # fmt: skip
    assert result.code == 3, result.stdout + result.stderr
    assert "blocked" in result.stderr
