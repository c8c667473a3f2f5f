"""Launching the app under test: a free port, a fresh temp folder, its own process group.

``launch`` runs ``app.setup`` (each command in the app's environment; the first that fails is
a failed check with its output, and nothing starts), starts ``app.start`` and waits until it is
ready: ``ready = "/path"`` is polled over HTTP until it answers with a status below 500 (a 5xx
means "up but not well": polling goes on); ``ready = "tcp"`` waits until the port accepts a
connection. Polls are 25 ms apart, bounded by
``ready_timeout``. An app that exits first, or never gets ready, is a failed ``app`` check whose
message quotes its last output. ``RunningApp.stop`` signals the whole group (SIGTERM, then
SIGKILL after ``stop_timeout``) and removes the temp folder; callers stop it in a ``finally``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from shipyard import leftovers, process
from shipyard.config import AppConfig
from shipyard.deadline import DeadlineExceeded, call_within
from shipyard.exceptions import PortError, SpecError
from shipyard.formats import validate
from shipyard.gates import Context
from shipyard.gates.build import command_check
from shipyard.results import CheckResult, Status

HOST = "127.0.0.1"
POLL_INTERVAL = 0.025
PROBE_TIMEOUT = 2.0
TAIL_LINES = 15


@dataclass(frozen=True, kw_only=True)
class RunningApp:
    proc: subprocess.Popen[bytes]
    command: str
    """``app.start`` as run, placeholders expanded."""
    port: int
    tmp: Path
    stdout: Path
    stderr: Path
    stop_timeout: float
    variables: Mapping[str, str]
    """``port``, ``tmp``, ``workdir`` and ``app_url``: what ``{name}`` expands to in commands and
    env."""

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def exit_code(self) -> int | None:
        return self.proc.poll()

    def stop(self) -> None:
        """The group is signalled, the leader reaped, the temp folder removed; safe to repeat."""
        try:
            process.stop_group(self.proc, grace=self.stop_timeout)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def output_tail(self) -> str:
        parts = []
        for label, path in (("stderr", self.stderr), ("stdout", self.stdout)):
            tail = process.tail_of(path, TAIL_LINES)
            if tail.strip():
                parts.append(f"{label}:\n" + "\n".join(f"  | {line}" for line in tail.splitlines()))
        return "\n".join(parts) or "(the app wrote nothing)"


@dataclass(frozen=True, kw_only=True)
class Launch:
    app: RunningApp | None
    """None when the app did not get ready; it has been stopped then."""
    check: CheckResult


def settings_for(ctx: Context) -> AppConfig | None:
    """``[app]`` from the config with the spec's ``app:`` fields laid over it (and validated)."""
    base = ctx.config.app
    override = ctx.spec.app if ctx.spec is not None else None
    if override is None:
        return base
    fields = override.model_dump(exclude_none=True)
    if base is None and "start" not in fields:
        return None
    merged = {**(base.model_dump() if base is not None else {}), **fields}
    source = ctx.spec.source if ctx.spec is not None else ""
    return validate(AppConfig, merged, file=source, lines={}, error=SpecError, prefix=("app",))


def expand(text: str, variables: Mapping[str, str]) -> str:
    """``{port}``, ``{tmp}``, ``{workdir}``; other braces are left alone (shell, JSON)."""
    for name, value in variables.items():
        text = text.replace("{" + name + "}", value)
    return text


def free_port() -> int:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
            return port
    except OSError as exc:
        raise PortError(f"no free port on {HOST}: {exc}") from exc


def launch(ctx: Context, settings: AppConfig, check_id: str, number: int) -> Launch:
    """Run ``app.setup``, start the app and wait for it; raises CommandNotFound before starting
    anything. A setup command that fails is a failed check quoting its output."""
    app = start_app(ctx, settings, number)
    if isinstance(app, CheckResult):
        return Launch(app=None, check=replace(app, id=check_id))
    started = time.monotonic()
    try:
        problem = wait_ready(app, settings)
    except BaseException:  # Ctrl-C while waiting: nothing is left behind
        app.stop()
        raise
    duration = time.monotonic() - started
    if problem is not None:
        app.stop()
        message = f"{problem}: {app.command}\n{app.output_tail()}"
        return Launch(app=None, check=_app_check(check_id, "failed", message, app, ctx, duration))
    message = f"ready on port {app.port} after {duration:.2f}s: {app.command}"
    return Launch(app=app, check=_app_check(check_id, "passed", message, app, ctx, duration))


def start_app(ctx: Context, settings: AppConfig, number: int) -> RunningApp | CheckResult:
    """``app.setup`` then ``app.start``, with ``{port}``, ``{tmp}``, ``{workdir}`` and the
    services' ports expanded; output to app/*.log. The failed check of a setup command that
    failed (nothing is started then)."""
    port = free_port()
    tmp = leftovers.temp_dir("app")
    variables = {
        **ctx.variables, "port": str(port), "tmp": str(tmp), "workdir": str(ctx.project),
        "app_url": f"http://{HOST}:{port}",
    }  # fmt: skip
    env = {**ctx.env, **{k: expand(v, variables) for k, v in settings.env.items()}}
    env["PORT"] = str(port)
    command = expand(settings.start, variables)
    argv = process.to_argv(command)
    suffix = "" if number == 1 else f"-{number}"
    stdout = ctx.run.file(f"app/stdout{suffix}.log")
    stderr = ctx.run.file(f"app/stderr{suffix}.log")
    try:
        process.require_program(argv, env, ctx.project, "app.start")
        for index, step in enumerate(settings.setup):
            log = ctx.run.file(f"app/setup{suffix}-{index + 1}.log")
            done = process.run(
                expand(step, variables), cwd=ctx.project, env=env, timeout=ctx.timeout, log=log,
                what=f"app.setup[{index}]",
            )  # fmt: skip
            if not done.ok:
                shutil.rmtree(tmp, ignore_errors=True)
                failed = command_check("app-start", "app", done, ctx)
                return replace(failed, message=f"app.setup[{index}] failed: {failed.message}")
        proc = process.start(argv, cwd=ctx.project, env=env, stdout=stdout, stderr=stderr)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return RunningApp(
        proc=proc, command=command, port=port, tmp=tmp, stdout=stdout, stderr=stderr,
        stop_timeout=settings.stop_timeout, variables=variables,
    )  # fmt: skip


def wait_ready(app: RunningApp, settings: AppConfig) -> str | None:
    """None once ready; else why not (it exited, or ``ready_timeout`` passed)."""
    deadline = time.monotonic() + settings.ready_timeout
    last = "no answer"
    while True:
        code = app.exit_code()
        if code is not None:
            return f"the app {exit_words(code)} before it was ready"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"the app was not ready after {settings.ready_timeout:g}s ({last})"
        if settings.ready == "tcp":
            ready, last = _tcp_ready(app.port, remaining)
        else:
            ready, last = _http_ready(f"{app.base_url}{settings.ready}", remaining)
        if ready:
            return None
        time.sleep(POLL_INTERVAL)


def exit_words(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _tcp_ready(port: int, remaining: float) -> tuple[bool, str]:
    try:
        with socket.create_connection((HOST, port), timeout=min(remaining, PROBE_TIMEOUT)):
            return True, "port open"
    except OSError as exc:
        return False, f"port {port}: {exc.strerror or exc}"


def _http_ready(url: str, remaining: float) -> tuple[bool, str]:
    import httpx

    def probe() -> int:  # the status is enough: the body is never read
        with httpx.stream("GET", url, timeout=min(remaining, PROBE_TIMEOUT), trust_env=False) as r:
            return r.status_code

    try:  # and the whole probe is bounded, so headers that trickle in cannot hold us either
        status = call_within(min(remaining, PROBE_TIMEOUT), probe)
    except (httpx.HTTPError, DeadlineExceeded) as exc:
        return False, f"GET {url}: {type(exc).__name__}"
    return status < 500, f"GET {url} answered {status}"


def _app_check(
    check_id: str, status: Status, message: str, app: RunningApp, ctx: Context, duration: float
) -> CheckResult:
    has_stderr = app.stderr.exists() and os.path.getsize(app.stderr) > 0
    evidence = app.stderr if has_stderr else app.stdout
    return CheckResult(
        id=check_id,
        kind="app",
        status=status,
        message=message,
        evidence=ctx.run.rel(evidence),
        duration=duration,
    )
