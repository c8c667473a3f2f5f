"""UI flows in a real Chromium, driven by Playwright (imported only when a flow runs).

One browser per verify, launched while the app starts (or at the first flow); each flow gets a
fresh browser context whose base URL is the app's. Every step is bounded by the flow's
``timeout``. Semantics (public):

* actions (click, fill, press, select, check) act on the first element the selector matches;
* ``expect_text`` passes when a visible element matching the selector contains the text
  (case-sensitive substring); ``expect_count`` counts every match; ``expect_visible: false``
  passes when no matching element is visible;
* ``expect_url`` passes when the current URL contains the value, or the value as a Python
  regular expression is found in it (``re.search``); retried until the step's timeout;
* ``wait_for`` waits until the first match is in the ``state`` asked (``visible``, ``hidden``,
  ``attached``, ``detached``); ``upload`` sets a file input's files (files of the project);
* a flow with ``session: NAME`` starts with that HTTP cookie jar's cookies;
* a failed step's message ends with the page's URL and title at that moment;
* a JavaScript error, an uncaught promise rejection, a console error, a failed request or a
  same-origin response with status >= 400 fails the flow unless an ``allow_errors`` pattern
  is found (``re.search``) in its description; the browser's own ``/favicon.ico`` request and
  requests cancelled by a navigation (``net::ERR_ABORTED``) are not the page's and are ignored.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shipyard.exceptions import BrowserMissing
from shipyard.gates import Context
from shipyard.gates.http import safe_name
from shipyard.gates.httpmatch import url_matches
from shipyard.gates.logscan import PageErrors
from shipyard.results import CheckResult, Status, result_of
from shipyard.spec import Step, UiCheck
from shipyard.spec_steps import resolve_in_project

if TYPE_CHECKING:
    from playwright.sync_api import Browser as PwBrowser
    from playwright.sync_api import BrowserContext, Page, Playwright

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_ARGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
)  # fmt: skip
MISSING_HINT = "apt-get install -y chromium, or set SHIPYARD_CHROMIUM=/path/to/chrome"
SETTLE_MS = 100
"""After the last step, errors thrown by what it started still count."""
POLL_MS = 50


def find_chromium(env: Mapping[str, str]) -> str:
    """``SHIPYARD_CHROMIUM`` when set (it must exist), else the first Chromium on PATH."""
    configured = env.get("SHIPYARD_CHROMIUM")
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise BrowserMissing(f"SHIPYARD_CHROMIUM={configured} is not an executable file")
    for name in CANDIDATES:
        found = shutil.which(name, path=env.get("PATH", os.defpath))
        if found:
            return found
    raise BrowserMissing(f"Chromium not found: {MISSING_HINT}")


class Browser:
    """The verify's one Chromium: launched at the first flow, closed by ``close``."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self._playwright: Playwright | None = None
        self._browser: PwBrowser | None = None
        self._failed: Exception | None = None

    def close(self) -> None:
        browser, playwright = self._browser, self._playwright
        if browser is None and playwright is None:
            return  # never launched: nothing to import or stop
        from playwright.sync_api import Error

        self._browser = self._playwright = None
        try:
            if browser is not None:
                browser.close()
        except Error:
            pass  # already gone; the driver's exit below takes its processes with it
        finally:
            if playwright is not None:
                playwright.stop()

    def warm(self) -> None:
        """Launch Chromium now, ahead of the first flow; a launch that fails is raised at that
        flow, as it would have been without the warm-up (and is not tried twice)."""
        try:
            self._launched()
        except Exception as exc:  # the first flow reports it, where the checks before it ran
            self._failed = exc

    def run_flow(
        self, check: UiCheck, base_url: str, ctx: Context, cookies: Sequence[Any] = ()
    ) -> CheckResult:
        """The flow in a fresh context, which starts with ``cookies`` (Playwright's form)."""
        from playwright.sync_api import Error

        started = time.monotonic()
        browser = self._launched()
        try:
            context = browser.new_context(base_url=base_url)
            if cookies:
                context.add_cookies(list(cookies))
        except Error as exc:
            return _result(check, "error", f"the browser failed: {_first_line(exc)}", None, started)
        try:
            return _Flow(check, base_url, ctx, context).run(started)
        finally:
            with contextlib.suppress(Error):  # the browser died with the flow: it says so
                context.close()

    def _launched(self) -> PwBrowser:
        if self._browser is not None:
            return self._browser
        if self._failed is not None:
            raise self._failed
        path = find_chromium(self._env)
        from playwright.sync_api import Error, sync_playwright

        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=path, headless=True, args=list(CHROMIUM_ARGS)
            )
        except Error as exc:
            self.close()
            raise BrowserMissing(f"could not start Chromium at {path}: {_first_line(exc)}") from exc
        return self._browser


class _Flow:
    def __init__(self, check: UiCheck, base_url: str, ctx: Context, context: BrowserContext):
        self.check, self.ctx, self.context = check, ctx, context
        self.folder = f"ui/{safe_name(check.id)}"
        self.errors = PageErrors(check.allow_errors)
        self.origin = _origin(base_url)
        self.timeout_ms = check.timeout * 1000

    def run(self, started: float) -> CheckResult:
        from playwright.sync_api import Error

        self._listen()
        self.context.set_default_timeout(self.timeout_ms)
        self.context.set_default_navigation_timeout(self.timeout_ms)
        page = self.context.new_page()
        try:
            failed = self._steps(page)
        except Error as exc:  # the page or browser went away mid-flow
            failed = (0, f"the browser failed: {_first_line(exc)}")
        shot = self._shot(page, f"failed-step-{failed[0]}") if failed and failed[0] else None
        final = self._shot(page, "final")
        self.ctx.run.write_json(f"{self.folder}/errors.json", self.errors.seen)
        if failed is None:
            return _result(self.check, "passed", f"{len(self.check.steps)} steps", final, started)
        return _result(self.check, "failed", failed[1], shot or final, started)

    def _listen(self) -> None:
        add = self.errors.add
        self.context.on("weberror", lambda e: add(f"page error: {e.error.name}: {e.error.message}"))
        self.context.on("console", self._on_console)
        self.context.on("requestfailed", self._on_request_failed)
        self.context.on("response", self._on_response)

    def _on_console(self, msg: Any) -> None:
        if msg.type != "error":
            return
        url = (msg.location or {}).get("url")
        if msg.text.startswith("Failed to load resource") and url and not self._own(url):
            return  # another origin's resource: the request rule below decides, and it doesn't
        self.errors.add(f"console error: {msg.text}" + (f" (at {url})" if url else ""))

    def _on_request_failed(self, request: Any) -> None:
        if self._own(request.url):  # a CDN or tracker being unreachable is not the app's fault
            self.errors.add(f"request failed: {request.method} {request.url}: {request.failure}")

    def _own(self, url: str) -> bool:
        return _origin(url) == self.origin

    def _on_response(self, response: Any) -> None:
        if response.status >= 400 and _origin(response.url) == self.origin:
            method = response.request.method
            self.errors.add(f"HTTP {response.status} from {method} {response.url}")

    def _steps(self, page: Page) -> tuple[int, str] | None:
        steps = self.check.steps
        for number, step in enumerate(steps, start=1):
            problem = self._step(page, step) or self.errors.take_new()
            if problem:
                return number, f"step {number} {step_label(step)}: {problem}\n{_where(page)}"
        page.wait_for_timeout(SETTLE_MS)
        if problem := self.errors.take_new():
            return len(steps), f"after step {len(steps)} {step_label(steps[-1])}: {problem}"
        return None

    def _step(self, page: Page, step: Step) -> str | None:
        from playwright.sync_api import Error

        try:
            return STEPS[step.kind](self, page, step.arg)
        except Error as exc:
            return _explain(page, step, exc, self.check.timeout)

    def _shot(self, page: Page, name: str) -> str | None:
        from playwright.sync_api import Error

        path = self.ctx.run.file(f"{self.folder}/{safe_name(name)}.png")
        try:
            page.screenshot(path=str(path), timeout=self.timeout_ms)
        except Error:
            return None
        return self.ctx.run.rel(path)

    def expect_text(self, page: Page, arg: Any) -> str | None:
        from playwright.sync_api import expect

        matches = page.locator(arg.selector)
        wanted = matches.filter(has_text=re.compile(re.escape(arg.text)), visible=True).first
        try:
            expect(wanted).to_be_visible(timeout=self.timeout_ms)
        except AssertionError:
            if not _responsive(page):
                return f"no element contains {arg.text!r}; {UNRESPONSIVE}"
            texts = [" ".join(t.split())[:80] for t in matches.all_inner_texts()]
            if not texts:
                return f"no element contains {arg.text!r}: nothing matches the selector"
            shown = ", ".join(repr(t) for t in texts[:5]) + (" ..." if len(texts) > 5 else "")
            return f"no element contains {arg.text!r}; {len(texts)} found: {shown}"
        return None

    def expect_count(self, page: Page, arg: Any) -> str | None:
        from playwright.sync_api import expect

        matches = page.locator(arg.selector)
        try:
            expect(matches).to_have_count(arg.count, timeout=self.timeout_ms)
        except AssertionError:
            if not _responsive(page):
                return f"expected {arg.count} matching elements; {UNRESPONSIVE}"
            return f"expected {arg.count} matching elements, found {matches.count()}"
        return None

    def expect_visible(self, page: Page, arg: Any) -> str | None:
        from playwright.sync_api import expect

        visible = page.locator(arg.selector).filter(visible=True)
        try:
            if arg.visible:
                expect(visible.first).to_be_visible(timeout=self.timeout_ms)
            else:
                expect(visible).to_have_count(0, timeout=self.timeout_ms)
        except AssertionError:
            return "expected it visible, it is not" if arg.visible else "expected it hidden"
        return None

    def expect_url(self, page: Page, value: str) -> str | None:
        deadline = time.monotonic() + self.check.timeout
        while not url_matches(page.url, value):
            if time.monotonic() >= deadline:
                return f"expected the URL to match {value!r}, it is {page.url}"
            page.wait_for_timeout(POLL_MS)
        return None

    def wait_for(self, page: Page, arg: Any) -> str | None:
        from playwright.sync_api import TimeoutError

        try:
            page.locator(arg.selector).first.wait_for(state=arg.state)
        except TimeoutError:
            if not _responsive(page):
                return f"not {arg.state}; {UNRESPONSIVE}"
            found = page.locator(arg.selector).count()
            return f"not {arg.state} after {self.check.timeout:g}s ({found} matching elements)"
        return None

    def upload(self, page: Page, arg: Any) -> str | None:
        try:
            paths = [resolve_in_project(self.ctx.project, name) for name in arg.files]
        except ValueError as exc:
            return str(exc)
        if missing := [name for name, p in zip(arg.files, paths, strict=True) if not p.is_file()]:
            return f"no file {missing[0]!r} in the project"
        page.locator(arg.selector).first.set_input_files(paths)
        return None

    def screenshot(self, page: Page, name: str) -> str | None:
        path = self.ctx.run.file(f"{self.folder}/{safe_name(name)}.png")
        page.screenshot(path=str(path), timeout=self.timeout_ms)
        return None


Action = Callable[[_Flow, "Page", Any], "str | None"]
STEPS: dict[str, Action] = {
    "goto": lambda f, page, url: _none(page.goto(url)),
    "click": lambda f, page, a: page.locator(a.selector).first.click(),
    "fill": lambda f, page, a: page.locator(a.selector).first.fill(a.value),
    "press": lambda f, page, a: page.locator(a.selector).first.press(a.key),
    "select": lambda f, page, a: _none(page.locator(a.selector).first.select_option(a.value)),
    "check": lambda f, page, a: page.locator(a.selector).first.set_checked(a.checked),
    "reload": lambda f, page, _: _none(page.reload()),
    "wait_for": _Flow.wait_for,
    "upload": _Flow.upload,
    "expect_text": _Flow.expect_text,
    "expect_count": _Flow.expect_count,
    "expect_visible": _Flow.expect_visible,
    "expect_url": _Flow.expect_url,
    "screenshot": _Flow.screenshot,
}
"""Each step kind: what it does; a returned string is why it failed."""


def step_label(step: Step) -> str:
    """``expect_text .todo-list li``: the kind and what it acts on."""
    arg = step.arg
    target = getattr(arg, "selector", None) or (arg if isinstance(arg, str) else "")
    return f"{step.kind} {target}".strip()


def _explain(page: Page, step: Step, exc: Exception, timeout: float) -> str:
    from playwright.sync_api import Error, TimeoutError

    selector = getattr(step.arg, "selector", None)
    if isinstance(exc, TimeoutError) and not _responsive(page):
        return f"{_first_line(exc)}; {UNRESPONSIVE}"
    if isinstance(exc, TimeoutError) and selector:
        try:
            found = page.locator(selector).count()
        except Error:
            found = -1
        if found == 0:
            return f"no element matches {selector!r} (waited {timeout:g}s)"
    return _first_line(exc)


UNRESPONSIVE = "the page is not responding (a script may be busy)"
RESPONSIVE_PROBE_MS = 500


def _responsive(page: Page) -> bool:
    """Whether the page's script thread answers; locator queries without a timeout would wait
    for it forever."""
    from playwright.sync_api import Error

    try:
        page.wait_for_function("() => true", timeout=RESPONSIVE_PROBE_MS)
    except Error:
        return False
    return True


def _where(page: Page) -> str:
    """``page: URL (title 'T')``: where the browser was when the step failed."""
    from playwright.sync_api import Error

    title = None
    if _responsive(page):
        with contextlib.suppress(Error):
            title = page.title()
    return f"page: {page.url}" + (f" (title {title!r})" if title else "")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _none(_: object) -> None:
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _result(
    check: UiCheck, status: Status, message: str, evidence: str | None, started: float
) -> CheckResult:
    return result_of(check, "ui", status, message, evidence, time.monotonic() - started)
