"""What gates return: typed, frozen values. The CLI renders them; ``--json`` serialises them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["passed", "failed", "not_run", "error"]
"""passed/failed: checked. not_run: a gate it depends on failed. error: could not check."""

CheckKind = Literal[
    "build", "test", "suite", "required", "fail_to_pass", "weakening", "coverage",
    "app", "http", "cli", "ui", "runtime", "service",
]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    id: str
    kind: CheckKind
    status: Status
    message: str = ""
    covers: tuple[str, ...] = ()
    evidence: str | None = None
    """Path of the evidence file, relative to the run directory."""
    duration: float | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckResult:
        """Back from :func:`_check_json` (a gate row of the ledger, a verdict file)."""
        return cls(
            id=data["id"], kind=data["kind"], status=data["status"],
            message=data.get("message") or "", covers=tuple(data.get("covers") or ()),
            evidence=data.get("evidence"), duration=data.get("duration"),
        )  # fmt: skip


def result_of(
    check: Any,
    kind: CheckKind,
    status: Status,
    message: str,
    evidence: str | None = None,
    duration: float | None = None,
) -> CheckResult:
    """The result of one of the spec's checks (anything with ``id`` and ``covers``)."""
    return CheckResult(
        id=check.id,
        kind=kind,
        status=status,
        message=message,
        covers=check.covers,
        evidence=evidence,
        duration=duration,
    )


@dataclass(frozen=True, kw_only=True)
class GateResult:
    name: str
    checks: tuple[CheckResult, ...]
    duration: float = 0.0
    message: str = ""

    @property
    def status(self) -> Status:
        return combine(c.status for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "duration": round(self.duration, 3),
            "message": self.message,
            "checks": [_check_json(c) for c in self.checks],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GateResult:
        """Back from :meth:`to_json`."""
        return cls(
            name=data["name"], checks=tuple(CheckResult.from_json(c) for c in data["checks"]),
            duration=data.get("duration") or 0.0, message=data.get("message") or "",
        )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Verdict:
    run_id: str
    run_dir: str
    gates: tuple[GateResult, ...]
    duration: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        return combine(g.status for g in self.gates)

    @property
    def exit_code(self) -> int:
        return {"passed": 0, "failed": 1, "not_run": 1, "error": 3}[self.status]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verdict:
        """The verdict back from its ``to_json`` document (a verify run in another process)."""
        gates = tuple(GateResult.from_json(g) for g in data["gates"])
        extra = {k: data.get(k) for k in ("project", "spec", "base")}
        return cls(run_id=data["run_id"], run_dir=data["run_dir"], gates=gates,
                   duration=data["duration"], extra=extra)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": "shipyard.verify/1",
            "run_id": self.run_id,
            "run_dir": self.run_dir,
            "verdict": self.status,
            "exit_code": self.exit_code,
            "duration": round(self.duration, 3),
            "gates": [g.to_json() for g in self.gates],
            **self.extra,
        }


def _check_json(check: CheckResult) -> dict[str, Any]:
    out = asdict(check)
    out["covers"] = list(check.covers)
    if check.duration is not None:
        out["duration"] = round(check.duration, 3)
    return out


def combine(statuses: Iterable[Status]) -> Status:
    """failed beats error beats not_run beats passed; nothing at all is passed."""
    seen = set(statuses)
    worst_first: tuple[Status, ...] = ("failed", "error", "not_run")
    for status in worst_first:
        if status in seen:
            return status
    return "passed"


VERDICT_KEYS = {"schema", "run_id", "run_dir", "verdict", "exit_code", "duration", "gates"}


def verdict_from_json(doc: dict[str, Any]) -> Verdict:
    """The inverse of ``Verdict.to_json`` (a stored verdict read back)."""
    gates = tuple(
        GateResult(
            name=g["name"],
            duration=float(g.get("duration") or 0.0),
            message=g.get("message", ""),
            checks=tuple(
                CheckResult(**{**c, "covers": tuple(c.get("covers") or ())}) for c in g["checks"]
            ),
        )
        for g in doc["gates"]
    )
    extra = {k: v for k, v in doc.items() if k not in VERDICT_KEYS}
    return Verdict(
        run_id=doc["run_id"],
        run_dir=doc["run_dir"],
        gates=gates,
        duration=float(doc.get("duration") or 0.0),
        extra=extra,
    )
