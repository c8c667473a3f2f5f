"""The runtime gate's launch: readiness, crashes, fresh apps, and nothing left running."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fixtures.runtime.support import app_config, by_id, live_children, make_context, run_gate
from shipyard.exceptions import CommandNotFound, ConfigError
from shipyard.gates import clicheck
from shipyard.gates.app import settings_for

HTTP_AND_CLI = """
http:
  - id: create
    request: {method: POST, path: /api/todos, json: {title: milk}}
    expect: {status: 201}
cli:
  - id: count
    run: [python, TODO_APP, count]
    env: {SHIPYARD_APP_URL: "{app_url}"}  # the program reads it: the check needs the app
    expect: {stdout_contains: [1 todos]}
"""


def test_an_app_that_gets_ready_serves_its_checks_and_is_stopped(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, HTTP_AND_CLI.replace("TODO_APP", str(app_path())), app_config())
    temp_dirs = set(Path(tempfile.gettempdir()).glob("shipyard-app-*"))
    result = run_gate(ctx)
    assert set(Path(tempfile.gettempdir()).glob("shipyard-app-*")) == temp_dirs
    checks = by_id(result)
    assert [c.id for c in result.checks] == ["app-start", "create", "count"]
    assert checks["app-start"].status == "passed", checks["app-start"].message
    assert checks["app-start"].kind == "app"
    assert checks["app-start"].message.startswith("ready on port ")
    assert checks["count"].status == "passed", checks["count"].message
    assert result.status == "passed"
    assert "listening on" in (ctx.run.path / "app/stdout.log").read_text()
    assert live_children() == []


def test_an_app_that_crashes_on_start_fails_with_its_last_output(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, HTTP_AND_CLI, app_config(mode="crash"))
    checks = by_id(run_gate(ctx))
    start = checks["app-start"]
    assert start.status == "failed"
    assert start.message.startswith("the app exited with code 3 before it was ready")
    assert "fatal: settings file missing" in start.message
    assert "loading settings" in start.message
    assert start.evidence == "app/stderr.log"
    for check_id in ("create", "count"):
        assert checks[check_id].status == "not_run"
        assert checks[check_id].message == "the app did not start"
    assert live_children() == []


def test_an_app_that_never_gets_ready_fails_at_its_ready_timeout(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, HTTP_AND_CLI, app_config(mode="hang", ready_timeout=1.5))
    started = time.monotonic()
    checks = by_id(run_gate(ctx))
    took = time.monotonic() - started
    start = checks["app-start"]
    assert start.status == "failed"
    assert start.message.startswith("the app was not ready after 1.5s (GET http://127.0.0.1:")
    assert "warming up" in start.message
    assert 1.5 <= took < 6
    assert checks["create"].status == "not_run"
    assert live_children() == []


def test_tcp_readiness_and_the_spec_overriding_the_app_config(tmp_path: Path) -> None:
    checks_yaml = """
    http:
      - id: health
        request: {path: /healthz}
        expect: {status: 200, json: {ok: true}}
    """
    fixed = {"start": app_config().start, "ready": "tcp"}
    ctx = make_context(tmp_path, checks_yaml, app_config(mode="crash"), spec_app=fixed)
    assert settings_for(ctx) == app_config(ready="tcp")
    checks = by_id(run_gate(ctx))
    assert checks["app-start"].status == "passed", checks["app-start"].message
    assert checks["health"].status == "passed", checks["health"].message


def test_fresh_app_stops_the_shared_app_and_starts_a_clean_one(tmp_path: Path) -> None:
    checks_yaml = """
    http:
      - id: create
        request: {method: POST, path: /api/todos, json: {title: milk}}
        expect: {status: 201}
      - id: one
        request: {path: /api/todos}
        expect: {json: [{title: milk}]}
      - id: empty-again
        fresh_app: true
        request: {path: /api/todos}
        expect: {json: []}
    """
    result = run_gate(make_context(tmp_path, checks_yaml, app_config()))
    ids = [c.id for c in result.checks]
    assert ids == ["app-start", "create", "one", "app-start-empty-again", "empty-again"]
    assert result.status == "passed", [c.message for c in result.checks]
    assert (tmp_path / ".shipyard/runs/r1/app/stdout-2.log").exists()
    assert live_children() == []


def test_blocked_by_a_failed_build_reports_not_run_and_launches_nothing(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, HTTP_AND_CLI, app_config())
    result = run_gate(ctx, blocked_by="not run: the build gate failed")
    assert [(c.id, c.status, c.message) for c in result.checks] == [
        ("create", "not_run", "not run: the build gate failed"),
        ("count", "not_run", "not run: the build gate failed"),
    ]
    assert not (ctx.run.path / "app").exists()


def test_http_checks_without_an_app_are_bad_input_naming_app_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        run_gate(make_context(tmp_path, HTTP_AND_CLI))
    assert caught.value.field == "app.start"
    assert caught.value.exit_code == 2


def test_a_missing_app_program_is_command_not_found(tmp_path: Path) -> None:
    app = app_config(start="no-such-program-xyz --port {port}")
    with pytest.raises(CommandNotFound, match="app.start: 'no-such-program-xyz' was not found"):
        run_gate(make_context(tmp_path, HTTP_AND_CLI, app))


def test_no_spec_or_no_runtime_checks_is_an_empty_gate(tmp_path: Path) -> None:
    ctx = make_context(tmp_path, "tests: {required: []}", app_config())
    assert run_gate(ctx).checks == ()
    assert run_gate(replace(ctx, spec=None)).checks == ()


def test_ctrl_c_mid_run_still_stops_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object) -> None:
        assert len(live_children()) == 2  # the app is running right now, under its launcher
        raise KeyboardInterrupt

    monkeypatch.setattr(clicheck, "run_cli_check", interrupted)  # imported when it runs
    ctx = make_context(tmp_path, HTTP_AND_CLI, app_config())
    with pytest.raises(KeyboardInterrupt):
        run_gate(ctx)
    assert live_children() == []
    assert json.loads((ctx.run.path / "http/create.json").read_text())["response"]["status"] == 201


def app_path() -> Path:
    from fixtures.runtime.support import TODO_APP

    return TODO_APP


def test_an_app_answering_503_while_it_warms_up_is_ready_when_it_answers_200(
    tmp_path: Path,
) -> None:
    ctx = make_context(tmp_path, HTTP_AND_CLI.replace("TODO_APP", str(app_path())),
                       app_config(mode="warmup"))  # fmt: skip
    checks = by_id(run_gate(ctx))
    assert checks["app-start"].status == "passed", checks["app-start"].message
    assert '"GET /healthz HTTP/1.1" 503' in (ctx.run.path / "app/stderr.log").read_text()
    assert checks["create"].status == "passed"


def test_an_error_logged_just_after_the_last_check_fails_that_check(tmp_path: Path) -> None:
    checks_yaml = """
    http:
      - id: late
        request: {path: /api/late}
        expect: {status: 200}
    """
    checks = by_id(run_gate(make_context(tmp_path, checks_yaml, app_config())))
    late = checks["late"]
    assert late.status == "failed"
    assert "the app logged a traceback while 'late' ran" in late.message
    assert "cleanup after the response failed" in late.message
