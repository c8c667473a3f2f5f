"""Judging a shipped tree with a task's hidden checks, for ``shipyard bench``.

Runs on the worker after the run has ended, in the task's own folder: the shipped commit is
cloned into ``judged/``, the ``hidden_files/`` beside the hidden spec are copied over it, and
``shipyard verify --spec HIDDEN --json --no-cache`` runs there. Nothing of this is on disk while
the agent works: the run's checkout never holds the hidden spec or its files.

The result is a folder (packed with the task's evidence as ``judge/``): ``verify.json`` (the
``shipyard.verify/1`` document, or an ``error`` one when verify printed none), ``verify.err``
and ``evidence/`` (verify's own evidence folder).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard import environment, process
from shipyard.batch.suite import TaskPlan, hidden_files
from shipyard.config import load_config
from shipyard.exceptions import ShipyardError

VERIFY_SCHEMA = "shipyard.verify/1"


def judge(plan: TaskPlan, folder: Path, tree: Path, commit: str, env: Mapping[str, str]) -> Path:
    """Verify ``commit`` of the checkout ``tree`` with the plan's hidden checks; the folder of
    the judgment (its ``verify.json`` always exists)."""
    from shipyard.workspace import git

    assert plan.hidden is not None
    out = folder / "judge"
    out.mkdir()
    judged = folder / "judged"
    try:
        git("clone", "-q", "--no-checkout", str(tree), str(judged), cwd=folder)
        git("checkout", "-q", "--detach", commit, cwd=judged)
        if (files := hidden_files(plan.hidden)) is not None:
            shutil.copytree(files, judged, dirs_exist_ok=True)
    except (ShipyardError, OSError) as exc:
        return _error(out, f"could not make the tree to judge: {exc}")
    try:  # the judged code is the model's: it gets the allow-list, never the caller's keys
        env = environment.scrubbed(env, load_config(judged, missing_ok=True))
    except ShipyardError as exc:
        return _error(out, f"the shipped tree's configuration: {exc}")
    argv = [sys.executable, "-m", "shipyard", "verify", "--spec", plan.hidden, "--json"]
    argv += ["--no-cache", "-C", str(judged)]
    report, err = out / "verify.json", out / "verify.err"
    try:
        process.run(argv, cwd=judged, env=env, timeout=plan.timeout, log=report, stderr_log=err)
    except ShipyardError as exc:
        return _error(out, f"shipyard verify could not be run: {exc}")
    doc = read_verdict(report)
    if doc.get("error") and not doc.get("gates"):
        return _error(out, str(doc["error"]))
    if isinstance(run_dir := doc.get("run_dir"), str) and Path(run_dir).is_dir():
        shutil.copytree(run_dir, out / "evidence")
    return out


def read_verdict(path: Path) -> dict[str, Any]:
    """A ``verify.json``, or an ``error`` document saying why it could not be read."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _doc(f"{path}: no verdict ({exc})")
    if not isinstance(doc, dict) or doc.get("schema") != VERIFY_SCHEMA:
        return _doc(f"{path}: not a {VERIFY_SCHEMA} document")
    return doc


def _error(out: Path, message: str) -> Path:
    (out / "verify.json").write_text(json.dumps(_doc(message), indent=2), encoding="utf-8")
    return out


def _doc(message: str) -> dict[str, Any]:
    return {"schema": VERIFY_SCHEMA, "verdict": "error", "exit_code": 3, "error": message}
