"""A provider that misbehaves — an answer with no choices, the chat format answered to a
Responses request, an answer trickled one byte a second — ends the run paused (exit 3) with a
message naming provider, model and endpoint, and ``resume`` finishes it. Real servers on
127.0.0.1 (``fixtures.openai_server``), the real CLI."""

from __future__ import annotations

from pathlib import Path

import yaml

from conftest import run_cli
from fixtures.loop_support import (
    APPROVE,
    DIAGNOSIS,
    GOOD_SESSION,
    RIGHT,
    TEST_MULTIPLY,
    LedgerView,
    make_project,
    script,
    spec_file,
)
from fixtures.openai_server import serve

MODELS = """
[models]
implementer = "local:m"
reviewer = "script:{script}"
diagnoser = "script:{script}"
retries = 1
backoff = 0.01
request_timeout = {timeout}

[models.providers.local]
base_url = "{url}"
"""


def _project(tmp_path: Path, url: str, timeout: float = 5):
    project = make_project(tmp_path)
    roles = tmp_path / "roles.yaml"
    roles.write_text(yaml.safe_dump({"reviewer": [APPROVE], "diagnoser": [DIAGNOSIS]}))
    config = project.path / "shipyard.toml"
    config.write_text(config.read_text() + MODELS.format(script=roles, url=url, timeout=timeout))
    project.commit("models")
    return project


def _finish(server, project, run_id: str) -> None:
    """The provider behaves again: ``resume`` ships the very same run."""
    edit = {"path": "calc.py", "search": "    return a + b\n", "replace": RIGHT}
    server.reply(calls=[("edit", edit)])
    server.reply(calls=[("write", {"path": "tests/test_multiply.py", "content": TEST_MULTIPLY})])
    server.reply(calls=[("submit", {"summary": "multiply added"})])
    again = run_cli("resume", run_id, cwd=project.path, timeout=120)
    assert again.code == 0, again.stdout + again.stderr
    assert "shipped (exit 0)" in again.stdout
    assert LedgerView(project).run()["status"] == "shipped"


def test_an_answer_with_no_choices_is_a_provider_error_retried_then_paused(tmp_path) -> None:
    with serve() as server:
        project = _project(tmp_path, server.base_url)
        server.raw({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                    "choices": []}, times=2)  # fmt: skip
        first = run_cli(
            "run", "multiply", "--spec", str(spec_file(tmp_path)), "--yes", cwd=project.path
        )
        assert first.code == 3, first.stdout + first.stderr
        assert "Traceback" not in first.stderr and "internal error" not in first.stderr
        assert "a malformed answer" in first.stderr, first.stderr
        assert "local" in first.stderr and "'m'" in first.stderr
        assert server.base_url in first.stderr
        assert "2 times in a row" in first.stderr
        assert "retry 1" in first.stdout
        assert server.count == 2
        run = LedgerView(project).run()
        assert run["status"] == "paused"
        assert f"shipyard resume {run['id']}" in first.stderr
        _finish(server, project, run["id"])


def test_an_answer_that_is_not_json_is_a_provider_error(tmp_path) -> None:
    with serve() as server:
        project = _project(tmp_path, server.base_url)
        server.raw({"choices": [{"message": None}]}, times=2)
        first = run_cli(
            "run", "multiply", "--spec", str(spec_file(tmp_path)), "--yes", cwd=project.path
        )
        assert first.code == 3, first.stdout + first.stderr
        assert "a malformed answer" in first.stderr and "Traceback" not in first.stderr
        assert LedgerView(project).run()["status"] == "paused"


def test_openai_against_a_chat_completions_server_warns_and_names_the_fix(tmp_path) -> None:
    with serve() as server:
        project = make_project(tmp_path)
        path = script(tmp_path, implementer=GOOD_SESSION)
        config = project.path / "shipyard.toml"
        roles = f'reviewer = "script:{path}"\ndiagnoser = "script:{path}"\n'
        config.write_text(
            config.read_text()
            + '[models]\nimplementer = "openai:m"\n'
            + roles
            + "retries = 0\nbackoff = 0.01\n"
        )
        project.commit("models")
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-test"}
        for _ in range(2):
            server.reply(calls=[("read", {"path": "calc.py"})])  # the chat format, to /responses
        first = run_cli(
            "run", "multiply", "--spec", str(spec_file(tmp_path)), "--yes",
            cwd=project.path, env=env,
        )  # fmt: skip
        assert first.code == 3, first.stdout + first.stderr
        assert "Traceback" not in first.stderr and "internal error" not in first.stderr
        warning, _, failure = first.stderr.partition("paused")
        assert "warning" in warning and "/responses" in warning and server.base_url in warning
        assert "openai-chat:m" in warning
        assert ("POST", "/v1/responses") in [(m, p) for m, p, _ in server.seen]
        assert "openai-chat:m" in failure and "[models.providers." in failure, failure
        assert LedgerView(project).run()["status"] == "paused"

        # the fix it names works against the same server, with no warning
        config.write_text(config.read_text().replace('"openai:m"', '"openai-chat:m"'))
        project.commit("openai-chat")
        for reply in GOOD_SESSION:
            server.reply(calls=[(reply["call"], reply["args"])])
        fixed = run_cli(
            "run", "multiply", "--spec", str(spec_file(tmp_path)), "--yes",
            cwd=project.path, env=env,
        )  # fmt: skip
        assert fixed.code == 0, fixed.stdout + fixed.stderr
        assert "warning" not in fixed.stderr


def test_a_server_trickling_bytes_is_cut_at_the_request_timeout(tmp_path) -> None:
    with serve() as server:
        project = _project(tmp_path, server.base_url, timeout=1)
        server.trickle(300, times=2)  # five minutes an answer, at one byte a second
        first = run_cli(
            "run", "multiply", "--spec", str(spec_file(tmp_path)), "--yes", cwd=project.path,
            timeout=60,  # past it, the trickle was not cut: the test fails
        )  # fmt: skip
        assert first.code == 3, first.stdout + first.stderr
        assert "timed out" in first.stderr and "1s" in first.stderr, first.stderr
        assert server.base_url in first.stderr
        run = LedgerView(project).run()
        assert run["status"] == "paused"
        _finish(server, project, run["id"])
