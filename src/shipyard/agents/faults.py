"""What to say about a provider that misbehaves: where it is, and the fix when an ``openai:``
model was sent to a server that speaks only chat completions."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shipyard.config import Models

if TYPE_CHECKING:
    from pydantic_ai.models import Model

OPENAI_HOST = "api.openai.com"
SHOWN = 400
"""Characters of an error's text shown in a message (an answer can be of any size)."""


def openai_base_url() -> str:
    return os.environ.get("OPENAI_BASE_URL", "")


def elsewhere_than_openai(url: str) -> bool:
    return bool(url) and urlsplit(url).hostname != OPENAI_HOST


def responses_warning(names: dict[str, str], models: Models) -> str | None:
    """What to say before the first request when an ``openai:`` model (pydantic-ai sends those
    to the Responses API) goes to a server other than OpenAI's: most local servers (Ollama,
    llama.cpp, LM Studio) speak only chat completions."""
    url = openai_base_url()
    named = sorted({n for n in names.values() if n.partition(":")[0] == "openai"})
    if not named or "openai" in models.providers or not elsewhere_than_openai(url):
        return None
    chat = ", ".join(f"openai-chat:{n.partition(':')[2]}" for n in named)
    return (
        f"{', '.join(named)} is sent to the Responses API ({url.rstrip('/')}/responses), "
        f"and OPENAI_BASE_URL is not OpenAI's: if that server speaks only chat completions "
        f"(Ollama, llama.cpp, LM Studio do), use {chat}, or declare it under "
        "[models.providers.NAME] with its base_url"
    )


def describe(model: Model, models: Models) -> str:
    """``provider local, model 'm', at http://127.0.0.1:8000/v1``: for every provider error."""
    base = (model.base_url or "").rstrip("/")
    declared = [n for n, p in models.providers.items() if p.base_url.rstrip("/") == base]
    provider = declared[0] if declared else model.system
    where = f", at {base}" if base else ""
    return f"provider {provider}, model {model.model_name!r}{where}"


def chat_hint(model: Model) -> str:
    """The fix, when an ``openai:`` model was sent to the Responses API of another server."""
    base = model.base_url or ""
    responses = type(model).__name__ == "OpenAIResponsesModel"  # no import: openai is optional
    if not responses or not elsewhere_than_openai(base):
        return ""
    return (
        f"; {base.rstrip('/')} was sent a Responses API request (/responses): if it speaks only "
        f"chat completions, use openai-chat:{model.model_name}, or declare it under "
        "[models.providers.NAME] with its base_url"
    )


def short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}… ({len(text):,} characters)"
