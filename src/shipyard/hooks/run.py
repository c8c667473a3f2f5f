"""``shipyard hook AGENT``: verify where the agent stops; block with what failed, or allow.

Never blocks on its own trouble: bad input, a project it cannot check, a budget run out, a crash
all allow the stop with a warning. Loop safety is Shipyard's: a record per agent session counts
blocks; the same failure twice turns the reason into a diagnosis brief; after ``[hooks]
max_blocks`` blocks the stop is allowed and the user told plainly what still fails.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard import process, workspace
from shipyard.evidence import new_run_id, state_dir
from shipyard.exceptions import EnvironmentProblem, GitError, InputError
from shipyard.hooks import reasons, session
from shipyard.hooks.protocols import AGENTS, TIMEOUTS, Answer, BadEvent, Event, parse

MAX_STDIN = 1_000_000
MARGIN = 0.1
"""The share of the agent's hook timeout kept free by the default budget."""
GATES = ("contract", "build", "tests", "runtime")
CONFIG_NAMES = ("shipyard.toml",)


def handle(agent: str, data: bytes, environ: Mapping[str, str]) -> Answer:
    if agent not in AGENTS:
        return Answer(
            warning=f"shipyard hook: unknown agent {agent!r} (one of: {', '.join(AGENTS)}); "
            "nothing was checked and the stop is allowed"
        )
    try:
        event = parse(agent, data)
    except BadEvent as exc:
        return Answer(warning=f"shipyard hook {agent}: {exc}; nothing was checked")
    if event.kind == "other" or event.aborted:
        return Answer()
    project = find_project(Path(event.cwd))
    if project is None:
        return Answer(
            warning=f"shipyard hook: no shipyard.toml (or [tool.shipyard]) at or above "
            f"{event.cwd}; nothing was checked (run `shipyard init --agent {agent}`)"
        )
    wait = default_budget(agent)
    try:
        with session.locked(project, wait):
            if event.kind == "session_start":
                return _session_start(project, event)
            return _stop(project, event, environ, time.monotonic())
    except session.LockTimeout as exc:
        return Answer(warning=f"shipyard hook: {exc}; the stop is allowed unchecked")


def default_budget(agent: str) -> float:
    return TIMEOUTS[agent] * (1 - MARGIN)


def find_project(cwd: Path) -> Path | None:
    """The nearest folder at or above ``cwd`` with Shipyard's config, not past the repository."""
    for folder in (cwd, *cwd.parents):
        if (folder / "shipyard.toml").is_file():
            return folder
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.shipyard" in pyproject.read_text(errors="replace"):
            return folder
        if (folder / ".git").exists():
            return None
    return None


def head(project: Path) -> str | None:
    try:
        proc = workspace.git("rev-parse", "--verify", "--quiet", "HEAD", cwd=project, check=False)
    except GitError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _session_start(project: Path, event: Event) -> Answer:
    record = session.load(project, event.agent, event.session)
    if record.base is None:
        record.base = head(project)
        session.save(project, record)
    return Answer()


def _stop(project: Path, event: Event, environ: Mapping[str, str], started: float) -> Answer:
    record = session.load(project, event.agent, event.session)
    if record.base is None:  # no SessionStart hook: the session's first stop is its base
        record.base = head(project)
        session.save(project, record)
    tree, doc = _cached(project, record.base, environ)
    if doc is None:
        try:
            from shipyard.config import load_config

            config = load_config(project)
        except InputError as exc:
            return Answer(warning=f"shipyard hook: bad config: {exc}; the stop is allowed")
        budget = config.hooks.budget or default_budget(event.agent)
        doc, answer = _run_verify(project, record.base, environ, budget - _since(started))
        if answer is not None:
            return answer
    assert doc is not None
    return _decide(project, record, doc, tree)


def _since(started: float) -> float:
    return time.monotonic() - started


def _cached(
    project: Path, base: str | None, environ: Mapping[str, str]
) -> tuple[str | None, dict[str, Any] | None]:
    """The tree's id and the stored verdict for it, if the cache has one."""
    from shipyard.cache import VerdictCache
    from shipyard.verify import _env, cache_key, find_spec

    try:
        parts = cache_key(
            project, find_spec(project, None), None, None, base, _env(environ),
            fail_to_pass="changed",
        )  # fmt: skip
    except GitError:
        return None, None
    hit = VerdictCache.of(project).lookup(parts)
    return parts.tree, hit.to_json() if hit is not None else None


def _run_verify(
    project: Path, base: str | None, environ: Mapping[str, str], budget: float
) -> tuple[dict[str, Any] | None, Answer | None]:
    if budget <= 1:
        return None, Answer(warning="shipyard hook: no time left in [hooks] budget; unchecked")
    run_id = new_run_id("h")
    evidence = state_dir(project) / "runs" / run_id
    logs = session.folder(project) / "calls"
    logs.mkdir(exist_ok=True)
    out = logs / f"{run_id}.json"
    argv = [sys.executable, "-m", "shipyard.hooks.child", str(project), base or "",
            str(evidence), str(out)]  # fmt: skip
    env = {**environ, "PYTHONUNBUFFERED": "1"}
    try:
        result = process.run(argv, cwd=project, env=env, timeout=budget,
                             log=logs / f"{run_id}.log", what="shipyard verify")  # fmt: skip
    except EnvironmentProblem as exc:
        return None, Answer(warning=f"shipyard hook: could not check: {exc}; the stop is allowed")
    if result.timed_out:
        return None, Answer(warning=_over_budget(evidence, budget))
    try:
        doc = json.loads(out.read_text())
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        tail = "\n".join(result.tail.splitlines()[-5:])
        return None, Answer(
            warning=f"shipyard hook: verify crashed ({exc}; log {result.log}):\n{tail}\n"
            "the stop is allowed unchecked"
        )
    if "error" in doc:
        kind = "bad input" if doc.get("exit_code") == 2 else "could not check"
        return None, Answer(warning=f"shipyard hook: {kind}: {doc['error']}; the stop is allowed")
    return doc["verdict"], None


def _over_budget(evidence: Path, budget: float) -> str:
    done = {p.stem for p in (evidence / "gates").glob("*.json")}
    left = [g for g in GATES if g not in done]
    names = _spec_checks(evidence, left)
    listed = f" (checks: {', '.join(names[:12])})" if names else ""
    return (
        f"shipyard hook: the checks did not finish within the budget of {budget:.0f}s; "
        f"not run: {', '.join(left) or 'none'}{listed}. The stop is allowed UNVERIFIED; raise "
        f"[hooks] budget (and the agent's hook timeout) or run shipyard verify."
    )


def _spec_checks(evidence: Path, gates: list[str]) -> list[str]:
    try:
        spec = json.loads((evidence / "spec.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    checks = spec.get("checks", {})
    kinds = {"tests": ["tests"], "runtime": ["http", "cli", "ui"]}
    names: list[str] = []
    for gate in gates:
        for kind in kinds.get(gate, []):
            items = checks.get(kind, {})
            items = items.get("required", []) if kind == "tests" else items
            names += [str(c.get("id")) for c in items if isinstance(c, dict)]
    return names


def _decide(project: Path, record: session.Record, doc: dict[str, Any], tree: str | None) -> Answer:
    status = doc.get("verdict")
    if status == "passed":
        record.reset()
        session.save(project, record)
        return Answer()
    if status == "error":
        return Answer(
            warning="shipyard hook: could not check:\n"
            f"{reasons.failures_text(doc, project)}\nthe stop is allowed"
        )
    from shipyard.config import load_config

    try:
        max_blocks = load_config(project).hooks.max_blocks
    except InputError as exc:
        return Answer(warning=f"shipyard hook: bad config: {exc}; the stop is allowed")
    if record.blocks >= max_blocks:
        record.reset()
        session.save(project, record)
        return Answer(warning=reasons.gave_up(doc, project, max_blocks))
    earlier = list(record.tried)
    times = record.blocked(reasons.fingerprint(doc), reasons.summary(doc), tree)
    session.save(project, record)
    if times >= 2:
        tried = _what_was_tried(project, earlier, tree)
        return Answer(block=reasons.diagnosis_brief(doc, project, record, max_blocks, tried))
    return Answer(block=reasons.block_reason(doc, project, record, max_blocks))


def _what_was_tried(project: Path, earlier: list[session.Tried], now: str | None) -> list[str]:
    lines = []
    for n, tried in enumerate(earlier, start=1):
        changed = _changed_between(project, tried.tree, now)
        lines.append(f"- block {n}: {tried.summary}; files changed since: {changed}")
    return lines[-5:]


def _changed_between(project: Path, old: str | None, new: str | None) -> str:
    if not old or not new or not old.startswith("git:") or not new.startswith("git:"):
        return "unknown"
    try:
        out = workspace.git("diff", "--name-only", old[4:], new[4:], cwd=project).stdout
    except GitError:
        return "unknown"
    names = out.split()
    return ", ".join(names[:8]) + (" …" if len(names) > 8 else "") if names else "none"


def write(agent: str, answer: Answer, stdout: Any, stderr: Any) -> None:
    out, err = answer.render(agent if agent in AGENTS else "claude")
    if err:
        stderr.write(err)
    stdout.write(json.dumps(out) + "\n")
    stdout.flush()
