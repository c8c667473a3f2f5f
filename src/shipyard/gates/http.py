"""HTTP checks: one request each against the launched app, its expectations and captures
(``httpmatch`` has the matching rules), its evidence.

* ``request.form`` is sent urlencoded, or multipart with ``request.files`` (``{field: path}``,
  files of the project; a path that leads out of it is bad input).
* ``request.follow_redirects: true`` follows 3xx answers with a ``Location`` (at most
  ``MAX_REDIRECTS``), within the app only: a redirect to another origin is not followed and
  fails the check. Every hop is kept in the evidence.
* The cookies sent and stored are those of the check's session jar (``sessions.py``).
* A path that is a captured absolute URL to the app is sent as its path.
"""

from __future__ import annotations

import mimetypes
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shipyard.deadline import DeadlineExceeded, call_within
from shipyard.gates import Context
from shipyard.gates.httpmatch import app_path, evaluate, placeholders, substitute, text
from shipyard.gates.httptext import describe_body
from shipyard.results import CheckResult, Status, result_of
from shipyard.spec import HttpCheck, HttpRequest
from shipyard.spec_steps import resolve_in_project

if TYPE_CHECKING:
    import httpx

MAX_BODY = 10 * 2**20
"""Bytes of a response body read at most; the rest is dropped."""
MAX_RECORDED = 65_536
"""Bytes of each body kept in the evidence."""
MAX_UPLOAD = 50 * 2**20
MAX_REDIRECTS = 10


@dataclass(frozen=True, kw_only=True)
class HttpOutcome:
    result: CheckResult
    captured: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class _Exchange:
    label: str
    """``GET /api/todos/1``: the method and the path as sent."""
    record: dict[str, Any]
    responses: tuple[httpx.Response, ...] = ()
    """Every answer in order: the redirects followed, then the last."""
    error: str | None = None


class _BadRequest(Exception):
    """What the check asks for cannot be sent (an upload that is missing or too large)."""


def run_http_check(
    check: HttpCheck, client: httpx.Client, variables: Mapping[str, Any], ctx: Context
) -> HttpOutcome:
    started = time.monotonic()
    evidence = ctx.run.file(f"http/{safe_name(check.id)}.json")
    origin = origin_of(str(client.base_url))
    exchange = _exchange(check, client, variables, origin, ctx.project)
    if not exchange.responses:
        message = f"{exchange.label}: {exchange.error}"
        ctx.run.write_json(ctx.run.rel(evidence), {**exchange.record, "error": message})
        return HttpOutcome(result=_result(check, "failed", message, ctx, evidence, started))
    problems, captured = evaluate(check, exchange.responses, variables, origin)
    if exchange.error:
        problems.insert(0, exchange.error)
    ctx.run.write_json(ctx.run.rel(evidence), {**exchange.record, "captured": captured})
    head = _head(exchange.label, exchange.responses, origin)
    if problems:
        answer = _answer(exchange.responses[-1], origin)
        message = "\n".join([f"{head}: {problems[0]}", *problems[1:], *answer])
        return HttpOutcome(result=_result(check, "failed", message, ctx, evidence, started))
    result = _result(check, "passed", head, ctx, evidence, started)
    return HttpOutcome(result=result, captured=captured)


def _exchange(
    check: HttpCheck,
    client: httpx.Client,
    variables: Mapping[str, Any],
    origin: str,
    project: Path,
) -> _Exchange:
    """Send the request with ``{{name}}`` filled in; a transport failure is an ``error``."""
    import httpx

    req = check.request
    used = placeholders([req.model_dump(by_alias=True), check.expect.model_dump(by_alias=True)])
    unknown = sorted(used - set(variables))
    if unknown:
        known = ", ".join(sorted(variables)) or "none yet"
        error = f"unknown variable {{{{{unknown[0]}}}}} (captured so far: {known})"
        return _Exchange(label=f"{req.method} {req.path}", record={}, error=error)
    path = text(substitute(req.path, variables))
    if not path.startswith("/"):
        if (relative := app_path(path, origin)) is None:
            error = f"the path {path!r} is neither a path nor a URL to the app"
            return _Exchange(label=f"{req.method} {req.path}", record={}, error=error)
        path = relative
    try:
        request = _build(client, req, path, variables, project)
    except UnicodeEncodeError as exc:  # a captured value that cannot go into a header
        return _Exchange(label=f"{req.method} {path}", record={}, error=f"bad header: {exc}")
    except _BadRequest as exc:
        return _Exchange(label=f"{req.method} {path}", record={}, error=str(exc))
    label = f"{req.method} {path}"
    record: dict[str, Any] = {"request": _request_json(request)}
    try:
        responses, stopped = call_within(
            req.timeout + 0.5, lambda: _send_all(client, request, req, origin)
        )
    except (httpx.TimeoutException, DeadlineExceeded) as exc:
        error = f"no answer within {req.timeout:g}s ({type(exc).__name__})"
        return _Exchange(label=label, record=record, error=error)
    except httpx.HTTPError as exc:
        error = f"could not connect to the app: {exc or type(exc).__name__}"
        return _Exchange(label=label, record=record, error=error)
    record["response"] = _response_json(responses[-1])
    if len(responses) > 1:
        record["redirects"] = [_hop_json(r) for r in responses[:-1]]
    return _Exchange(label=label, record=record, responses=tuple(responses), error=stopped)


def _build(
    client: httpx.Client, req: HttpRequest, path: str, variables: Mapping[str, Any], project: Path
) -> httpx.Request:
    form = None
    if req.form is not None:
        form = {name: _form_value(substitute(v, variables)) for name, v in req.form.items()}
    request = client.build_request(
        req.method,
        path,
        headers={k: text(substitute(v, variables)) for k, v in req.headers.items()},
        json=substitute(req.json_body, variables) if req.json_body is not None else None,
        content=text(substitute(req.body, variables)) if req.body is not None else None,
        data=form,
        files=_files(req.files, project) if req.files else None,
        timeout=req.timeout,
    )
    request.read()  # a multipart body is built now, so the evidence can show it
    return request


def _form_value(value: Any) -> str | list[str]:
    return [text(v) for v in value] if isinstance(value, list) else text(value)


def _files(files: Mapping[str, str], project: Path) -> dict[str, tuple[str, bytes, str]]:
    out = {}
    for name, relative in files.items():
        try:
            path = resolve_in_project(project, relative)
            with open(path, "rb") as fh:
                data = fh.read(MAX_UPLOAD + 1)
        except ValueError as exc:
            raise _BadRequest(f"request.files.{name}: {exc}") from exc
        except OSError as exc:
            raise _BadRequest(f"request.files.{name}: cannot read {relative}: {exc}") from exc
        if len(data) > MAX_UPLOAD:
            raise _BadRequest(f"request.files.{name}: {relative} is over {MAX_UPLOAD} bytes")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        out[name] = (path.name, data, kind)
    return out


def _send_all(
    client: httpx.Client, request: httpx.Request, req: HttpRequest, origin: str
) -> tuple[list[httpx.Response], str | None]:
    """The answer, and with ``follow_redirects`` every answer after it; and why following
    stopped early, if it did."""
    deadline = time.monotonic() + req.timeout
    responses = [_send_bounded(client, request, deadline)]
    while req.follow_redirects and (after := responses[-1].next_request) is not None:
        if origin_of(str(after.url)) != origin:
            return responses, f"the redirect to {after.url} leaves the app: not followed"
        if len(responses) > MAX_REDIRECTS:
            return responses, f"more than {MAX_REDIRECTS} redirects: stopped following"
        after.read()  # a 307/308 resends the body; read, so the evidence can show it
        responses.append(_send_bounded(client, after, deadline))
    return responses, None


def _send_bounded(client: httpx.Client, request: httpx.Request, deadline: float) -> httpx.Response:
    """One exchange, all of it by ``deadline``: httpx's own timeout bounds each read, so a
    body that trickles in a byte at a time would otherwise never end."""
    import httpx

    started = time.monotonic()
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
    whole.next_request = response.next_request
    whole.elapsed = timedelta(seconds=time.monotonic() - started)
    return whole


def _head(label: str, responses: tuple[httpx.Response, ...], origin: str) -> str:
    """``POST /auth/login -> 302 -> GET / -> 200``: the request and every hop's status."""
    parts = [label, str(responses[0].status_code)]
    for response in responses[1:]:
        where = app_path(str(response.request.url), origin) or str(response.request.url)
        parts += [f"{response.request.method} {where}", str(response.status_code)]
    return " -> ".join(parts)


def _answer(response: httpx.Response, origin: str) -> list[str]:
    """The status line, the Location, the first lines of the body: what a failure shows."""
    reason = response.reason_phrase
    lines = [f"{response.http_version} {response.status_code} {reason}".rstrip()]
    if (location := response.headers.get("location")) is not None:
        lines.append(f"location: {app_path(location, origin) or location}")
    return lines + describe_body(response.text, response.headers.get("content-type", ""))


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def safe_name(check_id: str) -> str:
    """A check id as a file name: anything but letters, digits, ``_ . -`` becomes ``_``."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", check_id)
    return "_" + name if name.startswith(".") else name


def _truncate(data: bytes) -> str:
    shown = data[:MAX_RECORDED].decode("utf-8", errors="replace")
    more = len(data) - MAX_RECORDED
    return shown + f"\n... ({more} more bytes)" if more > 0 else shown


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


def _hop_json(response: httpx.Response) -> dict[str, Any]:
    """A redirect on the way: what was asked (with the cookies sent), what it answered."""
    return {"request": _request_json(response.request), "response": _response_json(response)}


def _result(
    check: HttpCheck, status: Status, message: str, ctx: Context, evidence: Path, started: float
) -> CheckResult:
    duration = time.monotonic() - started
    return result_of(check, "http", status, message, ctx.run.rel(evidence), duration)
