"""HTTP checks: one request each against the launched app, its expectations, its captures.

Matching rules (public):

* ``{{name}}`` is replaced by a captured value in the path, header values, the raw body, JSON
  string values (recursively) and the expectations. A string that is exactly ``{{name}}``
  becomes the captured value itself, keeping its JSON type (``{"id": "{{todo_id}}"}`` sends a
  number when a number was captured). An unknown name fails the check.
* ``expect.json`` is a subset match: every key of an expected object must match; lists must
  have the same length and match element by element; scalars are equal (``true`` is not ``1``).
* ``expect.headers``: names are case-insensitive; the response's value must *contain* the
  expected one (``content-type: application/json`` matches ``application/json; charset=utf-8``).
* ``expect.status`` left out: any status below 400 passes.
* ``capture``: a dotted path into the JSON response, list indexes as numbers (``items.0.id``);
  nothing there (or ``null``) fails the check.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.deadline import DeadlineExceeded, call_within
from shipyard.gates import Context
from shipyard.results import CheckResult, result_of
from shipyard.spec import HttpCheck, HttpRequest

if TYPE_CHECKING:
    import httpx

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")
MAX_BODY = 65_536
MISSING = object()


@dataclass(frozen=True, kw_only=True)
class HttpOutcome:
    result: CheckResult
    captured: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class _Exchange:
    label: str
    """``GET /api/todos/1``: the method and the path as sent."""
    record: dict[str, Any]
    response: httpx.Response | None = None
    error: str | None = None


def run_http_check(
    check: HttpCheck, client: httpx.Client, variables: Mapping[str, Any], ctx: Context
) -> HttpOutcome:
    started = time.monotonic()
    evidence = ctx.run.file(f"http/{safe_name(check.id)}.json")
    exchange = _exchange(check, client, variables)
    response = exchange.response
    if response is None:
        message = f"{exchange.label}: {exchange.error}"
        ctx.run.write_json(ctx.run.rel(evidence), {**exchange.record, "error": message})
        return HttpOutcome(result=_result(check, "failed", message, ctx, evidence, started))
    problems, captured = evaluate(check, response, variables)
    ctx.run.write_json(ctx.run.rel(evidence), {**exchange.record, "captured": captured})
    head = f"{exchange.label} -> {response.status_code}"
    if problems:
        message = "\n".join([f"{head}: {problems[0]}", *problems[1:], _excerpt(response.text)])
        return HttpOutcome(result=_result(check, "failed", message, ctx, evidence, started))
    result = _result(check, "passed", head, ctx, evidence, started)
    return HttpOutcome(result=result, captured=captured)


def _exchange(check: HttpCheck, client: httpx.Client, variables: Mapping[str, Any]) -> _Exchange:
    """Send the request with ``{{name}}`` filled in; a transport failure is an ``error``."""
    import httpx

    req = check.request
    used = placeholders([req.model_dump(by_alias=True), check.expect.model_dump(by_alias=True)])
    unknown = sorted(used - set(variables))
    if unknown:
        known = ", ".join(sorted(variables)) or "none yet"
        error = f"unknown variable {{{{{unknown[0]}}}}} (captured so far: {known})"
        return _Exchange(label=f"{req.method} {req.path}", record={}, error=error)
    path = _text(substitute(req.path, variables))
    try:
        request = _build(client, req, path, variables)
    except UnicodeEncodeError as exc:  # a captured value that cannot go into a header
        return _Exchange(label=f"{req.method} {path}", record={}, error=f"bad header: {exc}")
    label, record = f"{req.method} {path}", {"request": _request_json(request)}
    try:
        response = call_within(
            req.timeout + 0.5, lambda: _send_bounded(client, request, req.timeout)
        )
    except (httpx.TimeoutException, DeadlineExceeded) as exc:
        error = f"no answer within {req.timeout:g}s ({type(exc).__name__})"
        return _Exchange(label=label, record=record, error=error)
    except httpx.HTTPError as exc:
        error = f"could not connect to the app: {exc or type(exc).__name__}"
        return _Exchange(label=label, record=record, error=error)
    record["response"] = _response_json(response)
    return _Exchange(label=label, record=record, response=response)


def _build(
    client: httpx.Client, req: HttpRequest, path: str, variables: Mapping[str, Any]
) -> httpx.Request:
    return client.build_request(
        req.method,
        path,
        headers={k: _text(substitute(v, variables)) for k, v in req.headers.items()},
        json=substitute(req.json_body, variables) if req.json_body is not None else None,
        content=_text(substitute(req.body, variables)) if req.body is not None else None,
        timeout=req.timeout,
    )


MAX_BODY = 10 * 2**20
"""Bytes of a response body read at most; the rest is dropped."""


def _send_bounded(client: httpx.Client, request: httpx.Request, timeout: float) -> httpx.Response:
    """The whole exchange within ``timeout``: httpx's own timeout bounds each read, so a body
    that trickles in a byte at a time would otherwise never end."""
    import httpx

    started = time.monotonic()
    deadline = started + timeout
    response = client.send(request, stream=True)
    try:
        chunks, size = [], 0
        for chunk in response.iter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the response did not finish in time", request=request)
            if size >= MAX_BODY:
                break
    finally:
        response.close()
    whole = httpx.Response(
        response.status_code,
        headers=response.headers,
        content=b"".join(chunks),
        request=request,
        extensions=response.extensions,
    )
    whole.elapsed = timedelta(seconds=time.monotonic() - started)
    return whole


def evaluate(
    check: HttpCheck, response: httpx.Response, variables: Mapping[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    """Every unmet expectation and failed capture, and the captured values."""
    body = _json_or_missing(response)
    problems = _unmet(check, response, body, variables)
    captured: dict[str, Any] = {}
    for var, path in check.capture.items():
        value = MISSING if body is MISSING else lookup(body, path)
        if value is MISSING or value is None:
            what = "the response is not JSON" if body is MISSING else f"no value at {path}"
            problems.append(f"capture {var}: {what}")
        else:
            captured[var] = value
    return problems, captured


def _unmet(
    check: HttpCheck, response: httpx.Response, body: Any, variables: Mapping[str, Any]
) -> list[str]:
    expect, status = check.expect, response.status_code
    problems: list[str] = []
    if expect.status is not None and status != expect.status:
        problems.append(f"expected status {expect.status}, got {status}")
    elif expect.status is None and status >= 400:
        problems.append(f"expected a status below 400, got {status}")
    if expect.json_subset is not None:
        wanted = substitute(expect.json_subset, variables)
        if body is MISSING:
            problems.append("expected a JSON body, the response is not JSON")
        elif (diff := subset_diff(wanted, body)) is not None:
            problems.append(diff)
    for name, value in expect.headers.items():
        wanted, actual = _text(substitute(value, variables)), response.headers.get(name)
        if actual is None or wanted not in actual:
            problems.append(f"header {name}: expected {wanted!r}, got {actual!r}")
    for text in expect.body_contains:
        if (wanted := _text(substitute(text, variables))) not in response.text:
            problems.append(f"the body does not contain {wanted!r}")
    return problems


def subset_diff(expected: Any, actual: Any, path: str = "json") -> str | None:
    """None when ``actual`` has everything ``expected`` has; else where they first differ."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {show(actual)}"
        for key, value in expected.items():
            if key not in actual:
                return f"{path}.{key}: missing (expected {show(value)})"
            if (diff := subset_diff(value, actual[key], f"{path}.{key}")) is not None:
                return diff
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{path}: expected a list, got {show(actual)}"
        if len(expected) != len(actual):
            return f"{path}: expected {len(expected)} items, got {len(actual)}"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            if (diff := subset_diff(want, got, f"{path}[{index}]")) is not None:
                return diff
        return None
    same_kind = isinstance(expected, bool) == isinstance(actual, bool)
    if same_kind and expected == actual:
        return None
    return f"{path}: expected {show(expected)}, got {show(actual)}"


def lookup(data: Any, path: str) -> Any:
    """``items.0.id`` in JSON data, or MISSING."""
    current = data
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and re.fullmatch(r"-?\d+", part):
            index = int(part)
            if not -len(current) <= index < len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(placeholders(v) for v in value.values()), set())
    if isinstance(value, list | tuple):
        return set().union(*(placeholders(v) for v in value), set())
    return set()


def substitute(value: Any, variables: Mapping[str, Any]) -> Any:
    """Replace ``{{name}}`` in strings, recursively; names must all be known."""
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            return variables[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: _text(variables[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(v, variables) for v in value]
    return value


def safe_name(check_id: str) -> str:
    """A check id as a file name: anything but letters, digits, ``_ . -`` becomes ``_``."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", check_id)
    return "_" + name if name.startswith(".") else name


def show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _json_or_missing(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return MISSING


def _excerpt(text: str, limit: int = 300) -> str:
    shown = text if len(text) <= limit else text[:limit] + "..."
    return f"response body: {shown}" if shown else "response body: (empty)"


def _truncate(data: bytes) -> str:
    text = data[:MAX_BODY].decode("utf-8", errors="replace")
    return text + f"\n... ({len(data) - MAX_BODY} more bytes)" if len(data) > MAX_BODY else text


def _request_json(request: httpx.Request) -> dict[str, Any]:
    return {
        "method": request.method,
        "url": str(request.url),
        "headers": dict(request.headers),
        "body": _truncate(request.content),
    }


def _response_json(response: httpx.Response) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "headers": dict(response.headers),
        "body": _truncate(response.content),
        "elapsed": round(response.elapsed.total_seconds(), 3),
    }


def _result(
    check: HttpCheck, status: str, message: str, ctx: Context, evidence: Path, started: float
) -> CheckResult:
    duration = time.monotonic() - started
    return result_of(check, "http", status, message, ctx.run.rel(evidence), duration)
