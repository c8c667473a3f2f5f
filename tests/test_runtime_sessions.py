"""Cookie jars, captures beyond JSON, exact headers, redirects, uploads confined to the project,
CLI checks that run without the app; and the spec's errors for them. Against the Flask blog
in tests/fixtures/realapps/flaskr, launched on 127.0.0.1."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from conftest import Project
from fixtures.runtime.support import app_config, by_id, make_context, run_gate
from shipyard.config import AppConfig
from shipyard.exceptions import SpecError
from shipyard.gates.httpmatch import app_path, header_value
from shipyard.spec import parse_spec

FLASKR = Path(__file__).parent / "fixtures" / "realapps" / "flaskr"
REGISTER = """
  - id: register-{n}
    request: {{method: POST, path: /auth/register, form: {{username: {n}, password: pw}}}}
    expect: {{status: 302}}
  - id: login-{n}
    session: {session}
    request: {{method: POST, path: /auth/login, form: {{username: {n}, password: pw}}}}
    expect: {{status: 302}}
"""


def blog(**fields: object) -> AppConfig:
    start = f"{shlex.quote(sys.executable)} {shlex.quote(str(FLASKR / 'app.py'))} --port {{port}}"
    values = {"start": start, "ready": "/auth/login", "env": {"FLASKR_DB": "{tmp}/db.sqlite"}}
    return AppConfig(**{**values, "stop_timeout": 2, **fields})


def run_blog(tmp_path: Path, checks: str) -> dict:
    results = by_id(run_gate(make_context(tmp_path, checks, blog())))
    assert results["app-start"].status == "passed", results["app-start"].message
    return results


def test_jars_default_none_named_and_reset_by_a_fresh_app(tmp_path: Path) -> None:
    checks = "http:" + REGISTER.format(n="alice", session="default")
    checks += REGISTER.format(n="bob", session="bob")
    checks += """
  - id: default-is-alice
    request: {path: /}
    expect: {body_contains: ["<span class=\\"user\\">alice</span>"]}
  - id: bob-is-bob
    session: bob
    request: {path: /}
    expect: {body_contains: ["<span class=\\"user\\">bob</span>"]}
  - id: none-sends-nothing
    session: none
    request: {path: /create}
    expect: {status: 302, headers: {location: {equals: /auth/login}}}
  - id: none-stores-nothing
    session: none
    request: {method: POST, path: /auth/login, form: {username: alice, password: pw}}
    capture: {sid: "cookie:session"}
  - id: none-still-out
    session: none
    request: {path: /create}
    expect: {status: 302}
  - id: fresh
    fresh_app: true
    request: {method: POST, path: /auth/register, form: {username: carol, password: pw}}
  - id: after-fresh-default-is-out
    request: {path: /create}
    expect: {status: 302, headers: {location: /login}}
"""
    results = run_blog(tmp_path, checks)
    assert {k: r.status for k, r in results.items() if r.status != "passed"} == {}
    # the captured cookie was set by the answer, and still not kept by session: none
    assert results["none-still-out"].message == "GET /create -> 302"


def test_captures_from_headers_cookies_and_the_body_and_their_misses(tmp_path: Path) -> None:
    checks = (
        "http:"
        + REGISTER.format(n="alice", session="default")
        + """
  - id: new-post
    request: {method: POST, path: /create, form: {title: Hi, body: there}}
    capture: {to: "header:Location"}
  - id: follow-captured
    request: {path: "{{to}}"}
    capture: {edit: 'regex:href="(/\\d+/update)"'}
  - id: edit-captured
    request: {path: "{{edit}}"}
    expect: {body_contains: ['value="there"']}
  - id: misses
    session: none
    request: {path: /auth/login}
    capture: {a: "header:X-Nope", b: "cookie:session", c: 'regex:id="(nope)"', d: items.0}
"""
    )
    results = run_blog(tmp_path, checks)
    assert results["follow-captured"].message == "GET / -> 200"
    assert results["edit-captured"].message == "GET /1/update -> 200", results["edit-captured"]
    misses = results["misses"].message.splitlines()
    assert misses[:5] == [
        "GET /auth/login -> 200: capture a: no X-Nope header in the response",
        "capture b: the response set no cookie 'session'",
        "capture c: 'id=\"(nope)\"' is not found in the body",
        "capture d: the response is not JSON",
        "HTTP/1.1 200 OK",
    ]
    assert "response body (its text)" in misses[5]
    assert "  | Log In - Flaskr" in misses


def test_a_location_to_the_app_is_its_path_and_equals_is_exact() -> None:
    origin = "http://127.0.0.1:8000"
    response = httpx.Response(302, headers={"Location": f"{origin}/login?next=%2F"})
    assert header_value(response, "location", origin) == "/login?next=%2F"
    assert header_value(response, "location", "http://127.0.0.1:9") == f"{origin}/login?next=%2F"
    assert app_path("http://127.0.0.1:8000", origin) == "/"
    assert app_path("https://example.com/x", origin) is None


def test_an_upload_outside_the_project_is_bad_input_and_a_missing_one_fails(
    tmp_path: Path, project: Project
) -> None:
    shutil.copytree(FLASKR, project.path, dirs_exist_ok=True)
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours")
    os.symlink(outside, project.path / "link.png")
    spec = (project.path / "spec.yaml").read_text()
    (project.path / "spec.yaml").write_text(spec.replace("avatar: avatar.png", "avatar: link.png"))
    run = project.verify()
    assert run.code == 2
    assert "spec.yaml: checks.http[9].request.files.avatar: 'link.png' leads outside" in run.stderr
    (project.path / "link.png").unlink()
    checks = (
        "http:"
        + REGISTER.format(n="alice", session="default")
        + """
  - id: missing
    request: {method: POST, path: /auth/avatar, files: {avatar: gone.png}}
"""
    )
    results = run_blog(project.path, checks)
    assert results["missing"].status == "failed"
    assert results["missing"].message.startswith(
        "POST /auth/avatar: request.files.avatar: cannot read gone.png: [Errno 2]"
    )


def test_cli_checks_that_need_no_app_run_when_it_does_not_start(tmp_path: Path) -> None:
    checks = """
http:
  - id: create
    request: {path: /healthz}
cli:
  - id: standalone
    run: [python, -c, "print('works alone')"]
    expect: {stdout_contains: [works alone]}
  - id: standalone-failing
    run: [python, -c, "raise SystemExit(4)"]
  - id: uses-url
    run: [python, -c, "print('{app_url}')"]
  - id: uses-env
    run: sh -c 'echo $SHIPYARD_APP_URL'
"""
    results = by_id(run_gate(make_context(tmp_path, checks, app_config(mode="crash"))))
    assert results["app-start"].status == "failed"
    assert results["standalone"].status == "passed", results["standalone"].message
    failing = results["standalone-failing"]
    assert failing.status == "failed"
    assert failing.message.splitlines()[-1] == (
        "(the app was not running; SHIPYARD_APP_URL was not set)"
    )
    for check_id in ("create", "uses-url", "uses-env"):
        assert results[check_id].status == "not_run"
        assert results[check_id].message == "the app did not start"


SPEC_HEAD = "task: t\nacceptance: [{id: a, text: x}]\nchecks:\n"


@pytest.mark.parametrize(
    ("checks", "field", "message"),
    [
        (
            "  http: [{id: h, request: {path: /, form: {a: b}, json: {a: b}}}]",
            "checks.http[0].request",
            "give one of json, body, or form and files, not json and form/files",
        ),
        (
            "  http: [{id: h, request: {path: /, files: {f: ../x.png}}}]",
            "checks.http[0].request.files.f",
            "'../x.png': must be a path relative to the project, inside the project",
        ),
        (
            "  http: [{id: h, request: {path: /}, expect: {final_url: /x}}]",
            "checks.http[0]",
            "expect.final_url needs request.follow_redirects: true",
        ),
        (
            "  http: [{id: h, request: {path: /}, capture: {x: 'regex:id=\\d+'}}]",
            "checks.http[0].capture",
            "capture x: 'id=\\\\d+' needs a group, (…), around what to capture",
        ),
        (
            "  http: [{id: h, request: {path: /}, capture: {x: 'cookie:'}}]",
            "checks.http[0].capture",
            "capture x: 'cookie:' names nothing to capture",
        ),
        (
            "  http: [{id: h, session: 'a b', request: {path: /}}]",
            "checks.http[0].session",
            "String should match pattern",
        ),
        (
            "  ui: [{id: u, steps: [{upload: {selector: input, files: [/etc/passwd]}}]}]",
            "checks.ui[0].steps[0].upload.files[0]",
            "'/etc/passwd': must be a path relative to the project",
        ),
        (
            "  ui: [{id: u, steps: [{wait_for: {selector: x, state: gone}}]}]",
            "checks.ui[0].steps[0].wait_for.state",
            "Input should be 'visible', 'hidden', 'attached' or 'detached'",
        ),
    ],
)
def test_bad_new_keys_name_file_field_and_line(checks: str, field: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(SPEC_HEAD + checks, "spec.yaml")
    assert str(info.value).startswith(f"spec.yaml:4: {field}: "), str(info.value)
    assert message in str(info.value)


@pytest.mark.browser
def test_wait_for_states_and_a_missing_upload_in_the_browser(tmp_path: Path) -> None:
    checks = (
        "http:"
        + REGISTER.format(n="alice", session="alice")
        + """
ui:
  - id: states
    session: alice
    steps:
      - goto: /auth/avatar
      - wait_for: {selector: "#nope", state: detached}
      - wait_for: {selector: "input[name=avatar]", state: attached}
      - wait_for: {selector: .avatar, state: hidden}
  - id: still-there
    timeout: 1
    steps:
      - goto: /auth/login
      - wait_for: {selector: "input[name=username]", state: hidden}
  - id: missing-upload
    session: alice
    steps:
      - goto: /auth/avatar
      - upload: {selector: "input[name=avatar]", files: [gone.png]}
"""
    )
    results = run_blog(tmp_path, checks)
    assert results["states"].status == "passed", results["states"].message
    lines = results["still-there"].message.splitlines()
    assert (
        lines[0]
        == "step 2 wait_for input[name=username]: not hidden after 1s (1 matching elements)"
    )
    assert lines[1].endswith("/auth/login (title 'Log In - Flaskr')")
    missing = results["missing-upload"].message.splitlines()
    assert missing[0] == "step 2 upload input[name=avatar]: no file 'gone.png' in the project"
