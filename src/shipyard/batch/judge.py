"""Judging a shipped tree with a task's hidden checks, for ``shipyard bench``.

Runs on the driver, after a pass's runs have ended (no run is live while the hidden checks are
on disk or on a command line). From the task's evidence (``shipped/tree.bundle``: the shipped
commit and the commit the run started from), a fresh folder gets the shipped tree; the test
harness and the tests are the original project's, not the agent's (``restore_harness``); the
``hidden_files/`` beside the hidden spec are copied over it, never through a link; and
``shipyard verify --spec HIDDEN --json --no-cache`` runs there (``python -P``, no plugin
autoloaded by pytest).

The result is a folder: ``verify.json`` (the ``shipyard.verify/1`` document, or an ``error``
one when verify printed none), ``verify.err``, ``judged.json`` (the judged commit, its base, the
files put back and those removed) and ``evidence/`` (verify's own evidence folder).
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard import environment, process
from shipyard.batch.suite import TaskPlan, hidden_files
from shipyard.config import load_config
from shipyard.exceptions import ShipyardError
from shipyard.spec import load_spec

VERIFY_SCHEMA = "shipyard.verify/1"
HARNESS = ("conftest.py", "pytest.ini", "tox.ini", "sitecustomize.py", "usercustomize.py",
           "pytest.py")  # fmt: skip
"""Files (by name, anywhere in the tree) that decide how tests run, not what the code does."""
ROOT_HARNESS = ("shipyard.toml", ".pytest.ini")
SECTIONS = {"pyproject.toml": ("pytest", "shipyard"), "setup.cfg": ("tool:pytest",)}
"""Files put back when their pytest or Shipyard section differs from the original's."""
SHADOWING = frozenset({
    "pytest", "_pytest", "pluggy", "iniconfig", "packaging", "py", "exceptiongroup", "tomli",
    "colorama", "pygments", "sitecustomize", "usercustomize",
})  # fmt: skip
"""Modules the test runner imports: one of the agent's at the root (or in ``src/``) would be
imported instead."""
IMPORTABLE = (".py", ".pyc", ".pyd", ".so")
TEST_FILE = re.compile(r"^test_.*\.py$|_test\.py$|\.(test|spec)\.[cm]?[jt]sx?$")
"""Test files (pytest's and the JavaScript runners' default names): the judgment runs the
original project's and the hidden ones, never the agent's (but those the hidden spec names)."""


def judge(plan: TaskPlan, evidence: Path, env: Mapping[str, str]) -> Path:
    """Verify the shipped tree packed in ``evidence`` with the plan's hidden checks; a new
    folder holding the judgment (its ``verify.json`` always exists); the caller removes it."""
    from shipyard.workspace import git

    assert plan.hidden is not None
    folder = Path(tempfile.mkdtemp(prefix=f"shipyard-judge-{plan.id}-"))
    out = folder / "judge"
    out.mkdir()
    judged = folder / "judged"
    try:
        commits = json.loads((evidence / "shipped" / "commits.json").read_text(encoding="utf-8"))
        commit, base = str(commits["commit"]), str(commits["base"])
        bundle = evidence / "shipped" / "tree.bundle"
        if not bundle.is_file():
            raise OSError(f"{bundle}: missing (left out of the evidence?)")
        judged.mkdir()
        git("init", "-q", cwd=judged)
        git("fetch", "-q", str(bundle), "refs/judge/*:refs/judge/*", cwd=judged)
        git("checkout", "-q", "--detach", commit, cwd=judged)
        named = frozenset(t.file for t in load_spec(Path(plan.hidden)).checks.tests.required)
        restored, removed = restore_harness(judged, base, commit, keep=named)
        found = {"commit": commit, "base": base, "restored": restored, "removed": removed}
        _write(out / "judged.json", found)
        if (files := hidden_files(plan.hidden)) is not None:
            place_hidden(files, judged)
    except (ShipyardError, OSError, KeyError, ValueError) as exc:
        return _error(out, f"could not make the tree to judge: {exc}")
    try:  # the judged code is the model's: it gets the allow-list, never the caller's keys
        env = environment.scrubbed(env, load_config(judged, missing_ok=True))
    except ShipyardError as exc:
        return _error(out, f"the original project's configuration: {exc}")
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # no plugin of the environment's, only `-p`
    argv = [sys.executable, "-P", "-m", "shipyard", "verify", "--spec", plan.hidden, "--json"]
    argv += ["--no-cache", "-C", str(judged)]
    report, err = out / "verify.json", out / "verify.err"
    try:
        process.run(argv, cwd=judged, env=env, timeout=plan.timeout, log=report, stderr_log=err)
    except ShipyardError as exc:
        return _error(out, f"shipyard verify could not be run: {exc}")
    doc = read_verdict(report)
    if doc.get("error") and not doc.get("gates"):
        return _error(out, str(doc["error"]))
    state = judged / ".shipyard"
    if isinstance(run_dir := doc.get("run_dir"), str) and _inside(Path(run_dir), state):
        shutil.copytree(run_dir, out / "evidence", symlinks=True)
    return out


def restore_harness(
    judged: Path, base: str, commit: str, keep: frozenset[str] = frozenset()
) -> tuple[list[str], list[str]]:
    """Put back, from the original commit ``base``, every file of the test harness and every
    test file the agent changed, and remove those it added (and its modules that shadow the
    test runner's); test files in ``keep`` (the hidden spec names them) stay. The paths put
    back, and the paths removed."""
    from shipyard.workspace import git

    shutil.rmtree(judged / ".shipyard", ignore_errors=True)  # never the agent's, never a link
    (judged / ".shipyard").unlink(missing_ok=True)
    names = git("diff", "--name-only", "--no-renames", "-z", base, commit, cwd=judged).stdout
    restored, removed = [], []
    for path in sorted(p for p in names.split("\0") if p):
        if not _harness(judged, base, commit, path) and (
            path in keep or not TEST_FILE.search(path.rsplit("/", 1)[-1])
        ):
            continue
        if git("cat-file", "-e", f"{base}:{path}", cwd=judged, check=False).returncode == 0:
            git("checkout", "-q", base, "--", path, cwd=judged)
            restored.append(path)
            continue
        removed.append(path)
        target = judged / path
        if target.is_symlink() or target.is_file():
            target.unlink()
        for folder in target.parents:  # a package left empty is still importable
            if folder == judged or folder.is_symlink() or not folder.is_dir():
                break
            if any(folder.iterdir()):
                break
            folder.rmdir()
    return restored, removed


def _harness(judged: Path, base: str, commit: str, path: str) -> bool:
    """``path`` decides how the tests run, not what the code does."""
    if path in SECTIONS:
        return bool(_section(judged, base, path) != _section(judged, commit, path))
    name = path.rsplit("/", 1)[-1]
    if name in HARNESS or name.endswith(".pth") or path in ROOT_HARNESS:
        return True
    return _shadowing(judged, base, path)


def _shadowing(judged: Path, base: str, path: str) -> bool:
    """``path`` is in a module or package at the root or in ``src/``, named as one the test
    runner imports, that the original tree did not have (a project of that name keeps its own)."""
    from shipyard.workspace import git

    parts = path.split("/")
    skip = 1 if parts[0] == "src" and len(parts) > 1 else 0
    top = parts[skip]
    if top.split(".", 1)[0] not in SHADOWING:
        return False
    if len(parts) == skip + 1 and "." in top and not top.endswith(IMPORTABLE):
        return False  # not importable: `py.typed`
    where = "/".join(parts[: skip + 1])
    return git("cat-file", "-e", f"{base}:{where}", cwd=judged, check=False).returncode != 0


def _section(judged: Path, commit: str, path: str) -> Any:
    """The pytest and Shipyard sections of ``path`` at ``commit`` (None: none; "unreadable":
    cannot parse)."""
    from shipyard.workspace import git

    shown = git("show", f"{commit}:{path}", cwd=judged, check=False)
    if shown.returncode != 0:
        return None
    try:
        if path == "pyproject.toml":
            tool = tomllib.loads(shown.stdout).get("tool", {})
            return [tool.get(name) for name in SECTIONS[path]]
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(shown.stdout)
        return [dict(parser[s]) if parser.has_section(s) else None for s in SECTIONS[path]]
    except (tomllib.TOMLDecodeError, configparser.Error, AttributeError):
        return "unreadable"


def place_hidden(files: Path, judged: Path) -> None:
    """Copy the hidden files into the judged tree. A link of the agent's on the way (a
    symlinked ``tests/``) is removed, never followed: nothing is written outside the tree."""
    for source in sorted(files.rglob("*")):
        relative = source.relative_to(files)
        target = judged
        for part in relative.parts:
            target = target / part
            if target.is_symlink():
                target.unlink()
        if source.is_dir() and not source.is_symlink():
            if target.exists() and not target.is_dir():
                target.unlink()
            target.mkdir(exist_ok=True)
        else:
            if target.is_dir():
                shutil.rmtree(target)
            shutil.copy2(source, target, follow_symlinks=False)


def _inside(path: Path, folder: Path) -> bool:
    """``path`` is a real folder under ``folder``, reached through no link."""
    try:
        relative = path.relative_to(folder)
    except ValueError:
        return False
    current = folder
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            return False
    return not folder.is_symlink() and path.is_dir()


def read_verdict(path: Path) -> dict[str, Any]:
    """A ``verify.json``, or an ``error`` document saying why it could not be read."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _doc(f"{path}: no verdict ({exc})")
    if not isinstance(doc, dict) or doc.get("schema") != VERIFY_SCHEMA:
        return _doc(f"{path}: not a {VERIFY_SCHEMA} document")
    return doc


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")


def _error(out: Path, message: str) -> Path:
    _write(out / "verify.json", _doc(message))
    return out


def _doc(message: str) -> dict[str, Any]:
    return {"schema": VERIFY_SCHEMA, "verdict": "error", "exit_code": 3, "error": message}
