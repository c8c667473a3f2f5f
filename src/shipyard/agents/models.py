"""Which model each role uses, building it, checking it before any work, and one request with
Shipyard's own retries.

A model name is ``script:FILE`` (a scripted model, :mod:`shipyard.agents.scripted`), ``NAME:model``
for a server declared under ``[models.providers.NAME]`` (any OpenAI-compatible server by base URL),
or anything pydantic-ai's ``infer_model`` knows (``openai:gpt-4.1``, ``anthropic:...``).

``SHIPYARD_BLOCK_MODEL_REQUESTS=1`` refuses every model that is neither scripted nor served on
127.0.0.1/localhost: the test suite sets it so that no test, nor a ``shipyard`` it starts, can
reach a real model.
"""

from __future__ import annotations

import ipaddress
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shipyard.agents import faults
from shipyard.config import Models, Provider
from shipyard.exceptions import ConfigError, ModelProblem, ProviderUnavailable

if TYPE_CHECKING:
    from pydantic_ai.messages import ModelMessage, ModelResponse
    from pydantic_ai.models import Model, ModelRequestParameters
    from pydantic_ai.settings import ModelSettings

OPENAI_PREFIXES = ("openai", "openai-chat", "openai-responses")
SHAPE_ERRORS = (IndexError, KeyError, TypeError, AttributeError, ValueError)
"""What a client raises reading an answer of the wrong shape (``choices: []``, ``null`` where an
object belongs, the chat format answered to a Responses request)."""
BLOCK_VAR = "SHIPYARD_BLOCK_MODEL_REQUESTS"
PROBE_TIMEOUT = 5.0
MAX_WAIT = 60.0
NO_KEY = "none"
"""The key sent to a declared server that needs none (the OpenAI client insists on one)."""

KEY_VARS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "openai-chat": ("OPENAI_API_KEY",),
    "openai-responses": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "google": ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    "groq": ("GROQ_API_KEY",),
    "mistral": ("MISTRAL_API_KEY",),
    "cohere": ("CO_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",),
    "xai": ("XAI_API_KEY",),
    "cerebras": ("CEREBRAS_API_KEY",),
    "fireworks": ("FIREWORKS_API_KEY",),
    "together": ("TOGETHER_API_KEY",),
    "huggingface": ("HF_TOKEN",),
}
"""The environment variables pydantic-ai's providers read their key from (see its providers/)."""


def model_name_for(role: str, models: Models, override: str | None) -> str:
    """``--model`` first, then the role's own setting, then ``default``."""
    name = override or getattr(models, role, None) or models.default
    if not name:
        raise ModelProblem(
            f'no model for the {role}: set [models] {role} = "provider:model" (or default = ...) '
            "in shipyard.toml, or pass --model provider:model"
        )
    return name


def build_model(name: str, models: Models, *, project: Path, role: str) -> Model:
    """The pydantic-ai model for ``name``; every reason it cannot be built is a ModelProblem."""
    prefix, _, rest = name.partition(":")
    if not rest:
        raise ModelProblem(f'{role}: model "{name}" is not "provider:model" (or script:FILE)')
    if prefix == "script":
        from shipyard.agents.scripted import load_script

        path = Path(rest) if Path(rest).is_absolute() else project / rest
        try:
            return load_script(path, role)
        except ConfigError as exc:
            raise ModelProblem(f"the {role}'s scripted model ({name}): {exc}") from exc
    _refuse_if_blocked(name, models, role)
    if (provider := models.providers.get(prefix)) is None:
        return _inferred(name, prefix, role)
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    key = _key_of(prefix, provider, role, name) or NO_KEY
    return OpenAIChatModel(rest, provider=OpenAIProvider(base_url=provider.base_url, api_key=key))


def _inferred(name: str, prefix: str, role: str) -> Model:
    from pydantic_ai.exceptions import UserError
    from pydantic_ai.models import infer_model
    from pydantic_ai.providers import infer_provider_class

    try:
        infer_provider_class(prefix)
    except ValueError as exc:
        raise ModelProblem(
            f'the {role} uses {name}, but "{prefix}" is no provider pydantic-ai knows nor one '
            f"declared in shipyard.toml: add [models.providers.{prefix}] with base_url = "
            '"http://host:port/v1", or use e.g. openai:, anthropic:, google:'
        ) from exc
    try:
        return infer_model(name)
    except ImportError as exc:
        raise ModelProblem(
            f"the {role} uses {name}, whose client library is not installed: install "
            f'"pydantic-ai-slim[{prefix}]" ({exc})'
        ) from exc
    except UserError as exc:
        named = re.findall(r"`([A-Z][A-Z0-9_]+)`", str(exc)) or list(KEY_VARS.get(prefix, ()))
        what = " or ".join(named) if named else "its API key"
        raise ModelProblem(
            f"the {role} uses {name}, which needs {what}: set it in the environment ({exc})"
        ) from exc


def _key_of(prefix: str, provider: Provider, role: str, name: str) -> str | None:
    var = provider.api_key_env
    if var is None:
        return None
    if not os.environ.get(var):
        raise ModelProblem(
            f"the {role} uses {name}, whose key is read from ${var} "
            f"([models.providers.{prefix}] api_key_env), but {var} is not set"
        )
    return os.environ[var]


def _is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse_if_blocked(name: str, models: Models, role: str) -> None:
    if os.environ.get(BLOCK_VAR) != "1":
        return
    prefix = name.partition(":")[0]
    provider = models.providers.get(prefix)
    if provider is not None and _is_local(provider.base_url):
        return
    if provider is None and prefix in OPENAI_PREFIXES and _is_local(faults.openai_base_url()):
        return  # pydantic-ai's OpenAI provider, sent to $OPENAI_BASE_URL on this machine
    where = f"the server at {provider.base_url}" if provider else "a cloud provider"
    raise ModelProblem(
        f"model requests are blocked ({BLOCK_VAR}=1): the {role} would use {name}, on {where}; "
        "only scripted models and declared servers on 127.0.0.1/localhost are allowed"
    )


def preflight(
    names: dict[str, str],
    models: Models,
    *,
    project: Path,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Model]:
    """Raise ModelProblem (exit 3), before any work, for any role whose model cannot be used:
    it does not build, its key is missing, or its declared server is unreachable or refuses it.
    Returns each role's model; ``warn`` is told what may not work (see responses_warning)."""
    if warn is not None and (warning := faults.responses_warning(names, models)) is not None:
        warn(warning)
    probed: set[str] = set()
    built = {}
    for role, name in names.items():
        built[role] = build_model(name, models, project=project, role=role)
        prefix = name.partition(":")[0]
        provider = models.providers.get(prefix) if prefix != "script" else None
        if provider is not None and provider.base_url not in probed:
            probed.add(provider.base_url)
            _probe(provider, role, name)
    return built


def _probe(provider: Provider, role: str, name: str) -> None:
    """``GET {base_url}/models``: the server answers, and takes the key."""
    import httpx

    url = provider.base_url.rstrip("/")
    var = provider.api_key_env
    headers = {"Authorization": f"Bearer {os.environ[var]}"} if var else {}
    try:
        response = httpx.get(f"{url}/models", headers=headers, timeout=PROBE_TIMEOUT)
    except (httpx.TransportError, httpx.InvalidURL) as exc:
        raise ModelProblem(
            f"cannot reach the model server at {url} (the {role} uses {name}): is it running? "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    if response.status_code in (401, 403):
        if var:
            raise ModelProblem(
                f"the server at {url} refused the key in ${var} (HTTP {response.status_code})"
            )
        raise ModelProblem(
            f"the server at {url} wants a key (HTTP {response.status_code}): set api_key_env "
            f"under [models.providers.{name.partition(':')[0]}] and put the key in that variable"
        )


def model_settings(models: Models) -> ModelSettings:
    """``request_timeout`` as the client's timeout and as a deadline for the whole exchange (an
    answer trickled a byte at a time is cut there too); the SDK's own retries off, since
    :func:`request` retries."""
    from pydantic_ai.settings import ModelSettings

    seconds = models.request_timeout
    return ModelSettings(timeout=seconds, request_timeout=seconds, max_retries=0)


# -- one request, retried -----------------------------------------------------------------------

TRANSIENT, FATAL = "transient", "fatal"
ERRORS: tuple[tuple[str, str, str], ...] = (
    ("ModelQuotaExceededError", FATAL, "the account's quota or credit is used up: top it up"),
    ("ModelAuthenticationError", FATAL, "the provider refused the key: check {key}"),
    ("ModelNotFoundError", FATAL, "no such model: check the model name (and the base URL)"),
    ("ModelContextWindowExceededError", FATAL, "the conversation outgrew the context window"),
    ("ModelRequestRejectedError", FATAL, "the provider rejected the request"),
    ("ModelRateLimitError", TRANSIENT, "rate limited"),
    ("ModelUnavailableError", TRANSIENT, "the provider is unavailable or overloaded"),
    ("ModelServerError", TRANSIENT, "server error"),
    ("ModelTimeoutError", TRANSIENT, "the request timed out"),
    ("ModelConnectionError", TRANSIENT, "the provider could not be reached"),
    ("ModelRequestTimeout", TRANSIENT, "the request timed out"),
)
"""(pydantic_ai.exceptions class, transient or fatal, what it means): the first match decides."""
BY_STATUS = {
    401: "ModelAuthenticationError",
    403: "ModelAuthenticationError",
    402: "ModelQuotaExceededError",
    404: "ModelNotFoundError",
    429: "ModelRateLimitError",
}
"""The category of an HTTP error pydantic-ai left uncategorized (a scripted model's)."""
RETRY_STATUSES = (408, 409)


def classify(exc: BaseException) -> tuple[str, str]:
    """(``transient`` or ``fatal``, what happened) for a provider error."""
    from pydantic_ai import exceptions

    status = getattr(exc, "status_code", None)
    if status in RETRY_STATUSES:
        return TRANSIENT, f"the provider answered HTTP {status}"
    rows = [row for row in ERRORS if isinstance(exc, getattr(exceptions, row[0]))]
    if not rows and isinstance(status, int):
        other = "ModelServerError" if status >= 500 else "ModelRequestRejectedError"
        rows = [row for row in ERRORS if row[0] == BY_STATUS.get(status, other)]
    kind, hint = (rows[0][1], rows[0][2]) if rows else (TRANSIENT, "the provider reported an error")
    return kind, f"{hint} (HTTP {status})" if status else hint


def _key_hint(model: Model, models: Models) -> str:
    base = (model.base_url or "").rstrip("/")
    for name, provider in models.providers.items():
        if provider.base_url.rstrip("/") == base:
            var = provider.api_key_env
            return f"${var}" if var else f"api_key_env under [models.providers.{name}]"
    names = KEY_VARS.get(model.system)
    return " or ".join(f"${v}" for v in names) if names else "the provider's API key"


def request(
    model: Model,
    messages: Sequence[ModelMessage],
    params: ModelRequestParameters,
    *,
    models: Models,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> ModelResponse:
    """One model request. Transient provider errors (a malformed answer among them) are retried
    ``models.retries`` times, then raise ProviderUnavailable; fatal ones raise ModelProblem at
    once. Each message names provider, model and endpoint."""
    from pydantic_ai.direct import model_request_sync
    from pydantic_ai.exceptions import ModelAPIError, UnexpectedModelBehavior

    from shipyard.agents.scripted import ScriptExhausted

    settings = model_settings(models)
    # a scripted model's own TypeError is a bug to see, not a malformed answer
    shape_errors = () if _scripted(model) else SHAPE_ERRORS
    for attempt in range(models.retries + 1):
        try:
            return model_request_sync(
                model, messages, model_settings=settings, model_request_parameters=params
            )
        except ScriptExhausted as exc:  # a scripted session that ran out of lines
            raise ModelProblem(str(exc)) from exc
        except (ModelAPIError, UnexpectedModelBehavior, *shape_errors) as exc:
            kind, what = _failure(exc, model, models)
            failure: Exception = exc
        where = f"{faults.describe(model, models)}: {what}"
        hint = faults.chat_hint(model)
        if kind == FATAL:
            raise ModelProblem(f"{where}: {faults.short(failure)}{hint}") from failure
        if attempt == models.retries:
            raise ProviderUnavailable(
                f"{where}, {attempt + 1} times in a row ({faults.short(failure)}){hint}; "
                "the run is paused — `shipyard resume RUN` continues it"
            ) from failure
        retry_after = getattr(failure, "retry_after", None)
        wait = retry_after if retry_after is not None else models.backoff * 2**attempt
        wait = min(max(wait, 0.0), MAX_WAIT)
        if on_retry is not None:
            on_retry(attempt + 1, failure, wait)
        sleep(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _failure(exc: Exception, model: Model, models: Models) -> tuple[str, str]:
    """(transient or fatal, what happened)."""
    from pydantic_ai.exceptions import ModelAPIError, ModelRequestTimeout, UnexpectedModelBehavior

    if isinstance(exc, ModelRequestTimeout):
        return TRANSIENT, f"no whole answer within {exc.timeout:g}s: the request timed out"
    if isinstance(exc, ModelAPIError):
        kind, what = classify(exc)
        return kind, what.replace("{key}", _key_hint(model, models))
    assert isinstance(exc, (UnexpectedModelBehavior, *SHAPE_ERRORS)), exc
    return TRANSIENT, "a malformed answer"


def continue_after(model: Model, given: Callable[[], Sequence[str]]) -> None:
    """After a resume: a scripted model picks up after the replies it had given (``given``:
    the role's messages as the ledger stores them, read only for a scripted model)."""
    from pydantic_ai.messages import ModelMessagesTypeAdapter

    from shipyard.agents.scripted import ScriptedModel

    if isinstance(model, ScriptedModel):
        rows = given()
        model.continue_after([m for r in rows for m in ModelMessagesTypeAdapter.validate_json(r)])


def _scripted(model: Model) -> bool:
    from pydantic_ai.models.function import FunctionModel

    return isinstance(model, FunctionModel)
