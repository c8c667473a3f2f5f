"""``shipyard verify``: every gate against the working tree, in order, with evidence."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from shipyard import workspace
from shipyard.config import Config, load_config
from shipyard.evidence import RunDir, new_run_id
from shipyard.gates import Context, Gate
from shipyard.results import GateResult, Verdict
from shipyard.spec import Spec, load_spec

DEFAULT_SPEC = "spec.yaml"


@dataclass(frozen=True, kw_only=True)
class GateEvent:
    """A gate starting (``result`` None) or ending, for callers that show progress."""

    run_id: str
    index: int
    total: int
    gate: str
    result: GateResult | None = None


OnGate = Callable[[GateEvent], None]


def default_gates() -> list[Gate]:
    from shipyard.gates.build import BuildGate
    from shipyard.gates.contract import ContractGate
    from shipyard.gates.runtime import RuntimeGate
    from shipyard.gates.tests import TestGate

    return [ContractGate(), BuildGate(), TestGate(), RuntimeGate()]


def find_spec(project: Path, spec: Path | None) -> Path | None:
    if spec is not None:
        return spec if spec.is_absolute() else Path.cwd() / spec
    default = project / DEFAULT_SPEC
    return default if default.is_file() else None


def verify(
    project: Path,
    *,
    spec_path: Path | None = None,
    base: str | None = None,
    gates: list[Gate] | None = None,
    spec: Spec | None = None,
    config: Config | None = None,
    evidence: Path | None = None,
    environ: Mapping[str, str] | None = None,
    on_gate: OnGate | None = None,
) -> Verdict:
    """Run the gates. Raises InputError (exit 2) or EnvironmentProblem (exit 3) before or while
    checking; returns the verdict otherwise."""
    started = time.monotonic()
    project = project.resolve()
    config = config or load_config(project)
    if spec is None and (path := find_spec(project, spec_path)) is not None:
        spec = load_spec(path)
    base_sha = workspace.resolve(project, base) if base else None
    if evidence is None:
        run_id = new_run_id()
        run = RunDir.create(project, run_id)
    else:
        run_id = evidence.name
        evidence.mkdir(parents=True)
        run = RunDir(evidence)
    run.write_json("config.json", config.model_dump(mode="json"))
    if spec is not None:
        run.write_json("spec.json", spec.model_dump(mode="json", by_alias=True))
    env = _env(environ)
    ctx = Context(project=project, config=config, spec=spec, run=run, base=base_sha, env=env)
    gates = gates if gates is not None else default_gates()
    for gate in gates:
        if (preflight := getattr(gate, "preflight", None)) is not None:
            preflight(ctx)  # bad input and a missing browser, before anything runs
    results: list[GateResult] = []
    blocked_by: str | None = None
    for index, gate in enumerate(gates):
        event = GateEvent(run_id=run_id, index=index, total=len(gates), gate=gate.name)
        if on_gate is not None:
            on_gate(event)
        result = gate.run(ctx, blocked_by)
        results.append(result)
        if on_gate is not None:
            on_gate(replace(event, result=result))
        run.write_json(f"gates/{gate.name}.json", result.to_json())
        if result.status == "failed" and gate.name == "build":
            blocked_by = "not run: the build gate failed"
    verdict = Verdict(
        run_id=run_id,
        run_dir=str(run.path),
        gates=tuple(results),
        duration=time.monotonic() - started,
        extra={"project": str(project), "spec": spec.source if spec else None, "base": base_sha},
    )
    run.write_json("verdict.json", verdict.to_json())
    return verdict


def _env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    return env
