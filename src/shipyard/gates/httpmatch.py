"""What an HTTP check's answer is held to: expectations, captures, ``{{name}}`` substitution.

Matching rules (public):

* ``{{name}}`` is replaced by a captured value in the path, header values, the raw body, form
  values, JSON string values (recursively) and the expectations. A string that is exactly
  ``{{name}}`` becomes the captured value itself, keeping its JSON type (``{"id": "{{todo_id}}"}``
  sends a number when a number was captured). An unknown name fails the check.
* ``expect.json`` is a subset match: every key of an expected object must match; lists must
  have the same length and match element by element; scalars are equal (``true`` is not ``1``).
* ``expect.headers``: names are case-insensitive; a string must be *contained* in the response's
  value (``content-type: application/json`` matches ``application/json; charset=utf-8``),
  ``{equals: …}`` must be the whole value. A ``Location`` that is an absolute URL to the app is
  compared (and captured) as its path: ``http://127.0.0.1:8000/login?next=%2F`` is
  ``/login?next=%2F``.
* ``expect.final_url``: the URL of the last response after following redirects contains it,
  or it is a regular expression found in it (the UI's ``expect_url`` rule).
* ``expect.status`` left out: any status below 400 passes.
* ``capture``: a dotted path into the JSON response, list indexes as numbers (``items.0.id``);
  ``header:NAME`` a response header; ``cookie:NAME`` a cookie the response (or a redirect on
  the way) set; ``regex:PATTERN`` the first group of the first match in the body. Nothing there
  (or a JSON ``null``) fails the check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shipyard.spec import HeaderEquals, HttpCheck, capture_source

if TYPE_CHECKING:
    import httpx

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")
MISSING = object()


def evaluate(
    check: HttpCheck,
    responses: Sequence[httpx.Response],
    variables: Mapping[str, Any],
    origin: str,
) -> tuple[list[str], dict[str, Any]]:
    """Every unmet expectation and failed capture of the last response, and the captured values.
    ``responses`` is the whole exchange in order: redirects followed, then the last answer."""
    response = responses[-1]
    body = json_or_missing(response)
    problems = _unmet(check, response, body, variables, origin)
    captured: dict[str, Any] = {}
    for var, source in check.capture.items():
        value, missing = _capture(source, responses, body, origin)
        if missing is not None:
            problems.append(f"capture {var}: {missing}")
        else:
            captured[var] = value
    return problems, captured


def _capture(
    source: str, responses: Sequence[httpx.Response], body: Any, origin: str
) -> tuple[Any, str | None]:
    """(value, None), or (None, why nothing was captured)."""
    kind, arg = capture_source(source)
    response = responses[-1]
    if kind == "header":
        value = header_value(response, arg, origin)
        return value, None if value is not None else f"no {arg} header in the response"
    if kind == "cookie":
        found = [r.cookies.get(arg) for r in responses]
        value = next((v for v in reversed(found) if v is not None), None)
        return value, None if value is not None else f"the response set no cookie {arg!r}"
    if kind == "regex":
        match = re.search(arg, response.text)
        if match is None or match.group(1) is None:
            return None, f"{arg!r} is not found in the body"
        return match.group(1), None
    value = MISSING if body is MISSING else lookup(body, arg)
    if value is MISSING or value is None:
        return None, "the response is not JSON" if body is MISSING else f"no value at {arg}"
    return value, None


def _unmet(
    check: HttpCheck,
    response: httpx.Response,
    body: Any,
    variables: Mapping[str, Any],
    origin: str,
) -> list[str]:
    expect, status = check.expect, response.status_code
    problems: list[str] = []
    if expect.status is not None and status != expect.status:
        problems.append(f"expected status {expect.status}, got {status}")
    elif expect.status is None and status >= 400:
        problems.append(f"expected a status below 400, got {status}")
    if expect.final_url is not None:
        wanted, url = text(substitute(expect.final_url, variables)), str(response.url)
        if not url_matches(url, wanted):
            problems.append(f"final URL: expected it to match {wanted!r}, it is {url}")
    if expect.json_subset is not None:
        wanted = substitute(expect.json_subset, variables)
        if body is MISSING:
            problems.append("expected a JSON body, the response is not JSON")
        elif (diff := subset_diff(wanted, body)) is not None:
            problems.append(diff)
    for name, value in expect.headers.items():
        exact, raw = (True, value.equals) if isinstance(value, HeaderEquals) else (False, value)
        wanted = text(substitute(raw, variables))
        actual = header_value(response, name, origin)
        if actual is None or (actual != wanted if exact else wanted not in actual):
            how = "exactly " if exact else ""
            problems.append(f"header {name}: expected {how}{wanted!r}, got {actual!r}")
    for item in expect.body_contains:
        if (wanted := text(substitute(item, variables))) not in response.text:
            problems.append(f"the body does not contain {wanted!r}")
    return problems


def header_value(response: httpx.Response, name: str, origin: str) -> str | None:
    """The header's value; a ``Location`` to the app itself as its path."""
    value: str | None = response.headers.get(name)
    if value is not None and name.lower() == "location":
        return app_path(value, origin) or value
    return value


def app_path(url: str, origin: str) -> str | None:
    """``/path?query#fragment`` of an absolute URL to ``origin``; None for any other URL."""
    parts = urlsplit(url)
    if not parts.scheme or f"{parts.scheme}://{parts.netloc}".lower() != origin.lower():
        return None
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    if parts.fragment:
        path += f"#{parts.fragment}"
    return path


def url_matches(url: str, value: str) -> bool:
    """``value`` is in ``url``, or is a regular expression found in it."""
    if value in url:
        return True
    try:
        return re.search(value, url) is not None
    except re.error:
        return False


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
        return PLACEHOLDER.sub(lambda m: text(variables[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(v, variables) for v in value]
    return value


def show(value: Any) -> str:
    shown = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return shown if len(shown) <= 120 else shown[:117] + "..."


def text(value: Any) -> str:
    """A value as it goes into a URL, a header or a form: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def json_or_missing(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return MISSING
