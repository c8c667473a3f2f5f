"""Gates: each takes a ``Context`` and returns a ``GateResult``; none trusts anyone's word."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from shipyard.config import Config
from shipyard.evidence import RunDir
from shipyard.results import GateResult
from shipyard.spec import Spec


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

    @property
    def timeout(self) -> float:
        if self.spec is not None and self.spec.timeout is not None:
            return self.spec.timeout
        return self.config.commands.timeout


class Gate(Protocol):
    name: str

    def run(self, ctx: Context, blocked_by: str | None) -> GateResult:
        """Check; when ``blocked_by`` names a failed gate, report every check as not run."""
        ...
