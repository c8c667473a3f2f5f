"""Scripted models: the whole loop, offline and deterministic, for Shipyard's tests and yours.

Two kinds, both real pydantic-ai models (``FunctionModel`` underneath), so they go through the
same request path as a provider's model:

* :class:`ScriptedModel` answers from a list of :class:`Reply` values, in order. Each answer
  records its position, so a conversation resumed from the ledger after a crash gets the same
  next answer. A reply can be a tool call, several, a text, a structured output, malformed
  arguments, or carry provider errors to raise first.
* A function of the messages: ``FunctionModel(fn)`` from pydantic-ai, or a ``.py`` script that
  defines ``reply(messages, info)`` (or one function per role), loaded by :func:`load_script`.

A script file (YAML or JSON) is a list of replies, or a mapping from role to such a list::

    implementer:
      - call: write
        args: {path: calc.py, content: "def add(a, b):\\n    return a + b\\n"}
      - error: 429            # raised once before the next reply; `times: 3` for more
      - call: submit
        args: {summary: add() implemented}
    reviewer:
      - output: {decision: approve, summary: looks right, findings: []}

Reply keys: ``call`` + ``args`` (or ``raw``: the arguments as a literal, possibly malformed,
JSON string), ``calls`` (a list of those), ``text``, ``output`` (the structured answer, sent as a
call of the request's output tool), ``error`` (an HTTP status, or ``timeout``/``connection``) with
``times``, ``tokens: {input: N, output: N}`` for the usage to report, and ``cost`` (dollars) as
the price the provider reports for the answer.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic_ai.exceptions import ModelConnectionError, ModelHTTPError, ModelTimeoutError
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    ModelResponsePart,
    TextPart,
    ToolCallPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from shipyard.exceptions import ConfigError

ErrorKind = int | Literal["timeout", "connection"]
_ids = itertools.count(1)


@dataclass(frozen=True, kw_only=True)
class Call:
    """One tool call. ``raw`` sends the arguments as this exact string (malformed JSON, say)."""

    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    raw: str | None = None


@dataclass(frozen=True, kw_only=True)
class Reply:
    """One answer of a scripted model: tool calls, a text, or a structured output."""

    calls: tuple[Call, ...] = ()
    text: str | None = None
    output: dict[str, Any] | None = None
    errors: tuple[ErrorKind, ...] = ()
    """Provider errors raised, one per request, before this reply is given."""
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None
    """US dollars, reported as the provider's price for this answer."""


class ScriptExhausted(RuntimeError):
    """The conversation asked for more answers than the script has."""


class ScriptedModel(FunctionModel):
    """Answers with ``replies`` in order.

    Each answer records its position in the script (``provider_details["script_position"]``),
    so a conversation restored from the ledger after a crash continues where it was; a new
    conversation (a fresh reviewer, say) takes the next reply not yet given by this model.
    """

    def __init__(self, replies: Sequence[Reply], *, name: str = "scripted") -> None:
        self.replies = tuple(replies)
        self._raised: dict[int, int] = {}
        self._next = 0
        super().__init__(self._answer, model_name=name)

    async def _answer(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        position = max(self._next, _last_position(messages) + 1)
        if position >= len(self.replies):
            raise ScriptExhausted(
                f"{self.model_name}: the script has {len(self.replies)} replies and the "
                f"conversation asked for reply {position + 1}"
            )
        reply = self.replies[position]
        raised = self._raised.get(position, 0)
        if raised < len(reply.errors):
            self._raised[position] = raised + 1
            raise _provider_error(reply.errors[raised], self.model_name)
        self._next = position + 1
        response = _response(reply, info)
        response.provider_details = {
            **(response.provider_details or {}),
            "script_position": position,
        }
        return response

    def continue_after(self, messages: Sequence[ModelMessage]) -> None:
        """After a resume: the next fresh conversation takes the reply after those given."""
        self._next = max(self._next, _last_position(messages) + 1)


def _last_position(messages: Sequence[ModelMessage]) -> int:
    positions = [
        position
        for message in messages
        if isinstance(message, ModelResponse)
        and isinstance(position := (message.provider_details or {}).get("script_position"), int)
    ]
    return max(positions, default=-1)


def _response(reply: Reply, info: AgentInfo) -> ModelResponse:
    parts: list[ModelResponsePart] = []
    if reply.text is not None:
        parts.append(TextPart(content=reply.text))
    for call in reply.calls:
        args: str | dict[str, Any] = call.raw if call.raw is not None else call.args
        parts.append(ToolCallPart(tool_name=call.tool, args=args, tool_call_id=_call_id()))
    if reply.output is not None:
        tool = info.output_tools[0].name if info.output_tools else "final_result"
        parts.append(ToolCallPart(tool_name=tool, args=reply.output, tool_call_id=_call_id()))
    usage = RequestUsage()
    if reply.input_tokens is not None or reply.output_tokens is not None:
        usage = RequestUsage(
            input_tokens=reply.input_tokens or 0, output_tokens=reply.output_tokens or 0
        )
    details = {"cost": reply.cost} if reply.cost is not None else None
    return ModelResponse(parts=parts, usage=usage, provider_details=details)


def _call_id() -> str:
    return f"call_{next(_ids)}"


def _provider_error(kind: ErrorKind, model: str) -> Exception:
    if kind == "timeout":
        return ModelTimeoutError(model, "scripted: the request timed out")
    if kind == "connection":
        return ModelConnectionError(model, "scripted: connection refused", phase="connect")
    return ModelHTTPError(kind, model, body={"error": f"scripted HTTP {kind}"})


# -- script files -------------------------------------------------------------------------------

MAX_SCRIPT_BYTES = 64 * 1024 * 1024
"""The largest script file read."""


def load_script(path: Path, role: str) -> FunctionModel:
    """The model for ``role`` from a script file: YAML/JSON replies, or a Python file."""
    if not path.is_file():
        raise ConfigError("no such script file", file=str(path))
    if path.suffix == ".py":
        return _python_script(path, role)
    data = _read(path.resolve(), path.stat().st_mtime_ns)
    if isinstance(data, dict):
        if role not in data:
            raise ConfigError(f"no replies for the {role}", file=str(path), field=role)
        data = data[role]
    if not isinstance(data, list):
        raise ConfigError("must be a list of replies, or a mapping of role to list", file=str(path))
    replies = [_reply(item, path, role, n) for n, item in enumerate(data)]
    return ScriptedModel(_fold_errors(replies, path), name=f"script:{path.name}:{role}")


@functools.lru_cache(maxsize=8)
def _read(path: Path, _mtime: int) -> Any:
    """A script file, parsed once for all its roles (C YAML loader when there is one)."""
    import yaml

    from shipyard.formats import read_text, safe_yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = read_text(path, ConfigError, limit=MAX_SCRIPT_BYTES)
    return safe_yaml(text, str(path), ConfigError, loader)[1]


def parse_replies(data: Sequence[dict[str, Any]]) -> list[Reply]:
    """Replies from plain data (the same keys as a script file)."""
    path = Path("<replies>")
    return _fold_errors([_reply(item, path, "replies", n) for n, item in enumerate(data)], path)


_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "args": (dict, "a mapping of argument names to values"),
    "calls": (list, "a list of calls"),
    "text": (str, "a string"),
    "output": (dict, "a mapping (the structured answer)"),
    "times": (int, "a whole number"),
    "tokens": (dict, "{input: N, output: N}"),
    "cost": ((int, float), "a number of dollars"),
}
_KEYS = {"call", "args", "raw", "calls", "text", "output", "error", "times", "tokens", "cost"}


def _reply(item: object, path: Path, role: str, n: int) -> Reply:
    where = f"{role}[{n}]"
    if not isinstance(item, dict) or not item or not set(item) <= _KEYS:
        unknown = sorted(set(item) - _KEYS) if isinstance(item, dict) else []
        detail = f"unknown keys {unknown}" if unknown else "must be a mapping of reply keys"
        raise ConfigError(f"{detail} (known: {sorted(_KEYS)})", file=str(path), field=where)
    for key, (kinds, expected) in _TYPES.items():
        value = item.get(key)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise ConfigError(f"{key} must be {expected}", file=str(path), field=f"{where}.{key}")
    tokens_ = item.get("tokens") or {}
    if not set(tokens_) <= {"input", "output"} or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in tokens_.values()
    ):
        raise ConfigError(
            "tokens must be {input: N, output: N}", file=str(path), field=f"{where}.tokens"
        )
    if "error" in item:
        kind = item["error"]
        if not (isinstance(kind, int) or kind in ("timeout", "connection")):
            raise ConfigError(
                "error must be an HTTP status or timeout/connection", file=str(path), field=where
            )
        return Reply(errors=(kind,) * int(item.get("times", 1)))
    calls = [_call(c, path, where) for c in item.get("calls", [])]
    if "call" in item:
        calls.append(_call(item, path, where))
    tokens = item.get("tokens") or {}
    return Reply(
        calls=tuple(calls),
        text=item.get("text"),
        output=item.get("output"),
        input_tokens=tokens.get("input"),
        output_tokens=tokens.get("output"),
        cost=item.get("cost"),
    )


def _call(item: dict[str, Any], path: Path, where: str) -> Call:
    if not isinstance(item, dict) or not isinstance(item.get("call"), str):
        raise ConfigError("a call needs `call: TOOL`", file=str(path), field=where)
    if not isinstance(item.get("args") or {}, dict):
        raise ConfigError("args must be a mapping", file=str(path), field=f"{where}.args")
    raw = item.get("raw")
    if raw is not None and not isinstance(raw, str):
        raw = json.dumps(raw)
    return Call(tool=item["call"], args=item.get("args") or {}, raw=raw)


def _fold_errors(replies: list[Reply], path: Path) -> list[Reply]:
    """Attach error entries to the reply that follows them."""
    folded: list[Reply] = []
    pending: tuple[ErrorKind, ...] = ()
    for reply in replies:
        if reply.errors and not (reply.calls or reply.text is not None or reply.output):
            pending += reply.errors
            continue
        folded.append(Reply(**{**reply.__dict__, "errors": pending + reply.errors}))
        pending = ()
    if pending:
        raise ConfigError("an error entry must be followed by a reply", file=str(path))
    return folded


def _python_script(path: Path, role: str) -> FunctionModel:
    spec = importlib.util.spec_from_file_location(f"shipyard_script_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError("cannot be loaded as Python", file=str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn: Callable[..., Any] | None = getattr(module, role, None) or getattr(module, "reply", None)
    if fn is None:
        raise ConfigError(f"defines neither {role}() nor reply()", file=str(path))
    return FunctionModel(fn, model_name=f"script:{path.name}:{role}")
