"""Model names, construction, preflight and one request with retries, against a real
OpenAI-compatible server on 127.0.0.1 (tests/fixtures/openai_server.py). No mocks."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic_ai.exceptions import ModelHTTPError, ModelRateLimitError, ModelServerError
from pydantic_ai.messages import ModelRequest, TextPart, ToolCallPart
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.tools import ToolDefinition

from fixtures.openai_server import OpenAIServer, serve
from shipyard.agents.models import (
    BLOCK_VAR,
    build_model,
    model_name_for,
    preflight,
    request,
)
from shipyard.config import Models, Provider
from shipyard.exceptions import ModelProblem, ProviderUnavailable

KEY_VAR = "SHIPYARD_TEST_MODEL_KEY"
KEY = "sk-test-123"
WRITE = ToolDefinition(
    name="write",
    description="Write a file.",
    parameters_json_schema={
        "type": "object",
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path", "content"],
    },
)
PARAMS = ModelRequestParameters(function_tools=[WRITE])
PROMPT = [ModelRequest.user_text_prompt("make calc.py add numbers")]


@pytest.fixture
def plain_server() -> Iterator[OpenAIServer]:
    with serve() as server:
        yield server


@pytest.fixture
def keyed_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIServer]:
    monkeypatch.setenv(KEY_VAR, KEY)
    with serve(api_key=KEY) as server:
        yield server


def local(server_or_url: OpenAIServer | str, **fields: object) -> Models:
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.base_url
    settings: dict = {"request_timeout": 2, "retries": 2, "backoff": 0.01, **fields}
    return Models(providers={"local": Provider(base_url=url, api_key_env=KEY_VAR)}, **settings)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def no_cloud_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (BLOCK_VAR, "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


# -- names --------------------------------------------------------------------------------------


def test_model_name_falls_back_from_override_to_role_to_default() -> None:
    models = Models(reviewer="openai:gpt-4.1", default="anthropic:claude-sonnet-4-5")
    assert model_name_for("reviewer", models, "script:s.yaml") == "script:s.yaml"
    assert model_name_for("reviewer", models, None) == "openai:gpt-4.1"
    assert model_name_for("planner", models, None) == "anthropic:claude-sonnet-4-5"


def test_no_model_says_exactly_what_to_set() -> None:
    with pytest.raises(ModelProblem) as info:
        model_name_for("planner", Models(implementer="openai:gpt-4.1"), None)
    assert str(info.value) == (
        'no model for the planner: set [models] planner = "provider:model" (or default = ...) '
        "in shipyard.toml, or pass --model provider:model"
    )
    assert info.value.exit_code == 3


# -- building -----------------------------------------------------------------------------------


def test_unknown_provider_names_the_table_to_declare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_cloud_keys(monkeypatch)
    with pytest.raises(ModelProblem, match=r"\[models\.providers\.nosuch\] with base_url"):
        build_model("nosuch:llama3", Models(), project=tmp_path, role="implementer")


def test_cloud_provider_without_its_key_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_cloud_keys(monkeypatch)
    with pytest.raises(
        ModelProblem,
        match="the reviewer uses openai:gpt-4.1, which needs "
        "OPENAI_API_KEY: set it in the environment",
    ):
        build_model("openai:gpt-4.1", Models(), project=tmp_path, role="reviewer")
    with pytest.raises(ModelProblem, match="OPENAI_API_KEY"):  # preflight: no network needed
        preflight({"planner": "openai:gpt-4.1"}, Models(), project=tmp_path)


def test_declared_key_variable_missing_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plain_server: OpenAIServer
) -> None:
    monkeypatch.delenv(KEY_VAR, raising=False)
    with pytest.raises(ModelProblem, match=rf"key is read from \${KEY_VAR}.*{KEY_VAR} is not set"):
        preflight({"implementer": "local:m"}, local(plain_server), project=tmp_path)
    assert plain_server.seen == []  # nothing was sent without the key


def test_scripted_model_builds_from_a_relative_path_and_answers(tmp_path: Path) -> None:
    (tmp_path / "replies.yaml").write_text(
        "implementer:\n"
        "  - error: 429\n"
        "  - call: write\n"
        "    args: {path: calc.py, content: x}\n"
        "    tokens: {input: 5, output: 2}\n"
    )
    models = Models(default="script:replies.yaml", backoff=0.01)
    preflight({"implementer": "script:replies.yaml"}, models, project=tmp_path)
    model = build_model("script:replies.yaml", models, project=tmp_path, role="implementer")
    retries: list[tuple[int, BaseException, float]] = []
    response = request(
        model,
        PROMPT,
        PARAMS,
        models=models,
        sleep=lambda s: None,
        on_retry=lambda *a: retries.append(a),
    )
    [call] = response.parts
    assert isinstance(call, ToolCallPart)
    assert (call.tool_name, call.args) == ("write", {"path": "calc.py", "content": "x"})
    assert (response.usage.input_tokens, response.usage.output_tokens) == (5, 2)
    # the scripted 429 is an uncategorized ModelHTTPError: retried all the same
    assert [(n, type(e), w) for n, e, w in retries] == [(1, ModelHTTPError, 0.01)]


def test_missing_script_and_role_without_replies_are_model_problems(tmp_path: Path) -> None:
    with pytest.raises(ModelProblem, match=r"script:gone\.yaml.*no such script file"):
        preflight({"planner": "script:gone.yaml"}, Models(), project=tmp_path)
    (tmp_path / "s.yaml").write_text("implementer: [{text: hi}]\n")
    with pytest.raises(ModelProblem, match="no replies for the reviewer"):
        preflight({"reviewer": f"script:{tmp_path / 's.yaml'}"}, Models(), project=tmp_path)


# -- preflight against a real server ------------------------------------------------------------


def test_preflight_reaches_the_server_with_the_key(
    tmp_path: Path, keyed_server: OpenAIServer
) -> None:
    names = {"implementer": "local:m", "reviewer": "local:m"}
    preflight(names, local(keyed_server), project=tmp_path)
    assert keyed_server.seen == [("GET", "/v1/models", f"Bearer {KEY}")]  # probed once
    assert keyed_server.count == 0  # no chat request spent


def test_preflight_names_an_unreachable_server(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    models = Models(providers={"ollama": Provider(base_url=url)})
    with pytest.raises(ModelProblem) as info:
        preflight({"diagnoser": "ollama:llama3"}, models, project=tmp_path)
    assert str(info.value).startswith(
        f"cannot reach the model server at {url} (the diagnoser uses ollama:llama3): is it running?"
    )


def test_preflight_says_the_key_was_refused(
    tmp_path: Path, keyed_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VAR, "sk-wrong")
    with pytest.raises(ModelProblem) as info:
        preflight({"implementer": "local:m"}, local(keyed_server), project=tmp_path)
    assert str(info.value) == (
        f"the server at {keyed_server.base_url} refused the key in ${KEY_VAR} (HTTP 401)"
    )


def test_blocked_requests_refuse_all_but_local_and_scripted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyed_server: OpenAIServer
) -> None:
    monkeypatch.setenv(BLOCK_VAR, "1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used")
    remote = Models(providers={"far": Provider(base_url="https://models.example.com/v1")})
    blocked = "model requests are blocked \\(SHIPYARD_BLOCK_MODEL_REQUESTS=1\\)"
    with pytest.raises(ModelProblem, match=blocked + ".*far:m, on the server at https://models"):
        preflight({"implementer": "far:m"}, remote, project=tmp_path)
    with pytest.raises(ModelProblem, match=blocked + ".*openai:gpt-4.1, on a cloud provider"):
        build_model("openai:gpt-4.1", Models(), project=tmp_path, role="planner")
    # a declared server on 127.0.0.1 or localhost, and a scripted model, are allowed
    preflight({"implementer": "local:m"}, local(keyed_server), project=tmp_path)
    localhost = local(keyed_server.base_url.replace("127.0.0.1", "localhost"))
    build_model("local:m", localhost, project=tmp_path, role="implementer")
    (tmp_path / "s.yaml").write_text("- text: hi\n")
    build_model("script:s.yaml", Models(), project=tmp_path, role="planner")


# -- request() through OpenAIChatModel ----------------------------------------------------------


def local_model(server: OpenAIServer, tmp_path: Path, **fields: object) -> tuple:
    models = local(server, **fields)
    return build_model("local:m", models, project=tmp_path, role="implementer"), models


def test_a_tool_call_comes_back_with_its_arguments_and_usage(
    tmp_path: Path, keyed_server: OpenAIServer
) -> None:
    keyed_server.reply(
        calls=[("write", {"path": "calc.py", "content": "def add(a, b): ..."})],
        prompt_tokens=123,
        completion_tokens=45,
    )
    model, models = local_model(keyed_server, tmp_path)
    response = request(model, PROMPT, PARAMS, models=models)
    [call] = response.parts
    assert isinstance(call, ToolCallPart)
    assert call.tool_name == "write"
    assert call.args_as_dict() == {"path": "calc.py", "content": "def add(a, b): ..."}
    assert (response.usage.input_tokens, response.usage.output_tokens) == (123, 45)
    [body] = keyed_server.bodies
    assert body["messages"] == [{"role": "user", "content": "make calc.py add numbers"}]
    assert [t["function"]["name"] for t in body["tools"]] == ["write"]


def test_rate_limits_are_retried_with_the_servers_retry_after(
    tmp_path: Path, keyed_server: OpenAIServer
) -> None:
    keyed_server.fail(429, "slow down", code="rate_limit_exceeded", retry_after=0, times=2)
    keyed_server.reply("done")
    model, models = local_model(keyed_server, tmp_path)
    retries: list[tuple[int, BaseException, float]] = []
    slept: list[float] = []
    response = request(
        model,
        PROMPT,
        PARAMS,
        models=models,
        sleep=slept.append,
        on_retry=lambda *a: retries.append(a),
    )
    assert response.parts == [TextPart(content="done")]
    assert [(n, w) for n, _, w in retries] == [(1, 0.0), (2, 0.0)]
    assert all(isinstance(e, ModelRateLimitError) for _, e, _ in retries)
    assert slept == [0.0, 0.0]
    assert keyed_server.count == 3


def test_server_errors_outlast_the_retries_and_pause_the_run(
    tmp_path: Path, keyed_server: OpenAIServer
) -> None:
    keyed_server.fail(500, "boom", times=10)
    model, models = local_model(keyed_server, tmp_path, retries=2, backoff=1.5)
    slept: list[float] = []
    with pytest.raises(ProviderUnavailable) as info:
        request(model, PROMPT, PARAMS, models=models, sleep=slept.append)
    assert keyed_server.count == 3  # retries + 1
    assert slept == [1.5, 3.0]  # backoff, doubled
    message = str(info.value)
    assert "server error (HTTP 500), 3 times in a row" in message
    assert "the run is paused — `shipyard resume RUN` continues it" in message
    assert isinstance(info.value.__cause__, ModelServerError)


def test_a_long_retry_after_is_capped(tmp_path: Path, keyed_server: OpenAIServer) -> None:
    keyed_server.fail(503, retry_after=3600).reply("ok")
    model, models = local_model(keyed_server, tmp_path)
    slept: list[float] = []
    request(model, PROMPT, PARAMS, models=models, sleep=slept.append)
    assert slept == [60.0]


def test_a_request_past_the_timeout_is_retried_then_pauses(
    tmp_path: Path, keyed_server: OpenAIServer
) -> None:
    keyed_server.delay(10).delay(10)
    model, models = local_model(keyed_server, tmp_path, request_timeout=0.4, retries=1)
    retries: list[tuple[int, BaseException, float]] = []
    with pytest.raises(ProviderUnavailable, match="timed out, 2 times in a row") as info:
        request(
            model,
            PROMPT,
            PARAMS,
            models=models,
            sleep=lambda s: None,
            on_retry=lambda *a: retries.append(a),
        )
    assert "shipyard resume" in str(info.value)
    assert keyed_server.count == 2
    assert [n for n, _, _ in retries] == [1]


def test_a_refused_key_is_fatal_at_once(tmp_path: Path, keyed_server: OpenAIServer) -> None:
    model, models = local_model(keyed_server, tmp_path)
    keyed_server.api_key = "sk-rotated"  # the key went stale after the model was built
    retries: list[object] = []
    with pytest.raises(ModelProblem) as info:
        request(
            model,
            PROMPT,
            PARAMS,
            models=models,
            sleep=lambda s: None,
            on_retry=lambda *a: retries.append(a),
        )
    assert not isinstance(info.value, ProviderUnavailable)
    assert f"the provider refused the key: check ${KEY_VAR} (HTTP 401)" in str(info.value)
    assert keyed_server.count == 1
    assert retries == []


def test_other_client_errors_are_fatal_and_name_the_fix(
    tmp_path: Path, keyed_server: OpenAIServer
) -> None:
    keyed_server.fail(404, "The model `m` does not exist", code="model_not_found")
    model, models = local_model(keyed_server, tmp_path)
    with pytest.raises(ModelProblem, match="no such model: check the model name"):
        request(model, PROMPT, PARAMS, models=models, sleep=lambda s: None)
    keyed_server.fail(409).reply("after a conflict")  # 408/409 are worth another try
    response = request(model, PROMPT, PARAMS, models=models, sleep=lambda s: None)
    assert response.parts == [TextPart(content="after a conflict")]
    assert keyed_server.count == 3
