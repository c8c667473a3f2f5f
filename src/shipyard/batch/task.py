"""One task on a worker: a fresh checkout, ``shipyard run`` in it, a summary row and the evidence.

Runs wherever the engine puts it (a thread of the local pool, a Ray worker on another machine),
so it takes only a ``TaskPlan`` and returns only a ``TaskResult``: no database, no shared
folder. Its folder is new on every try and removed at the end, so a retried task starts clean.
The run is a subprocess started through ``process.py`` (its own process group, a timeout, the
whole tree stopped at the end, on cancel and on timeout).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard import environment, process
from shipyard.batch.suite import Outcome, TaskPlan
from shipyard.exceptions import ShipyardError

EVIDENCE_LIMIT = 64 * 1024 * 1024
"""Bytes of packed evidence one task may return; larger files are left out (and said so)."""
FILE_LIMIT = 8 * 1024 * 1024
GIT_ENV = {
    "GIT_AUTHOR_NAME": "shipyard-batch", "GIT_AUTHOR_EMAIL": "batch@localhost",
    "GIT_COMMITTER_NAME": "shipyard-batch", "GIT_COMMITTER_EMAIL": "batch@localhost",
}  # fmt: skip
IGNORED = (".shipyard", ".git")
SHIPPED_BUNDLE = "shipped/tree.bundle"


@dataclass(frozen=True, kw_only=True)
class TaskResult:
    id: str
    digest: str
    outcome: Outcome
    attempts: int | None
    tokens: int | None
    """None when the run reported no usage (unknown, not 0)."""
    seconds: float
    run_id: str | None
    exit_code: int | None
    reason: str
    evidence: bytes = b""
    """A gzipped tar of the run's ``.shipyard/`` folder and its console log."""


def run_task(plan: TaskPlan, cancel: threading.Event | None = None) -> TaskResult:
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix=f"shipyard-batch-{plan.id}-"))
    try:
        try:
            checkout = _checkout(plan, folder)
            from shipyard.workspace import git

            base = git("rev-parse", "HEAD", cwd=checkout).stdout.strip()
        except (ShipyardError, OSError) as exc:
            return _error(plan, started, f"checkout failed: {exc}")
        return _run(plan, folder, (checkout, base), started, cancel)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _checkout(plan: TaskPlan, folder: Path) -> Path:
    from shipyard.workspace import git

    tree = folder / "project"
    if plan.commit is None:
        shutil.copytree(plan.project, tree, symlinks=True, ignore=shutil.ignore_patterns(*IGNORED))
        git("init", "-q", "-b", "main", cwd=tree)
        _apply_settings(plan, tree)
        git("add", "-A", cwd=tree)
        git("commit", "-q", "--no-verify", "-m", f"batch task {plan.id}", cwd=tree, env=GIT_ENV)
    else:
        git("clone", "-q", "--no-checkout", plan.project, str(tree), cwd=folder)
        git("checkout", "-q", "-B", "main", plan.commit, cwd=tree)
        if _apply_settings(plan, tree):
            git("commit", "-q", "--no-verify", "-am", "batch settings", cwd=tree, env=GIT_ENV)
    if plan.knowledge_in is not None:
        _import_knowledge(plan.knowledge_in, folder, tree)
    return tree


def _apply_settings(plan: TaskPlan, tree: Path) -> bool:
    """The suite's budget becomes the checkout's ``[budget]`` table; a pass without knowledge
    sets ``[knowledge] enabled = false``. In ``shipyard.toml``, else in ``[tool.shipyard]`` of
    ``pyproject.toml`` (its ``[tool.shipyard.budget]``, ...). True when the file was changed."""
    tables = []
    if plan.budget:
        tables.append(("budget", "the suite sets a budget", dict(sorted(plan.budget.items()))))
    if not plan.knowledge:
        tables.append(("knowledge", "the benchmark turns knowledge off", {"enabled": False}))
    if not tables:
        return False
    config, prefix = tree / "shipyard.toml", ""
    if not config.is_file():
        config, prefix = tree / "pyproject.toml", "tool.shipyard."
    text = original = config.read_text(encoding="utf-8") if config.is_file() else ""
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ShipyardError(f"{config}: {exc}") from None
    if prefix and _table(text, "tool.shipyard") is None:
        raise ShipyardError(
            f"{tables[0][1]}, but the project has no shipyard.toml and no [tool.shipyard] in "
            "pyproject.toml"
        )
    for name, why, values in tables:
        text = _set_table(text, f"{prefix}{name}", values, f"{why}, but {config.name}")
    if text == original:
        return False
    config.write_text(text, encoding="utf-8")
    return True


def _set_table(text: str, name: str, values: dict[str, Any], why: str) -> str:
    """``text`` (TOML) with ``values`` set in table ``name``: a new table, or for a table that
    sets none of them otherwise, the missing keys added under its header. A key set otherwise,
    or a budget table of the project's own (one place for a budget), is an error."""
    found = _table(text, name)
    if found is None:
        changed = text.rstrip("\n") + f"\n\n[{name}]\n" + _lines(values) + "\n"
    elif all(found.get(key, value) == value for key, value in values.items()):
        missing = {key: value for key, value in values.items() if key not in found}
        if not missing:
            return text  # already so
        header = re.compile(rf"^[ \t]*\[[ \t]*{re.escape(name)}[ \t]*\][ \t]*(#.*)?$", re.M)
        match = None if name.endswith("budget") else header.search(text)
        end = match.end() if match else 0
        changed = text[:end] + "\n" + _lines(missing) + text[end:] if match else ""
    else:
        changed = ""
    written = _table(changed, name) if changed else None
    if written is None or any(written.get(key) != value for key, value in values.items()):
        raise ShipyardError(f"{why} already has a [{name}] table: set it in one place")
    return changed


def _lines(values: dict[str, Any]) -> str:
    return "\n".join(f"{key} = {json.dumps(value)}" for key, value in values.items())


def _table(text: str, name: str) -> dict[str, Any] | None:
    """The table ``name`` (dotted) of TOML ``text``; None when absent or not a table."""
    try:
        found: Any = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    for part in name.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    return found if isinstance(found, dict) else None


def _import_knowledge(text: str, folder: Path, tree: Path) -> None:
    """What earlier tasks on this project left, through ``shipyard memory import``."""
    file = folder / "knowledge-in.md"
    file.write_text(text, encoding="utf-8")
    argv = [sys.executable, "-m", "shipyard", "memory", "import", str(file), "-C", str(tree)]
    log = folder / "knowledge-in.log"
    result = process.run(argv, cwd=tree, env=_env(folder), timeout=120, log=log)
    if not result.ok:
        raise ShipyardError(f"shipyard memory import failed: {process.tail_of(log, 5)}")


def _env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["XDG_STATE_HOME"] = str(folder / "state")  # the run's worktrees go with the folder
    return env


def _command(plan: TaskPlan, folder: Path) -> list[str]:
    """The run's command line. The files it names are copies in the task's own folder: no path
    of the suite (beside which the hidden checks are) is on any command line a run can read."""
    argv = [sys.executable, "-m", "shipyard", "run", plan.task, "--yes"]
    spec = folder / "spec.yaml"
    if plan.spec_inline is not None:
        spec.write_text(plan.spec_inline, encoding="utf-8")
    elif plan.spec_file is not None:
        shutil.copyfile(plan.spec_file, spec)
    if plan.spec_inline is not None or plan.spec_file is not None:
        argv += ["--spec", str(spec)]
    if plan.model is not None:
        argv += ["--model", _own_copy(plan.model, folder)]
    if plan.implementer is not None:
        argv += ["--implementer", plan.implementer]
    if plan.naive:
        argv.append("--naive")
    return argv


def _own_copy(model: str, folder: Path) -> str:
    """A scripted session (``script:PATH``) copied into the task's folder, keeping its name."""
    if not model.startswith("script:"):
        return model
    source = Path(model.removeprefix("script:"))
    (folder / "session").mkdir(exist_ok=True)
    copy = folder / "session" / source.name
    shutil.copyfile(source, copy)
    return f"script:{copy}"


def _run(
    plan: TaskPlan,
    folder: Path,
    checkout: tuple[Path, str],
    started: float,
    cancel: threading.Event | None,
) -> TaskResult:
    tree, base = checkout
    log = folder / "console.log"
    env = _env(folder)
    # The run takes its keys back from a memory file: neither the launcher between this process
    # and the run nor the run itself shows them in /proc/PID/environ.
    start_env, fd = environment.handed_over(env)
    try:
        proc = process.start(
            _command(plan, folder), cwd=tree, env=start_env, stdout=log,
            pass_fds=() if fd is None else (fd,),
        )  # fmt: skip
    finally:
        if fd is not None:
            os.close(fd)
    deadline = started + plan.timeout
    stopped = ""
    try:
        while not process.wait_exit(proc, 0.5):
            if cancel is not None and cancel.is_set():
                stopped = "cancelled"
                break
            if time.monotonic() > deadline:
                stopped = f"timed out after {plan.timeout:g}s"
                break
    finally:
        process.stop_group(proc)
    run = _status(tree)
    code = None if stopped else proc.returncode
    outcome: Outcome = "shipped" if code == 0 else "blocked" if code == 1 else "error"
    reason = stopped or _reason(code, log, run)
    extra: list[tuple[Path, str]] = []
    if plan.judge and outcome == "shipped" and run.get("commit"):
        try:
            extra = _shipped_tree(folder, tree, base, str(run["commit"]))
        except (ShipyardError, OSError):
            extra = []  # no tree to judge: the judgment says so (an error, not a verdict)
    return TaskResult(
        id=plan.id, digest=plan.digest, outcome=outcome,
        attempts=run.get("attempts"), tokens=run.get("tokens"),
        seconds=round(time.monotonic() - started, 3), run_id=run.get("id"), exit_code=code,
        reason=reason, evidence=_pack(tree / ".shipyard", log, extra, whole=SHIPPED_BUNDLE),
    )  # fmt: skip


def _shipped_tree(folder: Path, tree: Path, base: str, commit: str) -> list[tuple[Path, str]]:
    """For ``shipyard bench``: the shipped commit and the commit the run started from, as a git
    bundle, judged by the driver once no run is live (``bench.py``); never judged here, where
    the hidden checks would be on disk, and on command lines, beside other tasks' live runs."""
    from shipyard.workspace import git

    shipped = folder / "shipped"
    shipped.mkdir()
    git("update-ref", "refs/judge/shipped", commit, cwd=tree)
    git("update-ref", "refs/judge/base", base, cwd=tree)
    bundle = shipped / "tree.bundle"
    git("bundle", "create", "-q", str(bundle), "refs/judge/shipped", "refs/judge/base", cwd=tree)
    (shipped / "commits.json").write_text(json.dumps({"commit": commit, "base": base}))
    return [(bundle, SHIPPED_BUNDLE), (shipped / "commits.json", "shipped/commits.json")]


def _status(tree: Path) -> dict[str, Any]:
    """The run's own record, from ``shipyard status --json`` in the checkout."""
    if not (tree / ".shipyard").is_dir():
        return {}
    out = tree.parent / "status.json"
    env = _env(tree.parent)
    argv = [sys.executable, "-m", "shipyard", "status", "--json"]
    err = out.with_suffix(".err")
    result = process.run(argv, cwd=tree, env=env, timeout=60, log=out, stderr_log=err)
    try:
        runs = json.loads(out.read_text(encoding="utf-8")) if result.ok else []
    except json.JSONDecodeError:
        runs = []
    return runs[0] if runs and isinstance(runs[0], dict) else {}


def _reason(code: int | None, log: Path, run: dict[str, Any]) -> str:
    if code == 0:
        return "shipped"
    if code == 1 and run.get("reason"):
        return str(run["reason"])
    said = [line for line in process.tail_of(log, 200).splitlines() if line.startswith("shipyard:")]
    if said:
        return said[-1][:2000]
    return f"shipyard run exited {code}: {process.tail_of(log, 5)[-2000:]}"


def _pack(
    state: Path, log: Path, extra: list[tuple[Path, str]] | None = None, whole: str = ""
) -> bytes:
    """The run's ``.shipyard/``, its console log (and the shipped tree of ``shipyard bench``,
    ``whole``: not held to FILE_LIMIT) as a gzipped tar, within EVIDENCE_LIMIT."""
    buffer = io.BytesIO()
    total, left_out = 0, []
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        files = [(log, "console.log"), *(extra or [])]
        if state.is_dir():
            files += [(p, f".shipyard/{p.relative_to(state)}") for p in sorted(state.rglob("*"))]
        for path, name in files:
            if path.is_symlink() or not path.is_file() or name.endswith(("-wal", "-shm")):
                continue
            size = path.stat().st_size
            if (size > FILE_LIMIT and name != whole) or total + size > EVIDENCE_LIMIT:
                left_out.append(f"{name} ({size:,} bytes)")
                continue
            total += size
            tar.add(path, arcname=name, recursive=False)
        if left_out:
            note = ("left out (too large):\n" + "\n".join(left_out) + "\n").encode()
            info = tarfile.TarInfo("LEFT-OUT.txt")
            info.size = len(note)
            tar.addfile(info, io.BytesIO(note))
    return buffer.getvalue()


def _error(plan: TaskPlan, started: float, reason: str) -> TaskResult:
    return TaskResult(
        id=plan.id, digest=plan.digest, outcome="error", attempts=None, tokens=None,
        seconds=round(time.monotonic() - started, 3), run_id=None, exit_code=None, reason=reason,
    )  # fmt: skip
