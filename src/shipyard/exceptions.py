"""Every error Shipyard raises on purpose, and the exit code each one maps to.

    ShipyardError                    base; never raised itself
    ├── InputError            (2)    bad input: config, spec, arguments
    │   ├── ConfigError              shipyard.toml / [tool.shipyard]
    │   ├── SpecError                the spec YAML
    │   └── RunNotFound              ``resume``/``log`` of a run the ledger does not have
    └── EnvironmentProblem    (3)    could not check: the machine, not the code
        ├── CommandNotFound          a configured command's program is not on PATH
        ├── GitError                 git missing, not a repository, a REV that does not exist
        ├── BrowserMissing           no Chromium to drive
        ├── PortError                no free port, or the port is taken
        ├── ModelProblem             no model configured, a bad key, an unreachable server
        │   └── ProviderUnavailable  provider errors outlasted the retries: the run is paused
        ├── RunBusy                  the run is being worked on by another live process
        ├── LedgerDamaged            ``.shipyard/shipyard.db`` is corrupt: move it aside
        └── CouldNotVerify           in a run, a verify whose verdict is ``error``: the run is
                                     paused, not the implementer's failed attempt

A gate that *checked* and found the code wanting does not raise: it returns a failed result
(exit 1). Third-party errors are mapped to these at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class ShipyardError(Exception):
    exit_code = 1


class InputError(ShipyardError):
    """Bad input. ``file``, ``field`` and ``line`` say where, when known."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = file
        self.field = field
        self.line = line
        self.detail = message
        where = file or ""
        if where and line is not None:
            where = f"{where}:{line}"
        prefix = ": ".join(p for p in (where, field) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(InputError):
    pass


class SpecError(InputError):
    pass


class EnvironmentProblem(ShipyardError):
    exit_code = 3


class CommandNotFound(EnvironmentProblem):
    pass


class GitError(EnvironmentProblem):
    pass


class BrowserMissing(EnvironmentProblem):
    pass


class PortError(EnvironmentProblem):
    pass


class RunNotFound(InputError):
    pass


class ModelProblem(EnvironmentProblem):
    """A model cannot be used: say what to set."""


class ProviderUnavailable(ModelProblem):
    """Rate limits, server errors or timeouts outlasted the retries; the run is paused."""


class RunBusy(EnvironmentProblem):
    pass


class LedgerDamaged(EnvironmentProblem):
    pass


class CouldNotVerify(EnvironmentProblem):
    """The gates could not establish what they compare against (a baseline, a browser)."""
