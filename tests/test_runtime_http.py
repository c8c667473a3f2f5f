"""HTTP checks against the fixture app: expectations, captures, evidence, and swallowed errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from fixtures.runtime.support import app_config, by_id, make_context, run_gate
from shipyard.gates.httpmatch import lookup, subset_diff, substitute
from shipyard.gates.logscan import describe, find_problems


def run_http(tmp_path: Path, checks_yaml: str) -> dict:
    checks = by_id(run_gate(make_context(tmp_path, checks_yaml, app_config())))
    assert checks["app-start"].status == "passed", checks["app-start"].message
    return checks


def test_create_capture_and_fetch_pass_with_evidence(tmp_path: Path) -> None:
    checks = run_http(
        tmp_path,
        """
    http:
      - id: create
        request: {method: POST, path: /api/todos, json: {title: milk}}
        expect:
          status: 201
          json: {title: milk, completed: false}
          headers: {Content-Type: application/json}
        capture: {todo_id: id}
      - id: fetch
        request: {method: GET, path: "/api/todos/{{todo_id}}"}
        expect: {status: 200, body_contains: [milk], json: {id: "{{todo_id}}"}}
      - id: list
        request: {path: /api/todos}
        expect: {json: [{title: milk}]}
    """,
    )
    assert checks["create"].status == "passed", checks["create"].message
    assert checks["create"].message == "POST /api/todos -> 201"
    assert checks["fetch"].status == "passed", checks["fetch"].message
    assert checks["fetch"].message == "GET /api/todos/1 -> 200"
    assert checks["list"].status == "passed", checks["list"].message
    exchange = json.loads((tmp_path / ".shipyard/runs/r1/http/create.json").read_text())
    assert checks["create"].evidence == "http/create.json"
    assert exchange["request"]["method"] == "POST"
    assert json.loads(exchange["request"]["body"]) == {"title": "milk"}
    assert exchange["response"]["status"] == 201
    assert exchange["captured"] == {"todo_id": 1}


def test_wrong_status_missing_field_and_empty_capture_are_named(tmp_path: Path) -> None:
    checks = run_http(
        tmp_path,
        """
    http:
      - id: status
        request: {method: POST, path: /api/todos, json: {title: milk}}
        expect: {status: 200}
      - id: field
        request: {path: /api/todos/1}
        expect: {json: {title: milk, priority: high}}
      - id: capture
        request: {path: /api/todos/1}
        capture: {todo_id: uuid}
      - id: list
        request: {path: /api/todos}
        expect: {json: [{title: bread}]}
      - id: header
        request: {path: /api/todos}
        expect: {headers: {x-total: "1"}}
      - id: unknown
        request: {path: "/api/todos/{{nope}}"}
    """,
    )
    assert all(c.status == "failed" for k, c in checks.items() if k != "app-start")
    status = checks["status"].message.splitlines()
    assert status[0] == "POST /api/todos -> 201: expected status 200, got 201"
    assert status[1] == "HTTP/1.0 201 Created"
    assert status[2].startswith('response body: {"id": 1, "title": "milk"')
    assert checks["field"].message.startswith(
        "GET /api/todos/1 -> 200: json.priority: missing (expected 'high')"
    )
    assert checks["capture"].message.startswith(
        "GET /api/todos/1 -> 200: capture todo_id: no value at uuid"
    )
    assert checks["list"].message.startswith(
        "GET /api/todos -> 200: json[0].title: expected 'bread', got 'milk'"
    )
    assert checks["header"].message.startswith(
        "GET /api/todos -> 200: header x-total: expected '1', got None"
    )
    assert checks["unknown"].message == (
        "GET /api/todos/{{nope}}: unknown variable {{nope}} (captured so far: none yet)"
    )


def test_a_swallowed_exception_fails_the_check_that_caused_it(tmp_path: Path) -> None:
    checks = run_http(
        tmp_path,
        """
    http:
      - id: before
        request: {path: /healthz}
      - id: swallow
        request: {path: /api/swallow}
        expect: {status: 200, json: {ok: true}}
      - id: after
        request: {path: /healthz}
    """,
    )
    assert checks["before"].status == "passed", checks["before"].message
    assert checks["after"].status == "passed", checks["after"].message
    swallow = checks["swallow"]
    assert swallow.status == "failed"
    lines = swallow.message.splitlines()
    assert lines[0] == "the app logged a traceback while 'swallow' ran:"
    assert lines[1] == "  | Traceback (most recent call last):"
    assert any("JSONDecodeError: Expecting property name" in line for line in lines)


def test_a_logged_5xx_fails_unless_the_check_expected_it(tmp_path: Path) -> None:
    checks = run_http(
        tmp_path,
        """
    http:
      - id: expected
        request: {path: /api/fail}
        expect: {status: 500}
      - id: unexpected
        request: {path: /api/fail}
    """,
    )
    assert checks["expected"].status == "passed", checks["expected"].message
    message = checks["unexpected"].message
    assert message.startswith("GET /api/fail -> 500: expected a status below 400, got 500")
    assert "the app logged an HTTP 5xx response while 'unexpected' ran:" in message
    assert '"GET /api/fail HTTP/1.1" 500' in message


def test_an_app_that_does_not_answer_fails_the_check_without_crashing(tmp_path: Path) -> None:
    import httpx

    from shipyard.gates.http import run_http_check

    ctx = make_context(
        tmp_path,
        """
    http:
      - id: gone
        request: {path: /healthz, timeout: 1}
    """,
    )
    with httpx.Client(base_url="http://127.0.0.1:9") as client:
        outcome = run_http_check(ctx.spec.checks.http[0], client, {}, ctx)
    assert outcome.result.status == "failed"
    assert outcome.result.message.startswith("GET /healthz: could not connect to the app: ")


@pytest.mark.parametrize(
    ("expected", "actual", "diff"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, None),
        (
            {"a": {"b": [1, {"c": "x"}]}},
            {"a": {"b": [1, {"c": "y"}]}},
            "json.a.b[1].c: expected 'x', got 'y'",
        ),
        ([1, 2], [1, 2, 3], "json: expected 2 items, got 3"),
        ({"done": True}, {"done": 1}, "json.done: expected true, got 1"),
        ({"n": 1}, {"n": 1.0}, None),
        ({"a": 1}, [1], "json: expected an object, got [1]"),
    ],
)
def test_json_subset_rules(expected: object, actual: object, diff: str | None) -> None:
    assert subset_diff(expected, actual) == diff


def test_lookup_and_substitute_keep_types() -> None:
    data = {"items": [{"id": 7}, {"id": None}]}
    assert lookup(data, "items.0.id") == 7
    assert lookup(data, "items.5.id") is not None  # MISSING, not a value
    assert substitute({"id": "{{x}}", "path": "/a/{{x}}", "l": ["{{x}}"]}, {"x": 7}) == {
        "id": 7, "path": "/a/7", "l": [7],
    }  # fmt: skip


def test_log_patterns_find_tracebacks_uncaught_errors_and_5xx() -> None:
    lines = [
        "listening on 8000",
        "Traceback (most recent call last):",
        '  File "app.py", line 3, in handler',
        "    1 / 0",
        "ZeroDivisionError: division by zero",
        '127.0.0.1 - - [24/Nov/2026 10:00:00] "GET /x HTTP/1.1" 500 -',
        '127.0.0.1 - - [24/Nov/2026 10:00:00] "GET /y HTTP/1.1" 200 512',
        "Uncaught TypeError: x is not a function",
        "    at handler (/app/server.js:12:5)",
    ]
    found = find_problems(lines)
    assert [f.kind for f in found] == [
        "a traceback", "an HTTP 5xx response", "an uncaught exception", "a stack trace",
    ]  # fmt: skip
    assert found[0].lines[-1] == "ZeroDivisionError: division by zero"
    assert [f.kind for f in find_problems(lines[5:7], expected_statuses={500})] == []
    assert describe(found[:1], "create").splitlines()[0] == (
        "the app logged a traceback while 'create' ran:"
    )


def test_coloured_access_log_lines_are_read_without_their_colour_codes(tmp_path: Path) -> None:
    from shipyard.gates.logscan import LogScanner

    log = tmp_path / "stderr.log"
    log.write_text(
        "127.0.0.1 - - [24/Nov/2026 10:00:00] "
        '"\x1b[35m\x1b[1mGET /api/todos HTTP/1.1\x1b[0m" 500 -\n'
    )
    found = LogScanner([log]).scan()
    assert [f.kind for f in found] == ["an HTTP 5xx response"]
    assert "\x1b" not in found[0].lines[0]


def test_headers_that_trickle_in_fail_at_the_request_timeout(tmp_path: Path) -> None:
    from fixtures.runtime.support import app_config, by_id, make_context, run_gate

    checks_yaml = """
    http:
      - id: trickle
        request: {path: /api/trickle, timeout: 1}
    """
    started = time.monotonic()
    check = by_id(run_gate(make_context(tmp_path, checks_yaml, app_config())))["trickle"]
    assert check.status == "failed"
    assert "no answer within 1s" in check.message
    assert time.monotonic() - started < 1 + 5  # launch, the 1 s timeout, the app's stop
