"""What a verify prepares around its gates: the commands' environment and the services.

* ``[commands] env_file`` is read, then ``[commands] env`` laid over it, both over the caller's
  environment; the result is the environment of every command the verify runs. The file's
  values (those of 4 characters or more) are scrubbed (:mod:`shipyard.scrub`) from every
  result message, the error a verify ends with, and every file of the run's evidence, after
  each gate and at the end.
* Placeholders: ``{workdir}`` (the project), ``{tmp}`` (a fresh folder for the commands) and
  ``{services.NAME.port}`` expand in ``[commands] build``/``test``/``env`` and in the services'
  ``start``, ``ready_command`` and ``env``; the app and the CLI checks get the service ports
  through ``Context.variables``.
* ``[services.NAME]`` (:mod:`shipyard.config_services`): each gets a free port on 127.0.0.1 and a
  temp folder, chosen before anything starts so that any command can name them. The ``services``
  gate starts them in order and waits for each to be ready; one that exits first or never gets
  ready fails its check ``service NAME`` (the gates after it are not run); a program that is not
  there is exit 3. Their ``env`` is exported to the build, the tests, the base runs, the app and
  the CLI checks. :func:`prepared` stops each whole process group (SIGTERM, then SIGKILL after
  ``stop_timeout``), then kills what they set loose (re-parented to Shipyard, the subreaper),
  and removes the temp folders in ``finally``.
* Each run at the base revision gets services and a ``{tmp}`` of its own
  (:meth:`Prepared.isolated`), so that what the head's run left in them cannot change it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from shipyard import leftovers, process
from shipyard.config import Config, config_line
from shipyard.config_services import ServiceConfig, read_env_file
from shipyard.evidence import RunDir
from shipyard.exceptions import CommandNotFound, ConfigError
from shipyard.gates import Context, Isolated, VerifiedCommand
from shipyard.gates import app as applaunch
from shipyard.results import CheckResult, GateResult, Status
from shipyard.scrub import Scrubber

GATE = "services"
BLOCKED = f"not run: the {GATE} gate failed"
COMMAND_POLL = 0.1
PROBE_LIMIT = 10.0
"""Seconds one try of a ``ready_command`` may take."""
TAIL_LINES = 15
_LEFT = re.compile(r"\{services\.[^{}]*\}")


@dataclass(frozen=True, kw_only=True)
class _Service:
    name: str
    settings: ServiceConfig
    port: int
    tmp: Path
    variables: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class _Layout:
    variables: dict[str, str]
    env: dict[str, str]
    services: list[_Service]
    build: tuple[str, ...]
    test: str | None
    tmp: Path | None


class Prepared:
    """The expanded config, the environment and the placeholders of one verify."""

    def __init__(self, project: Path, config: Config, environ: Mapping[str, str], run: RunDir):
        self.project, self.run, self.source = project, run, config.source
        self.temps: list[Path] = []
        self.running: list[tuple[_Service, subprocess.Popen[bytes]]] = []
        self.secrets: tuple[str, ...] = ()
        self.scrubber = Scrubber(())
        try:
            self._prepare(config, environ)
        except BaseException:  # the temp folders made so far go
            self.close()
            raise

    def _prepare(self, config: Config, environ: Mapping[str, str]) -> None:
        self.secrets = self._secrets(config, self.project)
        if config.commands.cwd is not None:
            folder = config.commands.folder(self.project)
            if not folder.is_dir():
                what = "is not a folder" if folder.exists() else "does not exist"
                raise ConfigError(
                    f"{folder} {what}: the commands run in it; give a folder of the project",
                    file=config.source or None, field="commands.cwd",
                    line=config_line(config, "commands", "cwd"),
                )  # fmt: skip
        self.original, self.environ = config, environ
        layout = self._layout()
        self.variables: dict[str, str] = layout.variables
        self.env, self.services = layout.env, layout.services
        commands = config.commands.model_copy(update={"build": layout.build, "test": layout.test})
        self.config = config.model_copy(update={"commands": commands})
        self.gates = [ServicesGate(self)] if self.services else []

    def _layout(self) -> _Layout:
        """Free ports, fresh temp folders and everything expanded with them: the verify's own,
        or (``isolated``) one run's at the base revision."""
        project, config = self.project, self.original
        commands = config.commands
        shared = {"workdir": str(project)}
        ports = {name: applaunch.free_port() for name in config.services}
        shared |= {f"services.{name}.port": str(port) for name, port in ports.items()}
        own, scratch = dict(shared), self._temp("commands") if self.needs_tmp else None
        if scratch is not None:
            own["tmp"] = str(scratch)
        env = {**self.environ, **self.file_values}
        env |= {k: self._expand(v, own, f"commands.env.{k}") for k, v in commands.env.items()}
        services = [
            _Service(name=name, settings=s, port=ports[name], tmp=(tmp := self._temp("service")),
                     variables={**shared, "port": str(ports[name]), "tmp": str(tmp)})
            for name, s in config.services.items()
        ]  # fmt: skip
        for service in services:
            for key, value in service.settings.env.items():
                where = f"services.{service.name}.env.{key}"
                env[key] = self._expand(value, service.variables, where)
        build = tuple(
            self._expand(c, own, f"commands.build[{i}]") for i, c in enumerate(commands.build)
        )
        test = self._expand(commands.test, own, "commands.test") if commands.test else None
        return _Layout(variables=shared, env=env, services=services, build=build, test=test,
                       tmp=scratch)  # fmt: skip

    @property
    def needs_tmp(self) -> bool:
        commands = self.original.commands
        texts = [*commands.build, commands.test or "", *commands.env.values()]
        return any("{tmp}" in text for text in texts)

    @contextmanager
    def isolated(self, label: str) -> Iterator[Isolated]:
        """For one run at the base revision: services of its own (fresh ports and folders,
        started and ready) and a ``{tmp}`` of its own, so that nothing the head's run left in
        them changes the base's outcomes; stopped on the way out. When a service does not get
        ready, ``problem`` says so and the run must not happen (it could not be isolated)."""
        if not self.services and not self.needs_tmp:
            yield Isolated(env=self.env, test=self.config.commands.test)
            return
        layout = self._layout()
        running: list[tuple[_Service, subprocess.Popen[bytes]]] = []
        problem = None
        try:
            for service in layout.services:
                check = self.start(service, running, f"{label}/services")
                if check.status != "passed":
                    problem = (
                        f"could not be isolated from the head's run: its own service "
                        f"{service.name} did not get ready: {check.message}"
                    )
                    break
            yield Isolated(env=layout.env, test=layout.test, problem=problem)
        finally:
            try:
                self._stop(running)
            finally:
                for service in layout.services:
                    shutil.rmtree(service.tmp, ignore_errors=True)
                if layout.tmp is not None:
                    shutil.rmtree(layout.tmp, ignore_errors=True)

    def _secrets(self, config: Config, project: Path) -> tuple[str, ...]:
        self.file_values: dict[str, str] = {}
        if config.commands.env_file is not None:
            path = project / config.commands.env_file
            line = config_line(config, "commands", "env_file")
            self.file_values = read_env_file(path, source=config.source, line=line, project=project)
        self.scrubber = Scrubber(self.file_values.values())
        return self.scrubber.secrets

    def _temp(self, kind: str) -> Path:
        path = leftovers.temp_dir(kind)
        self.temps.append(path)
        return path

    def _expand(self, text: str, variables: Mapping[str, str], where: str) -> str:
        expanded = applaunch.expand(text, variables)
        if (left := _LEFT.search(expanded)) is not None:
            known = ", ".join(sorted(f"services.{n}.port" for n in self.original.services)) or (
                "none: no [services.NAME] is configured"
            )
            raise ConfigError(
                f"{left.group(0)} names no service (known: {known})",
                file=self.source or None, field=where,
            )  # fmt: skip
        return expanded

    # -- the evidence ---------------------------------------------------------------------------

    def scrub_text(self, text: str) -> str:
        return self.scrubber.text(text)

    def scrub_error(self, exc: BaseException) -> None:
        self.scrubber.error(exc)

    def scrub(self, result: GateResult) -> GateResult:
        """``result`` without the env_file's values, and the run's files without them too."""
        if not self.secrets:
            return result
        self.scrub_files()
        checks = tuple(replace(c, message=self.scrub_text(c.message)) for c in result.checks)
        return replace(result, checks=checks, message=self.scrub_text(result.message))

    def scrub_files(self) -> None:
        self.scrubber.files(self.run.path)

    # -- the services ---------------------------------------------------------------------------

    def start(
        self, service: _Service, running: list[tuple[_Service, subprocess.Popen[bytes]]],
        logs: str = "services",
    ) -> CheckResult:  # fmt: skip
        """Start one service (added to ``running``) and wait until it is ready; the check says
        how it went. Its output goes to ``logs/NAME.log`` in the run's evidence."""
        check_id, s = service.name, service.settings
        command = self._expand(s.start, service.variables, f"services.{service.name}.start")
        argv = process.to_argv(command)
        env = {**self.env, "PORT": str(service.port)}
        process.require_program(argv, env, self.project, f"services.{service.name}.start")
        log = self.run.file(f"{logs}/{service.name}.log")
        started = time.monotonic()
        proc = process.start(argv, cwd=self.project, env=env, stdout=log)
        running.append((service, proc))
        problem = self._wait(service, proc, env, logs)
        duration = time.monotonic() - started
        evidence = self.run.rel(log)
        if problem is None:
            message = f"ready on port {service.port} after {duration:.2f}s"
            return _check(check_id, "passed", message, evidence, duration)
        tail = process.tail_of(log, TAIL_LINES)
        if proc.poll() == 127 and ("not found" in tail or "No such file" in tail):
            raise CommandNotFound(
                f"services.{service.name}.start: a program in {command!r} was not found:\n{tail}"
            )
        shown = "\n".join(f"  | {line}" for line in tail.splitlines()) or "  (it wrote nothing)"
        message = f"{problem}: {command}\n{shown}"
        return _check(check_id, "failed", message, evidence, duration)

    def _wait(
        self, service: _Service, proc: subprocess.Popen[bytes], env: Mapping[str, str], logs: str
    ) -> str | None:
        s = service.settings
        deadline = time.monotonic() + s.ready_timeout
        last = "no answer"
        probe = (
            self._expand(s.ready_command, service.variables, f"services.{service.name}.ready")
            if s.ready_command
            else None
        )
        while True:
            code = proc.poll()
            if code is not None:
                return f"the service {applaunch.exit_words(code)} before it was ready"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return f"the service was not ready after {s.ready_timeout:g}s ({last})"
            if probe is not None:
                result = process.run(
                    probe, cwd=self.project, env=env, timeout=min(remaining, PROBE_LIMIT),
                    log=self.run.file(f"{logs}/{service.name}.ready.log"),
                    what=f"services.{service.name}.ready_command",
                )  # fmt: skip
                how = "timed out" if result.timed_out else f"exit {result.exit_code}"
                ready, last = result.ok, f"{probe}: {how}"
            elif s.ready == "tcp":
                ready, last = applaunch._tcp_ready(service.port, remaining)
            else:
                url = f"http://{applaunch.HOST}:{service.port}{s.ready}"
                ready, last = applaunch._http_ready(url, remaining)
            if ready:
                return None
            time.sleep(COMMAND_POLL if probe is not None else applaunch.POLL_INTERVAL)

    @staticmethod
    def _stop(running: list[tuple[_Service, subprocess.Popen[bytes]]]) -> None:
        while running:
            service, proc = running.pop()
            process.stop_group(proc, grace=service.settings.stop_timeout)

    def close(self) -> None:
        """Every service stopped (last started first), every temp folder removed."""
        try:
            self._stop(self.running)
            # what a service set loose (a daemon's double fork, `env -i setsid ...`) was
            # re-parented to Shipyard, the subreaper, when the service's group was stopped
            process.kill_adopted()
        finally:
            for path in self.temps:
                shutil.rmtree(path, ignore_errors=True)
            self.scrub_files()


class ServicesGate:
    """Starts the configured services in order; the first that does not get ready ends it."""

    name = GATE
    blocking = True
    """The tests and the app need the services: when one is not ready, nothing else runs."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared

    def preflight(self, ctx: Context) -> None:
        """Nothing to check before the gates: a missing program is found when it starts."""

    def verified(self, config: Config, result: GateResult) -> list[VerifiedCommand]:
        return []

    def run(self, ctx: Context, blocked_by: str | None = None) -> GateResult:
        started = time.monotonic()
        checks: list[CheckResult] = []
        failed = blocked_by
        for service in self.prepared.services:
            if failed:
                checks.append(_check(service.name, "not_run", failed, None, None))
                continue
            check = self.prepared.start(service, self.prepared.running)
            checks.append(check)
            if check.status != "passed":
                failed = f"not run: service {check.id} did not get ready"
        return GateResult(name=GATE, checks=tuple(checks), duration=time.monotonic() - started)


def _check(
    check_id: str, status: Status, message: str, evidence: str | None, duration: float | None
) -> CheckResult:
    return CheckResult(
        id=check_id, kind="service", status=status, message=message, evidence=evidence,
        duration=duration,
    )  # fmt: skip


@contextmanager
def prepared(
    project: Path, config: Config, environ: Mapping[str, str], run: RunDir
) -> Iterator[Prepared]:
    """The verify's environment and services, stopped and cleaned up however it ends."""
    prep = Prepared(project, config, environ, run)
    try:
        yield prep
    except BaseException as exc:  # a message may quote a command line or its output
        prep.scrub_error(exc)
        raise
    finally:
        prep.close()
