"""UI flows in a real Chromium against the fixture app: one browser for the whole module."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fixtures.runtime.support import (
    PYTHON,
    TODO_APP,
    app_config,
    by_id,
    live_children,
    make_context,
    run_gate,
)
from shipyard.exceptions import BrowserMissing
from shipyard.gates.browser import Browser
from shipyard.lanes import Lanes
from shipyard.results import CheckResult

pytestmark = pytest.mark.browser

FLOWS = """
ui:
  - id: add-in-browser
    steps:
      - goto: /
      - fill: {selector: input.new-todo, value: Buy milk}
      - press: {selector: input.new-todo, key: Enter}
      - expect_text: {selector: .todo-list li, text: Buy milk}
      - reload: true
      - expect_count: {selector: .todo-list li, count: 1}
      - click: "#save"
      - expect_text: {selector: p, text: saved}
      - expect_visible: .status
      - expect_visible: {selector: .nothing-here, visible: false}
      - click: "#about"
      - expect_url: /about$
      - screenshot: about
  - id: dead-button
    timeout: 1
    steps:
      - goto: /
      - click: "#clear"
      - expect_text: {selector: .status, text: cleared}
  - id: broken-page
    steps:
      - goto: /broken
      - expect_text: {selector: p, text: hi}
  - id: missing-selector
    timeout: 1
    steps:
      - goto: /about
      - click: "#nope"
  - id: noisy-allowed
    allow_errors: ["analytics bl[a-z]+"]
    steps:
      - goto: /noisy
      - expect_text: {selector: p, text: noisy}
  - id: noisy
    steps:
      - goto: /noisy
  - id: cross-origin
    steps:
      - goto: /elsewhere
      - expect_text: {selector: p, text: elsewhere}
  - id: not-found
    steps:
      - goto: /nowhere
"""


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp_path = tmp_path_factory.mktemp("flows")
    ctx = make_context(tmp_path, FLOWS, app_config())
    started = time.monotonic()
    import playwright.sync_api._generated as generated

    launches: list[object] = []
    real_launch = generated.BrowserType.launch

    def counting_launch(self: object, *args: object, **kwargs: object) -> object:
        launches.append(kwargs.get("executable_path"))
        return real_launch(self, *args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(generated.BrowserType, "launch", counting_launch)
        checks = by_id(run_gate(ctx))
    return {
        "checks": checks,
        "run": ctx.run.path,
        "took": time.monotonic() - started,
        "left": live_children(),
        "launches": launches,
    }


def check(flows: dict, check_id: str) -> CheckResult:
    return flows["checks"][check_id]


def test_a_working_flow_passes_with_screenshots(flows: dict) -> None:
    result = check(flows, "add-in-browser")
    assert result.status == "passed", result.message
    assert result.message == "13 steps"
    assert result.evidence == "ui/add-in-browser/final.png"
    assert (flows["run"] / "ui/add-in-browser/final.png").stat().st_size > 0
    assert (flows["run"] / "ui/add-in-browser/about.png").stat().st_size > 0


def test_a_button_wired_to_nothing_fails_the_expectation_after_it(flows: dict) -> None:
    result = check(flows, "dead-button")
    assert result.status == "failed"
    first, where = result.message.splitlines()
    assert first == "step 3 expect_text .status: no element contains 'cleared'; 1 found: ''"
    assert re.fullmatch(r"page: http://127\.0\.0\.1:\d+/ \(title 'Todos'\)", where), where
    assert result.evidence == "ui/dead-button/failed-step-3.png"
    assert (flows["run"] / "ui/dead-button/failed-step-3.png").exists()
    assert (flows["run"] / "ui/dead-button/final.png").exists()


def test_a_script_error_on_load_fails_the_flow(flows: dict) -> None:
    result = check(flows, "broken-page")
    assert result.status == "failed"
    assert result.message.splitlines()[0] == (
        "step 1 goto /broken: the page had an error: "
        "page error: ReferenceError: undefinedFunction is not defined"
    )
    assert result.message.splitlines()[1].endswith("/broken")  # no title: the page has none


def test_a_missing_selector_fails_at_the_step_timeout(flows: dict) -> None:
    result = check(flows, "missing-selector")
    assert result.status == "failed"
    first, where = result.message.splitlines()
    assert first == "step 2 click #nope: no element matches '#nope' (waited 1s)"
    assert where.startswith("page: http://127.0.0.1:") and where.endswith("/about")
    assert result.duration is not None and result.duration < 5


def test_console_errors_fail_unless_allowed(flows: dict) -> None:
    assert check(flows, "noisy-allowed").status == "passed", check(flows, "noisy-allowed").message
    noisy = check(flows, "noisy")
    assert noisy.status == "failed"
    assert noisy.message.startswith(
        "step 1 goto /noisy: the page had an error: console error: analytics blocked (at http://"
    )


def test_a_same_origin_error_response_fails_the_flow(flows: dict) -> None:
    message = check(flows, "not-found").message
    assert message.startswith("step 1 goto /nowhere: the page had an error: HTTP 404 from GET ")
    first, _ = message.splitlines()
    assert first.endswith("/nowhere (and 1 more)")  # and the console's "Failed to load resource"


def test_the_gate_leaves_no_process_behind(flows: dict) -> None:
    assert flows["left"] == []
    assert flows["took"] < 30


def test_no_chromium_is_browser_missing_and_the_app_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("SHIPYARD_CHROMIUM", str(tmp_path / "no-such-chrome"))
    ctx = make_context(tmp_path, "ui: [{id: flow, steps: [{goto: /}]}]", app_config())
    with pytest.raises(BrowserMissing, match="no-such-chrome"):
        run_gate(ctx)
    monkeypatch.delenv("SHIPYARD_CHROMIUM")
    (tmp_path / "again").mkdir()
    ctx = make_context(tmp_path / "again", "ui: [{id: f, steps: [{goto: /}]}]", app_config())
    with pytest.raises(BrowserMissing, match="Chromium not found: apt-get install -y chromium"):
        run_gate(ctx)
    assert live_children() == []


def test_another_origins_failed_request_is_not_the_apps_error(flows: dict) -> None:
    flow = check(flows, "cross-origin")
    assert flow.status == "passed", flow.message
    seen = json.loads((flows["run"] / "ui/cross-origin/errors.json").read_text())
    assert seen == [], seen


def test_one_chromium_serves_every_flow_of_a_verify(flows: dict) -> None:
    assert len([c for c in flows["checks"].values() if c.kind == "ui"]) > 5
    assert len(flows["launches"]) == 1


def test_chromium_is_launched_while_the_app_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the app says it started, then takes 2 s to listen: the browser's launch happens meanwhile
    marks = tmp_path / "marks"
    marks.mkdir()
    start = (
        f"sh -c 'touch {marks}/started; sleep 2; touch {marks}/listening; "
        f"exec {PYTHON} {TODO_APP} --port {{port}} --mode ok'"
    )
    seen: list[tuple[bool, bool]] = []
    real_warm = Browser.warm

    def watched_warm(self: Browser) -> None:
        deadline = time.monotonic() + 5
        while not (marks / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        real_warm(self)
        seen.append(((marks / "started").exists(), (marks / "listening").exists()))

    monkeypatch.setattr(Browser, "warm", watched_warm)
    flow = "ui:\n  - id: home\n    steps: [{goto: /about}, {expect_text: {selector: h1, text: Ab}}]"
    parallel = replace(make_context(tmp_path, flow, app_config(start=start)), lanes=Lanes(True))
    checks = by_id(run_gate(parallel))
    assert checks["app-start"].status == "passed", checks["app-start"].message
    assert checks["home"].status == "passed", checks["home"].message
    assert seen == [(True, False)]  # launched after the app started, before it listened

    # one check after another: no launch ahead of the first flow
    seen.clear()
    (marks / "started").unlink()
    (marks / "listening").unlink()
    (tmp_path / "serial").mkdir()
    serial = make_context(tmp_path / "serial", flow, app_config(start=start))  # Lanes(False)
    assert by_id(run_gate(serial))["home"].status == "passed"
    assert seen == []


def test_a_chromium_that_cannot_start_is_tried_once_and_reported_at_the_first_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import playwright.sync_api._generated as generated

    launches: list[object] = []
    real_launch = generated.BrowserType.launch

    def counting_launch(self: object, *args: object, **kwargs: object) -> object:
        launches.append(kwargs.get("executable_path"))
        return real_launch(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(generated.BrowserType, "launch", counting_launch)
    monkeypatch.setenv("SHIPYARD_CHROMIUM", "/bin/false")  # an executable that exits at once
    flows = "http: [{id: home, request: {path: /healthz}, expect: {status: 200}}]\n"
    flows += "ui: [{id: flow, steps: [{goto: /}]}]"
    ctx = replace(make_context(tmp_path, flows, app_config()), lanes=Lanes(True))
    with pytest.raises(BrowserMissing, match="could not start Chromium at /bin/false"):
        run_gate(ctx)
    assert launches == ["/bin/false"]
    assert live_children() == []
