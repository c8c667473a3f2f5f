"""Scripted models: real pydantic-ai models answering from a script, positions that survive a
restored conversation, injected provider errors, and script files with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_ai.direct import model_request_sync
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import ModelRequest, ToolCallPart

from shipyard.agents.scripted import ScriptedModel, ScriptExhausted, load_script, parse_replies
from shipyard.exceptions import ConfigError

HELLO = [ModelRequest.user_text_prompt("hello")]


def _ask(model, messages=HELLO):
    return model_request_sync(model, list(messages))


def test_replies_come_in_order_and_a_restored_conversation_continues_where_it_was() -> None:
    replies = parse_replies(
        [{"call": "read", "args": {"path": "a"}}, {"text": "two"}, {"text": "3"}]
    )
    first = ScriptedModel(replies)
    one = _ask(first)
    assert isinstance(one.parts[0], ToolCallPart) and one.parts[0].args == {"path": "a"}
    # a new process (a new model) given the stored conversation answers with reply 2
    again = ScriptedModel(replies)
    two = _ask(again, [*HELLO, one, ModelRequest.user_text_prompt("go on")])
    assert two.parts[0].content == "two"
    assert _ask(again).parts[0].content == "3"  # a fresh conversation takes the next reply
    with pytest.raises(ScriptExhausted, match="has 3 replies"):
        _ask(again)


def test_injected_errors_come_before_their_reply_and_malformed_arguments_are_sent_raw() -> None:
    model = ScriptedModel(
        parse_replies([{"error": 429, "times": 2}, {"call": "edit", "raw": '{"path": '}])
    )
    for _ in range(2):
        with pytest.raises(ModelHTTPError) as info:
            _ask(model)
        assert info.value.status_code == 429
    call = _ask(model).parts[0]
    assert call.args == '{"path": '


def test_script_files_name_the_file_and_the_reply_in_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("implementer:\n  - {call: read}\n  - {cal: read}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: implementer\[1\]: unknown keys \['cal'\]"):
        load_script(bad, "implementer")
    with pytest.raises(ConfigError, match="no replies for the reviewer"):
        load_script(bad, "reviewer")
    trailing = tmp_path / "trailing.yaml"
    trailing.write_text("- {text: hi}\n- {error: 500}\n")
    with pytest.raises(ConfigError, match="must be followed by a reply"):
        load_script(trailing, "implementer")
    py = tmp_path / "fn.py"
    py.write_text("def other(messages, info):\n    pass\n")
    with pytest.raises(ConfigError, match=r"defines neither planner\(\) nor reply\(\)"):
        load_script(py, "planner")


def test_wrongly_typed_reply_keys_are_named(tmp_path: Path) -> None:
    for bad, field in [
        ("{text: hi, tokens: 5}", "tokens"),
        ("{error: 500, times: many}", "times"),
        ("{calls: notalist}", "calls"),
        ("{text: hi, cost: cheap}", "cost"),
        ("{output: 5}", "output"),
        ("{call: read, args: [1, 2]}", "args"),
        ("{calls: [{call: read, args: 7}]}", "args"),
        ("{text: hi, tokens: {input: true}}", "tokens"),
    ]:
        path = tmp_path / "s.yaml"
        path.write_text(f"- {bad}\n- {{text: fine}}\n")
        with pytest.raises(ConfigError, match=rf"s.yaml: implementer\[0\]\.{field}: "):
            load_script(path, "implementer")
