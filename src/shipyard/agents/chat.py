"""One role's conversation with its model, and structured answers validated on arrival.

Shipyard drives every request itself (pydantic-ai's ``Model`` for the wire, not its agent loop),
so that each step can be written to the ledger before the next one starts, and a run resumed
after a crash continues the very same conversation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelRequestPart,
    ModelResponse,
    RetryPromptPart,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.tools import ToolDefinition

from shipyard.agents import models as model_io
from shipyard.agents.tools import Toolbox, ToolSpec
from shipyard.config import Models

T = TypeVar("T", bound=BaseModel)
OUTPUT_TOOL = "final_result"
KEEP_FULL = 24
"""Messages at the end of a conversation kept whole; older tool output and arguments are elided
in memory (the ledger keeps them whole), so a long run does not grow without bound."""
ELIDE_OVER = 400
KEEP_MESSAGES = 200
"""At most this many messages after the first are held (and sent): memory and context stay
bounded in a long run; the model is told how many earlier ones were left out."""


@dataclass(frozen=True, kw_only=True)
class Answer:
    response: ModelResponse
    input_tokens: int
    output_tokens: int
    cost: float | None


class Conversation:
    """The messages of one role, plus what is new since the ledger last saw them."""

    def __init__(
        self,
        name: str,
        model: Model,
        models: Models,
        history: Sequence[ModelMessage] = (),
        on_retry: Callable[[int, BaseException, float], None] | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.models = models
        self.messages: list[ModelMessage] = list(history)
        self.unsaved: list[str] = []
        """New messages as JSON, dumped when added: the ledger keeps them whole even when
        memory elides them later."""
        self.on_retry = on_retry
        self._elided = 0
        self.omitted = 0
        self._note: UserPromptPart | None = None
        self._elide()

    @classmethod
    def restore(
        cls, name: str, model: Model, models: Models, rows: Sequence[str], **kw: Any
    ) -> Conversation:
        history = [m for row in rows for m in ModelMessagesTypeAdapter.validate_json(row)]
        return cls(name, model, models, history, **kw)

    def add(self, message: ModelMessage) -> None:
        self.messages.append(message)
        self.unsaved.append(ModelMessagesTypeAdapter.dump_json([message]).decode())
        self._elide()

    def start(self, system: str, user: str) -> None:
        self.add(
            ModelRequest(parts=[SystemPromptPart(content=system), UserPromptPart(content=user)])
        )

    def say(self, text: str) -> None:
        self.add(ModelRequest(parts=[UserPromptPart(content=text)]))

    def take_unsaved(self) -> list[tuple[str, str]]:
        """(conversation, JSON) for each message the ledger has not stored yet."""
        rows = [(self.name, data) for data in self.unsaved]
        self.unsaved = []
        return rows

    @property
    def last_response(self) -> ModelResponse | None:
        last = self.messages[-1] if self.messages else None
        return last if isinstance(last, ModelResponse) else None

    def ask(self, params: ModelRequestParameters) -> Answer:
        """One request; provider errors are retried inside, then raise ProviderUnavailable."""
        response = model_io.request(
            self.model, self.messages, params, models=self.models, on_retry=self.on_retry
        )
        self.add(response)
        usage = response.usage
        return Answer(
            response=response,
            input_tokens=usage.input_tokens or 0,
            output_tokens=usage.output_tokens or 0,
            cost=_cost(response),
        )

    def _elide(self) -> None:
        """Shorten old tool output and tool arguments (kept whole in the ledger), and keep the
        first message and the last KEEP_MESSAGES in memory."""
        self._trim()
        while self._elided < len(self.messages) - KEEP_FULL:
            message = self.messages[self._elided]
            self._elided += 1
            for part in message.parts:
                if isinstance(part, ToolReturnPart) and len(str(part.content)) > ELIDE_OVER:
                    part.content = f"[{len(str(part.content))} characters of output elided]"
                elif isinstance(part, ToolCallPart) and len(part.args_as_json_str()) > ELIDE_OVER:
                    part.args = {"elided": f"{len(part.args_as_json_str())} characters"}

    def _trim(self) -> None:
        drop = len(self.messages) - 1 - KEEP_MESSAGES
        if drop <= 0 or not isinstance(self.messages[0], ModelRequest):
            return
        # what is kept starts with a model answer, so no tool result is left without its call
        while 1 + drop < len(self.messages) and not isinstance(
            self.messages[1 + drop], ModelResponse
        ):
            drop += 1
        del self.messages[1 : 1 + drop]
        self._elided = max(1, self._elided - drop)
        self.omitted += drop
        if self._note is None:
            self._note = UserPromptPart(content="")
            self.messages[0].parts = [*self.messages[0].parts, self._note]
        self._note.content = (
            f"({self.omitted} earlier messages of this conversation are left out here; "
            "what they did is in the worktree.)"
        )


def _cost(response: ModelResponse) -> float | None:
    """The price the provider reports, or genai-prices' figure; None when unknown."""
    reported = (response.provider_details or {}).get("cost")
    if isinstance(reported, int | float):
        return float(reported)
    try:
        return float(response.cost().total_price)
    except (AssertionError, LookupError, ValueError, ImportError, TypeError):
        return None


# -- tools ---------------------------------------------------------------------------------------


def tool_definitions(specs: Sequence[ToolSpec]) -> list[ToolDefinition]:
    return [
        ToolDefinition(name=s.name, description=s.description, parameters_json_schema=s.schema)
        for s in specs
    ]


def calls_of(response: ModelResponse) -> list[ToolCallPart]:
    return [p for p in response.parts if isinstance(p, ToolCallPart)]


def text_of(response: ModelResponse) -> str:
    return "".join(p.content for p in response.parts if isinstance(p, TextPart)).strip()


def signature(call: ToolCallPart) -> str:
    """The same tool with the same arguments gives the same signature."""
    try:
        args = json.dumps(call.args_as_dict(raise_if_invalid=True), sort_keys=True)
    except (ValueError, AssertionError):
        args = str(call.args)
    return f"{call.tool_name}:{args}"


# -- structured answers --------------------------------------------------------------------------


class NoValidAnswer(Exception):
    """The model did not give a valid structured answer within the allowed tries."""

    def __init__(self, message: str, answers: list[Answer]) -> None:
        super().__init__(message)
        self.answers = answers


def output_params(
    output: type[BaseModel], tools: Sequence[ToolSpec] = (), description: str = ""
) -> ModelRequestParameters:
    return ModelRequestParameters(
        function_tools=tool_definitions(tools),
        output_mode="tool",
        output_tools=[
            ToolDefinition(
                name=OUTPUT_TOOL,
                description=description or f"Give your answer: {output.__doc__ or ''}".strip(),
                parameters_json_schema=output.model_json_schema(),
            )
        ],
        allow_text_output=False,
    )


def parse_output(
    call: ToolCallPart, output: type[T], check: Callable[[T], str | None] | None = None
) -> tuple[T | None, str | None]:
    """The validated answer, or the error to send back to the model."""
    try:
        value = output.model_validate(call.args_as_dict(raise_if_invalid=True))
    except (
        ValueError,
        AssertionError,
    ) as exc:  # malformed JSON, or pydantic's ValidationError (a ValueError)
        return None, _explain(exc)
    problem = check(value) if check else None
    return (None, problem) if problem else (value, None)


def retry_part(call: ToolCallPart | None, problem: str) -> ModelRequestPart:
    if call is None:
        return RetryPromptPart(content=problem)
    return RetryPromptPart(
        content=problem, tool_name=call.tool_name, tool_call_id=call.tool_call_id
    )


def _explain(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        lines = [
            f"- {'.'.join(str(x) for x in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        ]
        return "The answer does not validate:\n" + "\n".join(lines)
    return f"The arguments are not valid JSON: {exc}"


def structured(
    conv: Conversation,
    output: type[T],
    *,
    retries: int,
    toolbox: Toolbox | None = None,
    check: Callable[[T], str | None] | None = None,
    max_steps: int = 1,
) -> tuple[T, list[Answer]]:
    """Ask until the model gives a valid ``output``: an invalid answer goes back with its
    validation error, at most ``retries`` times; with a (read-only) ``toolbox``, tool calls are
    answered, at most ``max_steps`` requests in all. Raises NoValidAnswer."""
    params = output_params(output, toolbox.specs() if toolbox else ())
    answers: list[Answer] = []
    problems = 0
    for _ in range(max_steps + retries):
        answer = conv.ask(params)
        answers.append(answer)
        replies: list[ModelRequestPart] = []
        for call in calls_of(answer.response):
            if call.tool_name == OUTPUT_TOOL:
                value, problem = parse_output(call, output, check)
                if value is not None:
                    return value, answers
                replies.append(retry_part(call, problem or "invalid"))
                problems += 1
            elif toolbox is not None and len(answers) < max_steps:
                outcome = toolbox.call(call.tool_name, call.args)
                text = outcome.text if outcome.ok else f"error: {outcome.text}"
                replies.append(
                    ToolReturnPart(
                        tool_name=call.tool_name, content=text, tool_call_id=call.tool_call_id
                    )
                )
            else:
                replies.append(retry_part(call, f"Answer now by calling {OUTPUT_TOOL}."))
        if not replies:
            replies.append(retry_part(None, f"Answer by calling {OUTPUT_TOOL}; text is not read."))
            problems += 1
        if problems > retries:
            break
        conv.add(ModelRequest(parts=replies))
    raise NoValidAnswer(
        f"{conv.name}: no valid answer after {len(answers)} requests"
        + (f" ({problems} invalid)" if problems else ""),
        answers,
    )
