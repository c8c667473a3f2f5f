"""Gates: each takes a ``Context`` and returns a ``GateResult``; none trusts anyone's word."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from shipyard.config import Config
from shipyard.evidence import RunDir
from shipyard.lanes import Lanes
from shipyard.results import GateResult
from shipyard.spec import Spec


@dataclass(frozen=True, kw_only=True)
class Isolated:
    """What one run at the base revision runs with: its environment and test command, with the
    ports and folders of services of its own; ``problem``: why they could not be had."""

    env: Mapping[str, str]
    test: str | None
    problem: str | None = None


@dataclass(frozen=True, kw_only=True)
class Context:
    project: Path
    config: Config
    spec: Spec | None
    run: RunDir
    base: str | None = None
    """The base commit sha, with ``--base``."""
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    fail_to_pass_only: frozenset[str] | None = None
    """The required tests fail-to-pass applies to (hook mode: those added or changed since the
    base); None: all of them. No weakening always applies."""
    lanes: Lanes = field(default_factory=Lanes)
    """How many chains run at once (``[verify] parallel``); one after another by default."""
    variables: Mapping[str, str] = field(default_factory=dict)
    """Placeholders every command may use (``workdir``, ``services.NAME.port``); the app and the
    CLI checks add their own ``port`` and ``tmp``."""
    isolated: Callable[[str], AbstractContextManager[Isolated]] | None = None
    """For a run at the base revision labelled so: its own services and ``{tmp}``
    (:meth:`shipyard.services.Prepared.isolated`); None: the run shares ``env``."""

    @property
    def timeout(self) -> float:
        if self.spec is not None and self.spec.timeout is not None:
            return self.spec.timeout
        return self.config.commands.timeout


@dataclass(frozen=True, kw_only=True)
class VerifiedCommand:
    """A project command a gate ran and saw work: what the project's knowledge keeps."""

    key: str
    """``build`` (``build 2`` with several), ``test``, ``start``."""
    command: str
    what: str
    """Which check showed it, for the knowledge entry's evidence."""


class Gate(Protocol):
    """One gate. ``blocking``: when it fails, every gate after it is reported not run."""

    name: str
    blocking: bool

    def preflight(self, ctx: Context) -> None:
        """Bad input (InputError) and a missing tool (EnvironmentProblem), before any gate
        runs; nothing is started."""
        ...

    def run(self, ctx: Context, blocked_by: str | None) -> GateResult:
        """Check; when ``blocked_by`` names a failed gate, report every check as not run."""
        ...

    def verified(self, config: Config, result: GateResult) -> list[VerifiedCommand]:
        """The project's commands that ``result`` (this gate's) shows working."""
        ...


def preflight(gates: list[Gate], ctx: Context) -> None:
    """Every gate's preflight, in order: bad input and a missing browser before anything runs."""
    for gate in gates:
        gate.preflight(ctx)
