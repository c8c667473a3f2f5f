"""``shipyard serve``: the dashboard over a real ledger, in a real Chromium, with every request
kept on 127.0.0.1; a live run's steps arriving without a reload; the guards."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from conftest import BIN, ROOT, run_cli
from fixtures.dashboard_support import (
    Guarded,
    Ledgered,
    dashboard,
    images_loaded,
    todo_ledger,
)  # fmt: skip
from fixtures.loop_support import (
    LedgerView,
    add_multiply,
    call,
    make_project,
    script,
    spec_file,
    submit,
    write_test,
)  # fmt: skip
from shipyard.gates.browser import CHROMIUM_ARGS, find_chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def ledgered(tmp_path_factory: pytest.TempPathFactory) -> Ledgered:
    return todo_ledger(tmp_path_factory.getbasetemp() / "todo-ledger")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
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


def test_runs_run_page_verifies_knowledge_and_metrics(ledgered: Ledgered, guarded: Guarded) -> None:
    page = guarded.page
    with dashboard(ledgered.path) as url:
        response = page.goto(url)
        assert response is not None and response.ok
        assert "default-src 'none'" in response.headers["content-security-policy"]
        rows = page.locator("#runs tr[data-status]")
        assert rows.count() == 2
        assert page.locator("#runs").inner_text().count("make the heading say my todos") == 2
        assert (
            "the same failure a third time" in page.locator("tr[data-status=blocked]").inner_text()
        )
        page.select_option("select[name=status]", "blocked")
        page.click("form.filters button")
        assert page.locator("#runs tr[data-status]").count() == 1
        assert page.locator("#count").inner_text() == "1 run(s)"
        page.goto(url + "?q=nothing+like+this")
        assert "no runs match these filters" in page.locator("#runs").inner_text()
        page.goto(url + "?since=yesterday")
        assert "since must be a date as YYYY-MM-DD, not 'yesterday'" in page.inner_text("main")
        assert [e for e in guarded.errors if "status of 400" in e] == guarded.errors != []
        guarded.errors.clear()  # that 400 was asked for

        page.goto(url)
        page.click(f"a[href='/runs/{ledgered.shipped}']")
        assert page.locator(".banner.ok").inner_text().startswith("Shipped: commit")
        widths = images_loaded(page)
        assert len(widths) >= 6 and all(w > 0 for w in widths), widths
        full = page.locator(".thumbs a").first.get_attribute("href")
        assert full and full.startswith(f"/files/{ledgered.shipped}/verify-")
        assert any(
            "<title>my todos</title>" in t for t in page.locator("#diff .l.add").all_inner_texts()
        )
        assert page.locator("#diff .l.add span.nt").count() > 0  # HTML tags highlighted
        assert 'the page\'s <title> is still "Todos"' in page.locator("#review").inner_text()

        page.goto(url + "verifies")
        page.click(f"a[href='/verifies/{ledgered.verify}']")
        assert page.locator(".banner.ok").inner_text().startswith("Verified")
        assert all(w > 0 for w in images_loaded(page))
        assert page.locator("#checks .check[data-status=passed]").count() >= 5

        page.goto(url + "knowledge")
        finding = page.locator("#knowledge tr[data-kind=finding]")
        assert 'the page\'s <title> is still "Todos"' in finding.inner_text()
        commands = page.locator("#knowledge tr[data-kind=command]").first.inner_text()
        assert ledgered.blocked in commands  # given to the blocked run's implementer

        page.goto(url + "metrics")
        no_required = page.locator("#plot-required-tests svg").text_content() or ""
        assert "no data yet" in no_required  # this spec has no required tests
        for plot in ("first-pass-build", "runtime-checks", "ui-flows", "attempts", "tokens"):
            svg = page.locator(f"#plot-{plot} svg")
            assert svg.bounding_box()["width"] > 300  # type: ignore[index]
            assert svg.locator("circle").count() >= 1, plot
        assert "2 run(s): 1 shipped, 1 blocked" in page.inner_text("main")
        assert "first-pass build rate" in page.locator("#figures").inner_text()
    guarded.check()


def test_a_live_run_shows_new_steps_without_reload(tmp_path: Path, guarded: Guarded) -> None:
    project = make_project(tmp_path)
    go = tmp_path / "go"
    wait = (
        'python -c "import os, time\nfor _ in range(600):\n'
        f'  if os.path.exists({str(go)!r}): break\n  time.sleep(0.1)"'
    )
    path = script(tmp_path, implementer=[call("run", command=wait), add_multiply(), write_test(),
                                         submit("multiply, after the wait")])  # fmt: skip
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.Popen(
        [str(BIN / "shipyard"), "run", "multiply two numbers", "--spec", str(spec_file(tmp_path)),
         "--model", f"script:{path}", "--yes"], cwd=project.path, env=environ,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        view = LedgerView(project)
        view.wait_for(lambda v: any("step 1: run" in e["summary"] for e in v.events()), proc=proc)
        run_id = view.run()["id"]
        page = guarded.page
        with dashboard(project.path) as url:
            page.goto(f"{url}runs/{run_id}")
            assert page.locator("#live-banner").inner_text().startswith("Running")
            assert page.locator("body[data-live='1']").count() == 1
            page.evaluate("window.notReloaded = true")
            assert "submit multiply, after the wait" not in page.inner_text("main")
            go.write_text("")
            live = page.locator("#live-steps")
            live.locator("tr", has_text="submitted: multiply, after the wait").wait_for(
                timeout=60_000
            )
            page.locator("#live-banner[data-ended=shipped]").wait_for(timeout=60_000)
            assert "verify 1: passed" in live.inner_text()
            assert page.evaluate("window.notReloaded") is True
            assert page.locator("#live-banner").inner_text().startswith("The run ended: shipped")
        assert proc.wait(timeout=60) == 0
    finally:
        go.write_text("")
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    guarded.check()


def test_loopback_only_answers_its_own_name_and_serves_only_run_folders(
    ledgered: Ledgered,
) -> None:
    runs = ledgered.path / ".shipyard" / "runs"
    folder = runs / ledgered.verify
    (folder / "escape.png").unlink(missing_ok=True)
    (folder / "escape.png").symlink_to("/etc/hostname")
    (folder / "page.html").write_text("<script>alert(1)</script>")
    try:
        _guards(ledgered, url_of=dashboard(ledgered.path))
    finally:
        (folder / "escape.png").unlink()
        (folder / "page.html").unlink()


def _guards(ledgered: Ledgered, url_of: Any) -> None:
    with url_of as url, httpx.Client(base_url=url, timeout=10) as client:
        evil = client.get("/", headers={"host": "rebound.example:80"})
        assert evil.status_code == 421 and "its own address only" in evil.text
        verify = ledgered.verify
        for path in ("/files/..%2F..%2Fshipyard.db", f"/files/{verify}/..%2F..%2Fshipyard.db",
                     f"/files/{verify}/escape.png", "/files/%2Fetc%2Fpasswd"):  # fmt: skip
            assert client.get(path).status_code == 404, path
        page = client.get(f"/files/{ledgered.verify}/page.html")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
        assert page.headers["x-content-type-options"] == "nosniff"
        shot = client.get(f"/files/{ledgered.verify}/ui/add-in-browser/final.png")
        assert shot.status_code == 200 and shot.headers["content-type"] == "image/png"
        assert client.get("/runs/r-nope").status_code == 404
        assert "no run &#39;r-nope&#39; in this project" in client.get("/runs/r-nope").text


def test_another_host_needs_the_token(ledgered: Ledgered) -> None:
    with dashboard(ledgered.path, "--host", "0.0.0.0") as url:
        assert "?token=" in url
        port = url.split(":")[2].split("/")[0]
        token = url.split("token=")[1]
        local = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=local, timeout=10) as client:
            denied = client.get("/")
            assert denied.status_code == 401 and "needs its token" in denied.text
            assert client.get("/?token=wrong").status_code == 401
            given = client.get(f"/metrics?token={token}")
            assert given.status_code == 303 and given.headers["location"] == "/metrics"
            assert "HttpOnly" in given.headers["set-cookie"]
            assert client.get("/metrics").status_code == 200  # the cookie, from now on
            assert client.get(f"/files/{ledgered.verify}/verdict.json").status_code == 200


def test_serve_without_a_ledger_is_bad_input(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(BIN / "shipyard"), "serve", "--port", "0"], cwd=tmp_path, capture_output=True,
        text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert (
        proc.returncode == 2
        and "no runs in" in proc.stderr
        and "nothing to show yet" in proc.stderr
    )


def test_serve_is_not_imported_by_help() -> None:
    heavy = "('starlette', 'uvicorn', 'jinja2', 'PIL', 'pygments')"
    found = f"[m for m in sys.modules if m.split('.')[0] in {heavy}]"
    code = f"import shipyard.cli, sys; print({found})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.slow
def test_a_batch_folder_lists_its_tasks(tmp_path: Path, guarded: Guarded) -> None:
    fixtures = ROOT / "tests" / "fixtures" / "batch"
    bare = tmp_path / "gone.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    power = {
        "project": str(ROOT / "examples" / "pycalc"),
        "task": "add a power operation",
        "spec": str(fixtures / "power.spec.yaml"),
        "model": f"script:{fixtures / 'power.yaml'}",
    }
    tasks = [{"id": "power", **power},
             {"id": "gone", **power, "project": str(bare), "commit": "0" * 40}]  # fmt: skip
    suite, out = tmp_path / "suite.yaml", tmp_path / "out"
    suite.write_text(yaml.safe_dump({"tasks": tasks}))
    assert run_cli("batch", str(suite), "--out", str(out), cwd=tmp_path, timeout=300).code == 3
    page = guarded.page
    with dashboard(tmp_path, "--batch", str(out)) as url:
        response = page.goto(url)
        assert response is not None and response.ok
        assert "default-src 'none'" in response.headers["content-security-policy"]
        summary = page.locator("#summary").inner_text()
        assert "2 task(s): 1 shipped · 0 blocked · 1 error · ship rate 50%" in summary
        shipped = page.locator("#tasks tr[data-outcome=shipped]").inner_text()
        assert shipped.split("\t")[:3] == ["power", "shipped", "2"]  # two attempts
        assert int(shipped.split("\t")[3].replace(",", "")) > 0  # tokens
        error = page.locator("#tasks tr[data-outcome=error]").inner_text()
        assert "checkout failed: git checkout" in error and "unknown" in error
        page.click("#tasks tr[data-outcome=shipped] a")
        assert "shipped on shipyard/r-" in page.inner_text("body")  # the run's console log
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/tasks/gone/console").status_code == 404  # no evidence
            assert client.get("/tasks/..%2F..%2Fbatch.db/console").status_code == 404
            assert client.get("/runs").status_code == 404  # a batch, not a project
    guarded.check()


def test_serve_batch_without_a_batch_database_is_bad_input(tmp_path: Path) -> None:
    result = run_cli("serve", "--batch", str(tmp_path), "--port", "0", cwd=tmp_path)
    assert result.code == 2
    assert f"{tmp_path}: no batch database here" in result.stderr
