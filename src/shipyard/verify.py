"""``shipyard verify``: every gate against the working tree, in order, with evidence."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from shipyard import cache as verdicts
from shipyard import leftovers, process, workspace
from shipyard.evidence import RunDir, new_run_id
from shipyard.exceptions import GitError
from shipyard.results import GateResult, Verdict

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.gates import Gate
    from shipyard.spec import Spec

DEFAULT_SPEC = "spec.yaml"
FailToPass = Literal["all", "changed"]


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
    use_cache: bool = True,
    tree: str | None = None,
    fail_to_pass: FailToPass = "all",
    on_gate: OnGate | None = None,
) -> Verdict:
    """Run the gates, or answer from the verdict cache when every input is the same as a stored
    verdict's (``use_cache=False`` forces a run; custom ``gates`` are never cached). ``tree``:
    the submission's git tree when the caller has it. ``fail_to_pass="changed"`` (hook mode)
    applies fail-to-pass only to required tests whose file was added or changed since the base.
    Raises InputError (exit 2) or EnvironmentProblem (exit 3) before or while checking; returns
    the verdict otherwise."""
    started = time.monotonic()
    project = project.resolve()
    leftovers.clean(project)  # what a verify killed with kill -9 left: its base worktree, /tmp
    path = find_spec(project, spec_path) if spec is None else None
    base_sha = workspace.resolve(project, base) if base else None
    env = _env(environ)
    store = verdicts.VerdictCache.of(project) if use_cache and gates is None else None
    key = None
    if store is not None:
        try:
            key = cache_key(project, path, spec, config, base_sha, env, tree, fail_to_pass)
        except GitError:  # the tree could not be read: no cache, the gates run
            store = None
        if store and key and (hit := store.lookup(key, evidence)) is not None:
            return replace(hit, duration=time.monotonic() - started)
    verdict = _run(
        project, path, base_sha, gates, spec, config, evidence, env, fail_to_pass, on_gate
    )
    verdict = replace(verdict, duration=time.monotonic() - started)
    if store is not None and key is not None:
        store.store(key, verdict)
    return verdict


def cache_key(
    project: Path,
    spec_path: Path | None,
    spec: Spec | None,
    config: Config | None,
    base_sha: str | None,
    env: Mapping[str, str],
    tree: str | None = None,
    fail_to_pass: FailToPass = "all",
) -> verdicts.KeyParts:
    """The verdict cache's key for these inputs (models by their JSON, files by their bytes)."""
    return verdicts.key_parts(
        project,
        spec=spec.model_dump_json(by_alias=True) if spec else verdicts.file_identity(spec_path),
        config=config.model_dump_json() if config else verdicts.config_identity(project),
        base=base_sha, environ=env, tree=tree, mode=fail_to_pass,
    )  # fmt: skip


def changed_required(project: Path, base_sha: str, spec: Spec | None) -> frozenset[str]:
    """Required tests whose file was added or changed since ``base_sha`` (untracked included)."""
    if spec is None:
        return frozenset()
    diff = workspace.git("diff", "--name-only", "--relative", "-z", base_sha, cwd=project)
    new = workspace.git("ls-files", "--others", "--exclude-standard", "-z", cwd=project)
    changed = set((diff.stdout + new.stdout).split("\0"))
    return frozenset(r.id for r in spec.checks.tests.required if r.file in changed)


def _run(
    project: Path,
    spec_path: Path | None,
    base_sha: str | None,
    gates: list[Gate] | None,
    spec: Spec | None,
    config: Config | None,
    evidence: Path | None,
    env: dict[str, str],
    fail_to_pass: FailToPass,
    on_gate: OnGate | None = None,
) -> Verdict:
    from shipyard.config import load_config
    from shipyard.gates import Context
    from shipyard.spec import load_spec

    started = time.monotonic()
    config = config or load_config(project)
    if spec is None and spec_path is not None:
        spec = load_spec(spec_path)
    if evidence is None:
        run_id = new_run_id()
        run = RunDir.create(project, run_id)
    else:
        run_id = evidence.name
        evidence.mkdir(parents=True, exist_ok=True)  # the caller chose it: a fresh one
        run = RunDir(evidence)
    run.write_json("config.json", config.model_dump(mode="json"))
    if spec is not None:
        run.write_json("spec.json", spec.model_dump(mode="json", by_alias=True))
    ctx = Context(
        project=project, config=config, spec=spec, run=run, base=base_sha, env=env,
        fail_to_pass_only=(
            changed_required(project, base_sha, spec)
            if fail_to_pass == "changed" and base_sha
            else None
        ),
    )  # fmt: skip
    gates = gates if gates is not None else default_gates()
    for gate in gates:
        if (preflight := getattr(gate, "preflight", None)) is not None:
            preflight(ctx)  # bad input and a missing browser, before anything runs
    results: list[GateResult] = []
    blocked_by: str | None = None
    try:
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
    finally:  # a service a build or a test started outside its process group ends here
        process.kill_adopted()
    verdict = Verdict(
        run_id=run_id,
        run_dir=str(run.path),
        gates=tuple(results),
        duration=time.monotonic() - started,
        extra={
            "project": str(project), "spec": spec.source if spec else None, "base": base_sha,
            "cached": False, "cached_from": None,
        },
    )  # fmt: skip
    run.write_json("verdict.json", verdict.to_json())
    return verdict


def _env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    return env
