"""``shipyard report RUN --html`` and ``shipyard verify --html``: one file that works from
file:// in a real Chromium, with no request leaving the machine."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from fixtures.dashboard_support import Guarded, Ledgered, images_loaded, todo_ledger
from fixtures.loop_support import (
    add_multiply,
    call,
    make_project,
    script,
    spec_file,
    submit,
    write_test,
)
from shipyard.gates.browser import CHROMIUM_ARGS, find_chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def ledgered(tmp_path_factory: pytest.TempPathFactory) -> Ledgered:
    return todo_ledger(tmp_path_factory.getbasetemp() / "todo-ledger")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    import os

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=find_chromium(os.environ), headless=True, args=list(CHROMIUM_ARGS)
        )
        yield chromium
        chromium.close()


@pytest.fixture
def guarded(browser: Any) -> Iterator[Guarded]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield Guarded(context)
    context.close()


def embedded(page: Any) -> dict[str, Any]:
    return json.loads(page.locator("#shipyard-data").text_content())


def test_blocked_run_report_opens_from_file_and_says_why(
    ledgered: Ledgered, guarded: Guarded
) -> None:
    result = run_cli("report", ledgered.blocked, "--html", cwd=ledgered.path)
    assert result.code == 0, result.stderr
    out = Path(result.stdout.strip())
    assert out == ledgered.path / ".shipyard" / "runs" / ledgered.blocked / "report.html"
    page = guarded.page
    page.goto(out.as_uri())
    why = page.locator("#why").inner_text()
    assert "Blocked: the same failure a third time: runtime home" in why
    assert "heading-in-browser: step 2 expect_text h1: no element contains 'my todos'" in why
    assert "1 found: 'My Todos'" in why
    widths = images_loaded(page)
    assert len(widths) >= 6 and all(w > 0 for w in widths), widths  # 3 verifies, 2 shots each
    first = page.locator(".thumbs a").first.get_attribute("href")
    assert first and not first.startswith(("/", "file:", "data:"))
    assert (out.parent / first).is_file(), first  # relative to the file: the full screenshot
    added = page.locator("#diff .l.add").all_inner_texts()
    assert any("<h1>My Todos</h1>" in line for line in added), added
    assert page.locator("#diff .l.add span").count() > 0  # highlighted as HTML
    diagnosis = page.locator("#diagnosis").inner_text()
    assert "confidence 95%" in diagnosis and "change <h1>My Todos</h1>" in diagnosis
    usage = page.locator("#usage").inner_text()
    assert "implementer" in usage and "diagnoser" in usage
    assert page.locator(".timeline rect.bar-failed").count() == 3
    assert page.locator("details.attempt-steps").count() == 3
    data = embedded(page)
    assert data["schema"] == "shipyard.report/1" and data["run"]["status"] == "blocked"
    assert [a["outcome"] for a in data["attempts"]] == ["failed", "failed", "failed"]
    page.goto((out.parent / first).as_uri())  # the link opens the full image
    assert page.evaluate("document.images[0].naturalWidth") == 1280
    guarded.check()
    assert all(url.startswith(("file:", "data:")) for url in guarded.seen), guarded.seen[:5]


def test_shipped_report_written_elsewhere_keeps_its_screenshots(
    ledgered: Ledgered, guarded: Guarded, tmp_path: Path
) -> None:
    out = tmp_path / "elsewhere" / "shipped.html"
    result = run_cli("report", ledgered.shipped[:-2], "--html", "-o", str(out), cwd=ledgered.path)
    assert result.code == 0, result.stderr
    assert Path(result.stdout.strip()) == out and out.stat().st_size < 2_000_000
    page = guarded.page
    page.goto(out.as_uri())
    banner = page.locator(".banner.ok").inner_text()
    assert banner.startswith("Shipped: commit") and ledgered.shipped in banner
    widths = images_loaded(page)
    assert widths and all(w > 0 for w in widths)
    review = page.locator("#review").inner_text()
    assert "changes" in review and 'the page\'s <title> is still "Todos"' in review
    assert 'The page\'s heading says "my todos", and so does its title' in review  # its id's text
    data = embedded(page)
    assert data["reviews"][0]["findings"][0]["acceptance_id"] == "heading"
    assert data["files_changed"] == [{"path": "todo/static/index.html", "added": 2, "removed": 2}]
    guarded.check()


def test_verify_html_beside_its_evidence(ledgered: Ledgered, guarded: Guarded) -> None:
    out = ledgered.path / ".shipyard" / "runs" / ledgered.verify / "report.html"
    page = guarded.page
    page.goto(out.as_uri())
    assert page.locator(".banner.ok").inner_text().startswith("Verified")
    assert page.locator(".check[data-status=passed]").count() >= 5
    widths = images_loaded(page)
    assert len(widths) == 2 and all(w > 0 for w in widths)
    exchange = page.locator("details summary.mono").first.text_content() or ""
    assert re.match(r"POST http://127\.0\.0\.1:\d+/api/todos → 201", exchange), exchange
    assert embedded(page)["verify"]["status"] == "passed"
    guarded.check()


def test_verify_html_keeps_json_on_stdout(ledgered: Ledgered) -> None:
    result = run_cli("verify", "--json", "--html", "--spec", "/nonexistent.yaml", cwd=ledgered.path)
    assert result.code == 2 and result.json["verdict"] == "error"  # bad input: no report
    assert "html report" not in result.stderr


def test_what_a_model_wrote_shows_as_text(tmp_path: Path, guarded: Guarded) -> None:
    project = make_project(tmp_path, attempts=1)
    hostile = "<script>alert('task')</script><img src=x onerror=alert(2)>"
    finding = {"acceptance_id": "multiply", "problem": "<script>alert(3)</script>",
               "change": "<b onmouseover=alert(4)>bold</b>"}  # fmt: skip
    path = script(
        tmp_path,
        implementer=[add_multiply(), write_test(),
                     call("write", path="notes.txt", content="</script><script>alert(5)"),
                     submit("<script>alert(6)</script>")],
        reviewer=[
            {"output": {"decision": "changes", "summary": "<i>x</i>", "findings": [finding]}}
        ],
    )  # fmt: skip
    spec = spec_file(tmp_path)
    run = run_cli("run", hostile, "--spec", str(spec), "--model", f"script:{path}", "--yes",
                  cwd=project.path)  # fmt: skip
    assert run.code == 1, run.stdout + run.stderr
    run_id = re.search(r"r-\d{8}-\d{6}-[0-9a-f]{6}", run.stdout).group(0)  # type: ignore[union-attr]
    result = run_cli("report", run_id, "--html", cwd=project.path)
    assert result.code == 0, result.stderr
    text = Path(result.stdout.strip()).read_text()
    assert "<script>alert" not in text and "<img src=x" not in text and "<b onmouseover" not in text
    assert "&lt;script&gt;alert(&#39;task&#39;)&lt;/script&gt;" in text
    page = guarded.page
    page.goto(Path(result.stdout.strip()).as_uri())
    assert page.locator("h1").inner_text() == hostile
    assert page.locator("script:not([type='application/json'])").count() == 0
    assert "<script>alert(3)</script>" in page.locator("#review").inner_text()
    guarded.check()


def test_report_errors_name_what_is_wrong(ledgered: Ledgered, tmp_path: Path) -> None:
    missing = run_cli("report", "r-nope", "--html", cwd=ledgered.path)
    assert missing.code == 2 and "no run 'r-nope'" in missing.stderr
    alone = run_cli("report", ledgered.shipped, "-o", str(tmp_path / "x.html"), cwd=ledgered.path)
    assert alone.code == 2 and "--output: --output is for the HTML report" in alone.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    bad = run_cli("report", ledgered.shipped, "--html", "-o", f"{blocker}/x.html",
                  cwd=ledgered.path)  # fmt: skip
    assert bad.code == 2 and f"{blocker}/x.html: cannot write the report" in bad.stderr
    empty = run_cli("report", "r-x", "--html", cwd=tmp_path)
    assert empty.code == 2 and "no runs in" in empty.stderr
