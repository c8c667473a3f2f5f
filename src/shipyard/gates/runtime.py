"""The runtime gate: launch the app once, then its HTTP, CLI and UI checks in that order.

* One launch serves every check. A check with ``fresh_app: true`` stops the running app and
  starts a new one (new port, new ``{tmp}``), which then serves that check and the ones after it.
* The app is launched when the spec has HTTP or UI checks, or when an app is configured. With
  neither, CLI checks run on their own. HTTP or UI checks without ``app.start`` are bad input.
* An app that does not get ready is a failed ``app-start`` check; the checks that needed it are
  ``not_run`` ("the app did not start"). An app that exits mid-run fails the check that was
  running, and the later ones that need it are ``not_run``. A CLI check needs the app when its
  ``run``, ``env`` or ``stdin`` mention ``{app_url}``, ``{port}`` or ``SHIPYARD_APP_URL``, or it
  asks for ``fresh_app``; the others run either way.
* The checks keep their written order (they share the app and its data), except neighbouring
  UI flows with ``parallel: true``, which overlap, each in a browser of its own (``in_order``),
  when the verify runs in parallel (``[verify] parallel``, the default).
* HTTP checks send and store cookies in their ``session``'s jar (``sessions.py``).
* After each check, and between the launch and the first check (``app-start``), the app's new
  output is scanned (``logscan``); a traceback, an uncaught exception or a logged 5xx fails it.
* When the spec has UI flows, Chromium is launched while the app starts (in parallel mode).
* The app and the browser are stopped in ``finally``: on success, failure, error and Ctrl-C.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from shipyard import leftovers, process
from shipyard.config import AppConfig, Config
from shipyard.exceptions import ConfigError, SpecError
from shipyard.gates import Context, VerifiedCommand
from shipyard.gates import app as applaunch
from shipyard.results import CheckKind, CheckResult, GateResult, result_of
from shipyard.spec import CliCheck, HttpCheck, UiCheck
from shipyard.spec_steps import resolve_in_project

if TYPE_CHECKING:  # the checks' modules are imported when a spec has checks of their kind
    from shipyard.gates.browser import Browser
    from shipyard.gates.logscan import LogScanner
    from shipyard.gates.sessions import Jars

LOG_SETTLE = 0.02
"""Seconds for the app to finish writing what a check made it log (async loggers)."""
FINAL_SETTLE = 0.1
"""Seconds to wait for the app's output after the last check, before stopping it."""
RuntimeCheck: TypeAlias = HttpCheck | CliCheck | UiCheck
Planned: TypeAlias = list[tuple[CheckKind, RuntimeCheck]]
"""(kind, check) for the spec's http, cli and ui checks, in the order they run."""


class RuntimeGate:
    name = "runtime"
    blocking = False

    def preflight(self, ctx: Context) -> None:
        """Bad input (exit 2) and a missing browser (exit 3), before any gate runs."""
        _checked_settings(ctx)

    def verified(self, config: Config, result: GateResult) -> list[VerifiedCommand]:
        ready = any(c.kind == "app" and c.status == "passed" for c in result.checks)
        if not ready or config.app is None:
            return []
        what = "the app (ready) in the runtime gate"
        return [VerifiedCommand(key="start", command=config.app.start, what=what)]

    def run(self, ctx: Context, blocked_by: str | None = None) -> GateResult:
        started = time.monotonic()
        planned = planned_checks(ctx)
        if not planned:
            return GateResult(name=self.name, checks=())
        settings = _checked_settings(ctx)
        if blocked_by:
            checks = tuple(_not_run(kind, check, blocked_by) for kind, check in planned)
        else:
            with _Session(ctx, settings) as session:
                checks = tuple(session.run_all(planned))
        return GateResult(name=self.name, checks=checks, duration=time.monotonic() - started)


def _checked_settings(ctx: Context) -> AppConfig | None:
    """The app to launch; bad input (exit 2) and a missing browser (exit 3) raise."""
    planned = planned_checks(ctx)
    settings = applaunch.settings_for(ctx)
    needs_app = any(not isinstance(check, CliCheck) or check.fresh_app for _, check in planned)
    if needs_app and settings is None:
        raise ConfigError(
            "the spec has HTTP or UI checks (or fresh_app) but no app to run them against; "
            "set app.start",
            file=ctx.config.source or None,
            field="app.start",
        )
    _files_inside(ctx, planned)
    if any(isinstance(check, UiCheck) for _, check in planned):
        from shipyard.gates.browser import find_chromium

        find_chromium(ctx.env)
    return settings


def _files_inside(ctx: Context, planned: Planned) -> None:
    """Uploads are files of the project: one that leads out of it (a link) is bad input."""
    index = {"http": 0, "cli": 0, "ui": 0}
    for kind, check in planned:
        i, index[kind] = index[kind], index[kind] + 1
        named: list[tuple[str, str]] = []
        if isinstance(check, HttpCheck):
            files = check.request.files or {}
            named = [(f"checks.http[{i}].request.files.{k}", v) for k, v in files.items()]
        elif isinstance(check, UiCheck):
            named = [
                (f"checks.ui[{i}].steps[{n}].upload.files[{j}]", name)
                for n, step in enumerate(check.steps)
                if step.upload is not None
                for j, name in enumerate(step.upload.files)
            ]
        for where, name in named:
            try:
                resolve_in_project(ctx.project, name)
            except ValueError as exc:
                source = ctx.spec.source if ctx.spec is not None else None
                raise SpecError(str(exc), file=source or None, field=where) from exc


APP_MARKS = ("{app_url}", "{port}", "SHIPYARD_APP_URL")
"""What in a CLI check's ``run``, ``env`` or ``stdin`` says it talks to the app."""


def needs_app(check: RuntimeCheck) -> bool:
    if not isinstance(check, CliCheck) or check.fresh_app:
        return True
    run = check.run if isinstance(check.run, str) else " ".join(check.run)
    texts = [run, check.stdin or "", *check.env.keys(), *check.env.values()]
    return any(mark in t for mark in APP_MARKS for t in texts)


def in_order(planned: Planned) -> list[Planned]:
    """The order rule: each check on its own, in written order, except neighbouring UI flows
    with ``parallel: true`` (and no ``fresh_app``), which form one group that may overlap."""
    groups: list[Planned] = []
    for kind, check in planned:
        if _overlaps(check) and groups and _overlaps(groups[-1][-1][1]):
            groups[-1].append((kind, check))
        else:
            groups.append([(kind, check)])
    return groups


def _overlaps(check: RuntimeCheck) -> bool:
    return isinstance(check, UiCheck) and check.parallel and not check.fresh_app


def planned_checks(ctx: Context) -> Planned:
    if ctx.spec is None:
        return []
    c = ctx.spec.checks
    planned: Planned = [("http", check) for check in c.http]
    planned += [("cli", check) for check in c.cli]
    return planned + [("ui", check) for check in c.ui]


class _Session:
    """The resources of one gate run: the app (when any), its cookie jars, the browser."""

    def __init__(self, ctx: Context, settings: AppConfig | None) -> None:
        from shipyard.gates.browser import Browser

        self.ctx, self.settings = ctx, settings
        self.app: applaunch.RunningApp | None = None
        self.scanner: LogScanner | None = None
        self.jars: Jars | None = None
        self.browser: Browser = Browser(ctx.env)
        self.launches = 0
        self.down: str | None = None
        """Why app-needing checks cannot run, once the app is not running."""
        self.variables: dict[str, Any] = {}
        self.expected: tuple[int, ...] = ()
        """The 5xx statuses the last check expected, which its late log lines may show."""
        self.own_tmp: Path | None = None

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.browser.close()
        finally:
            self._stop_app()
            if self.own_tmp is not None:
                shutil.rmtree(self.own_tmp, ignore_errors=True)

    def run_all(self, planned: Planned) -> list[CheckResult]:
        results: list[CheckResult] = []
        if self.settings is not None:
            warm = self.ctx.lanes.parallel and any(kind == "ui" for kind, _ in planned)
            with self.ctx.lanes.slot():
                results.append(self._first_launch(warm))
        for group in in_order(planned):
            if len(group) > 1 and self.ctx.lanes.parallel and self.app is not None:
                results += self._overlapping([c for _, c in group if isinstance(c, UiCheck)])
                continue
            for kind, check in group:
                if check.fresh_app and self.settings is not None and self.down is None:
                    self._last_words(results)
                    self._stop_app()
                    with self.ctx.lanes.slot():
                        results.append(self._launch(f"app-start-{check.id}"))
                if self.down is not None and needs_app(check):
                    results.append(_not_run(kind, check, self.down))
                    continue
                with self.ctx.lanes.slot():
                    results.append(self._checked(check))
        self._last_words(results)
        return results

    def _overlapping(self, flows: list[UiCheck]) -> list[CheckResult]:
        """``parallel`` UI flows at once against the running app, each in a browser of its own
        (the first in the session's); what the app logged meanwhile counts against the first."""
        from shipyard.gates.browser import Browser

        assert self.app is not None and self.jars is not None
        url, jars, ctx = self.app.base_url, self.jars, self.ctx
        cookies = [jars.browser_cookies(f.session) if f.session else [] for f in flows]

        def flow(index: int) -> CheckResult:
            with ctx.lanes.slot():
                if index == 0:
                    return self.browser.run_flow(flows[0], url, ctx, cookies[0])
                own = Browser(ctx.env)
                try:
                    return own.run_flow(flows[index], url, ctx, cookies[index])
                finally:
                    own.close()

        ran = ctx.lanes.map([partial(flow, i) for i in range(len(flows))])
        self.expected = ()
        return [self._after(result, ()) for result in ran]

    def _last_words(self, results: list[CheckResult]) -> None:
        """What the app logs shortly after the last check still counts, against that check."""
        if self.app is not None and results:
            time.sleep(FINAL_SETTLE)
            results[-1] = self._after(results[-1], self.expected)

    def _first_launch(self, warm: bool) -> CheckResult:
        """The first launch; with ``warm``, Chromium starts in this thread meanwhile (Playwright's
        sync API stays in the thread that started it), so the first flow does not wait for it."""
        if not warm:
            return self._launch("app-start")
        with ThreadPoolExecutor(1, thread_name_prefix="shipyard-app") as pool:
            launched = pool.submit(self._launch, "app-start")
            try:
                self.browser.warm()
            except BaseException:  # Ctrl-C: the app's launch must not hold the exit up
                process.kill_started()
                raise
            return launched.result()

    def _launch(self, check_id: str) -> CheckResult:
        from shipyard.gates.logscan import LogScanner
        from shipyard.gates.sessions import Jars

        assert self.settings is not None
        self.launches += 1
        launch = applaunch.launch(self.ctx, self.settings, check_id, self.launches)
        if launch.app is None:
            self.down = "the app did not start"
            return launch.check
        self.app = launch.app
        self.scanner = LogScanner([self.app.stdout, self.app.stderr])
        self.jars = Jars(self.app.base_url)
        # Shipyard's own readiness probes may have been answered 5xx while the app warmed up.
        self.expected = tuple(range(500, 600)) if self.settings.ready != "tcp" else ()
        return self._after(launch.check, self.expected)

    def _checked(self, check: RuntimeCheck) -> CheckResult:
        from shipyard.gates.clicheck import run_cli_check
        from shipyard.gates.http import run_http_check

        if isinstance(check, HttpCheck):
            assert self.jars is not None
            client = self.jars.client(check.session)
            outcome = run_http_check(check, client, self.variables, self.ctx)
            self.variables.update(outcome.captured)
            status = check.expect.status
            self.expected = (status,) if status and status >= 500 else ()
            return self._after(outcome.result, self.expected)
        self.expected = ()
        if isinstance(check, CliCheck):
            if self.app is None:
                result = run_cli_check(check, self.ctx, self._cli_variables(), None)
                return result if self.settings is None else _without_app(result)
            result = run_cli_check(check, self.ctx, self.app.variables, self.app.base_url)
            return self._after(result, ())
        assert self.app is not None and self.jars is not None
        cookies = self.jars.browser_cookies(check.session) if check.session else []
        flow = self.browser.run_flow(check, self.app.base_url, self.ctx, cookies)
        return self._after(flow, ())

    def _after(self, result: CheckResult, expected: tuple[int, ...]) -> CheckResult:
        """The app's own output while the check ran; an app that exited meanwhile."""
        from shipyard.gates.logscan import describe

        if self.app is None or self.scanner is None:
            return result
        time.sleep(LOG_SETTLE)
        problems = []
        findings = self.scanner.scan(expected)
        if findings:
            problems.append(describe(findings, result.id))
        code = self.app.exit_code()
        if code is not None:
            self.down = f"the app {applaunch.exit_words(code)} during {result.id!r}"
            problems.append(f"{self.down}\n{self.app.output_tail()}")
            self._stop_app()
        if not problems:
            return result
        if result.status != "passed":  # its own reason first, then what the app logged
            problems.insert(0, result.message)
        return replace(result, status="failed", message="\n".join(problems))

    def _cli_variables(self) -> dict[str, str]:
        if self.own_tmp is None:
            self.own_tmp = leftovers.temp_dir("cli")
        return {**self.ctx.variables, "tmp": str(self.own_tmp), "workdir": str(self.ctx.project)}

    def _stop_app(self) -> None:
        app, jars = self.app, self.jars
        self.app = self.jars = self.scanner = None
        try:
            if jars is not None:
                jars.close()
        finally:
            if app is not None:
                app.stop()


def _without_app(result: CheckResult) -> CheckResult:
    if result.status == "passed":
        return result
    note = "(the app was not running; SHIPYARD_APP_URL was not set)"
    return replace(result, message=f"{result.message}\n{note}")


def _not_run(kind: CheckKind, check: RuntimeCheck, reason: str) -> CheckResult:
    return result_of(check, kind, "not_run", reason)
