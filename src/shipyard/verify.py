"""``shipyard verify``: every gate against the working tree, with evidence.

The dependency rule, in one place (``stages``; ``[verify] parallel = false`` runs everything
one after another):

1. The gates run in stages, one stage after the other. A blocking gate (build) is a stage of
   its own: it starts after the gates before it, and when it fails the gates after it are
   reported not run. The gates between two blocking ones run at once.
2. Inside the tests gate, the head's suite and the runs at the base revision run at once;
   the base runs are bounded by the head suite's time (``gates/tests.py``).
3. Inside the runtime gate, the checks against one app launch keep their written order; only
   neighbouring UI flows with ``parallel: true`` overlap (``gates/runtime.py``).
4. At most ``os.cpu_count()`` units of work (a suite run, a runtime check) run at a time
   (``lanes.py``). Results and events keep the gates' order.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from shipyard import bytecode, leftovers, process, workspace
from shipyard import cache as verdicts
from shipyard.evidence import RunDir, new_run_id
from shipyard.exceptions import GitError
from shipyard.results import GateResult, Verdict

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.gates import Context, Gate
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
    verdict, watched = _run(
        project, path, base_sha, gates, spec, config, evidence, env, fail_to_pass, on_gate
    )
    verdict = replace(verdict, duration=time.monotonic() - started)
    if store is not None and key is not None:
        store.store(key, verdict, watched)
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
) -> tuple[Verdict, tuple[Path, ...]]:
    """The verdict, and the files outside the cache key it also depends on (the env_file)."""
    from shipyard import services
    from shipyard.config import load_config
    from shipyard.gates import Context
    from shipyard.lanes import Lanes
    from shipyard.spec import load_spec

    started = time.monotonic()
    bytecode.purge_ambiguous(project)  # a same-second, same-size rewrite would run as the old
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
    with services.prepared(project, config, env, run) as prepared:
        ctx = Context(
            project=project, config=prepared.config, spec=spec, run=run, base=base_sha,
            env=prepared.env, variables=prepared.variables, isolated=prepared.isolated,
            lanes=Lanes(config.verify.parallel),
            fail_to_pass_only=(
                changed_required(project, base_sha, spec)
                if fail_to_pass == "changed" and base_sha
                else None
            ),
        )  # fmt: skip
        gates = [*prepared.gates, *(gates if gates is not None else default_gates())]
        results = _gates(ctx, gates, run_id, on_gate, prepared.scrub)
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
    env_file = config.commands.env_file
    return verdict, (project / env_file,) if env_file else ()


def _gates(
    ctx: Context,
    gates: list[Gate],
    run_id: str,
    on_gate: OnGate | None,
    scrub: Callable[[GateResult], GateResult],
) -> list[GateResult]:
    """The gates in their stages (``stages``): a blocking gate alone, the ones between blocking
    gates at once in ``ctx.lanes``; results in the gates' order whatever finished first."""
    from shipyard.gates import preflight

    preflight(gates, ctx)
    results: list[GateResult] = []
    blocked_by: str | None = None
    lock = threading.Lock()

    def event(index: int, gate: Gate, result: GateResult | None = None) -> None:
        if on_gate is not None:
            with lock:
                on_gate(GateEvent(run_id=run_id, index=index, total=len(gates), gate=gate.name,
                                  result=result))  # fmt: skip

    def one(gate: Gate, blocked: str | None) -> GateResult:
        result = scrub(gate.run(ctx, blocked))
        ctx.run.write_json(f"gates/{gate.name}.json", result.to_json())
        return result

    try:
        for stage in stages(gates):
            for index, gate in stage:
                event(index, gate)
            blocked = blocked_by
            ran = ctx.lanes.map([partial(one, gate, blocked) for _, gate in stage])
            for (index, gate), result in zip(stage, ran, strict=True):
                results.append(result)
                event(index, gate, result)
                if result.status == "failed" and gate.blocking:
                    blocked_by = f"not run: the {gate.name} gate failed"
    finally:  # a service a build or a test started outside its process group ends here
        process.kill_adopted()
    return results


def stages(gates: list[Gate]) -> list[list[tuple[int, Gate]]]:
    """The gates (with their index) in stages that run one after another: a blocking gate
    alone, the gates between blocking ones together."""
    found: list[list[tuple[int, Gate]]] = []
    for index, gate in enumerate(gates):
        if gate.blocking or not found or found[-1][-1][1].blocking:
            found.append([])
        found[-1].append((index, gate))
    return found


def _env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    env.pop("PYTHONPYCACHEPREFIX", None)  # bytecode read from the tree, where stale is removed
    return env
