"""The verdict cache: an unchanged verify answers from it; each part of the key changed alone
runs the gates again; ``--no-cache`` forces a run; ``error`` verdicts are never stored."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import CliRun, Project, git, run_cli
from shipyard.cache import VerdictCache, key_parts
from shipyard.results import CheckResult, GateResult, Verdict

CONFIG = '[commands]\nbuild = ["python -c pass"]\n'
SPEC = """
task: t
acceptance:
  - id: a
    text: it builds
checks:
  cli:
    - id: runs
      covers: [a]
      run: [python, -c, "print(1)"]
      expect: { stdout_contains: ["1"] }
"""


@pytest.fixture
def quick(tmp_path: Path) -> Project:
    project = Project(tmp_path / "quick").write(
        {"shipyard.toml": CONFIG, "spec.yaml": SPEC, "app.py": "x = 1\n", ".gitignore": ".env\n"}
    )
    project.commit("one")
    project.write({".env": "A=1\n"})
    return project


def _fresh(run: CliRun, first: CliRun) -> bool:
    doc = run.json
    return doc["cached"] is False and doc["run_id"] != first.json["run_id"]


def test_unchanged_tree_answers_from_the_cache(quick: Project) -> None:
    first = quick.verify()
    assert first.code == 0, first.stdout
    assert first.json["cached"] is False and first.json["cached_from"] is None
    again = quick.verify()
    assert again.code == 0
    assert again.json["cached"] is True
    assert again.json["cached_from"] == first.json["run_id"]
    assert again.json["gates"] == first.json["gates"]
    human = run_cli("verify", cwd=quick.path)
    assert f"cached: nothing changed since {first.json['run_id']}" in human.stdout
    forced = quick.verify("--no-cache")
    assert _fresh(forced, first)


def _venv_package(p: Project) -> None:
    site = p.path / ".venv/lib/python3.11/site-packages"
    (site / "newpkg-1.0.dist-info").mkdir(parents=True)


def _browser(p: Project) -> dict[str, str]:
    fake = p.path.parent / "chrome-2"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return {"SHIPYARD_CHROMIUM": str(fake)}


CHANGES: dict[str, Callable[[Project], dict[str, str] | None]] = {
    "tracked file": lambda p: p.write({"app.py": "x = 2\n"}) and None,
    "untracked file": lambda p: p.write({"new.py": "y = 1\n"}) and None,
    "spec": lambda p: p.write({"spec.yaml": SPEC.replace("it builds", "it does build")}) and None,
    "config": lambda p: p.write({"shipyard.toml": CONFIG + "timeout = 30\n"}) and None,
    "env file": lambda p: p.write({".env": "A=2\n"}) and None,
    "lock file": lambda p: p.write({"uv.lock": "version = 1\n"}) and None,
    "installed package": lambda p: _venv_package(p),
    "browser": _browser,
}


@pytest.mark.parametrize("part", list(CHANGES))
def test_each_key_part_changed_alone_runs_the_gates_again(quick: Project, part: str) -> None:
    first = quick.verify()
    assert quick.verify().json["cached"] is True
    env = CHANGES[part](quick)
    again = quick.verify(env=env)
    assert again.code == 0, again.stdout
    assert _fresh(again, first), f"{part} changed but the verdict came from the cache"


def test_another_base_runs_the_gates_again(quick: Project) -> None:
    base1 = git(quick.path, "rev-parse", "HEAD")
    quick.write({"other.txt": "o\n"})
    base2 = quick.commit("three")
    first = quick.verify("--base", base2)
    assert quick.verify("--base", base2).json["cached"] is True
    assert _fresh(quick.verify("--base", base1), first)


def test_error_verdicts_are_never_stored(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "f.txt").write_text("x")
    parts = key_parts(project, spec="s", config="c", base=None, environ=os.environ)
    store = VerdictCache.of(project)
    run_dir = project / ".shipyard" / "runs" / "v-1"
    run_dir.mkdir(parents=True)
    check = CheckResult(id="app", kind="app", status="error", message="port in use")
    broken = Verdict(run_id="v-1", run_dir=str(run_dir), duration=1.0,
                     gates=(GateResult(name="runtime", checks=(check,)),))  # fmt: skip
    store.store(parts, broken)
    assert store.lookup(parts) is None
    fine = Verdict(run_id="v-1", run_dir=str(run_dir), duration=1.0,
                   gates=(GateResult(name="runtime", checks=()),))  # fmt: skip
    store.store(parts, fine)
    hit = store.lookup(parts)
    assert hit is not None and hit.extra["cached_from"] == "v-1" and hit.status == "passed"
    (project / "f.txt").write_text("y")
    changed = key_parts(project, spec="s", config="c", base=None, environ=os.environ)
    assert store.lookup(changed) is None, "a tree outside git is keyed by its files too"


def test_a_same_size_edit_within_the_same_second_changes_the_tree(tmp_path: Path) -> None:
    """git's stat check sees no change when an edit keeps the size and the second of the mtime;
    only its racy-clean rule (entries as new as the index are re-read) catches it, and only if
    the private index keeps the mtime git gave it."""
    import time

    from shipyard.cache import tree_id

    git(tmp_path, "init", "-q")
    source = tmp_path / "app.py"
    while time.time() % 1 > 0.2:  # early in a second
        time.sleep(0.01)
    source.write_text("x = 1\n")
    before = tree_id(tmp_path)
    assert tree_id(tmp_path) == before  # the private index now exists and is reused
    while time.time() % 1 < 0.8:  # late in the same second
        time.sleep(0.01)
    source.write_text("x = 2\n")
    while time.time() % 1 > 0.5:  # the next second: the index is read after it
        time.sleep(0.01)
    assert tree_id(tmp_path) != before
