"""The bundled examples verify; broken copies of the todo app fail, each at the right check."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

from conftest import EXAMPLES, CliRun, Project, run_cli


def copy_example(name: str, tmp_path: Path) -> Project:
    project = Project(tmp_path / name)
    shutil.copytree(
        EXAMPLES / name,
        project.path,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".shipyard", "__pycache__", "*.db"),
    )
    project.commit("example")
    return project


def edit(project: Project, name: str, old: str, new: str) -> None:
    path = project.path / name
    text = path.read_text()
    assert old in text, f"{old!r} is not in {name}"
    path.write_text(text.replace(old, new, 1))


def failed_checks(run: CliRun) -> list[str]:
    return [
        check["id"]
        for gate in run.json["gates"]
        for check in gate["checks"]
        if check["status"] == "failed"
    ]


@pytest.mark.parametrize("name", ["pycalc", "node-greet"])
def test_example_verifies(name: str, tmp_path: Path) -> None:
    project = copy_example(name, tmp_path)
    run = project.verify()
    assert run.code == 0, run.stdout
    assert failed_checks(run) == []


@pytest.mark.browser
def test_todo_example_verifies_with_every_check_kind(tmp_path: Path) -> None:
    project = copy_example("todo", tmp_path)
    run = project.verify()
    assert run.code == 0, run.stdout
    kinds = {c["kind"] for g in run.json["gates"] for c in g["checks"]}
    assert {"required", "app", "http", "cli", "ui", "coverage", "suite"} <= kinds
    shot = Path(run.json["run_dir"]) / run.check("add-in-browser")["evidence"]
    assert shot.suffix == ".png" and shot.stat().st_size > 1000
    human = run_cli("verify", cwd=project.path)
    assert human.code == 0 and human.stdout.splitlines()[-1].startswith("verified (exit 0)")


BROKEN = [
    # (what, file, old, new, the check that must fail, words in its message)
    ("crashes on start", "todo/__main__.py", "    args = parser.parse_args(argv)\n",
     "    args = parser.parse_args(argv)\n    raise RuntimeError('no config')\n",
     "app-start", "RuntimeError: no config"),
    ("wrong status", "todo/app.py", "return jsonify(_as_json(_find(cursor.lastrowid))), 201",
     "return jsonify(_as_json(_find(cursor.lastrowid))), 200", "create", "201"),
    ("missing JSON field", "todo/app.py",
     '"title": row["title"], "completed": bool(row["completed"])}',
     '"title": row["title"]}', "create", "completed"),
    ("capture finds nothing", "todo/app.py", 'return {"id": row["id"],',
     'return {"key": row["id"],', "create", "todo_id"),
    ("swallowed error", "todo/app.py",
     "    row = _find(todo_id)\n    if row is None:\n        return _error(f\"no todo",
     "    row = _find(todo_id)\n    try:\n        int('x')\n    except ValueError:\n"
     "        current_app.logger.exception('lookup failed')\n"
     "    if row is None:\n        return _error(f\"no todo", "fetch", "Traceback"),
    ("button wired to nothing", "todo/static/app.js",
     "  toggle.addEventListener('change', () =>\n",
     "  toggle.addEventListener('nothing', () =>\n", "add-in-browser", "0 items left"),
    ("script error on page load", "todo/static/app.js", "\nload();\n",
     "\nload();\nwindow.setupAnalytics();\n", "add-in-browser", "setupAnalytics"),
]  # fmt: skip


@pytest.mark.browser
@pytest.mark.usefixtures("verify_modes")
@pytest.mark.parametrize(
    ("file", "old", "new", "check_id", "words"),
    [case[1:] for case in BROKEN],
    ids=[case[0] for case in BROKEN],
)
def test_broken_todo_fails_at_the_right_check(
    tmp_path: Path, file: str, old: str, new: str, check_id: str, words: str
) -> None:
    project = copy_example("todo", tmp_path)
    edit(project, file, old, new)
    # the unit tests would catch some of these too: this is about the runtime gate
    edit(project, "shipyard.toml", 'test = "python -m pytest -q -p no:cacheprovider"\n', "")
    spec = yaml.safe_load((project.path / "spec.yaml").read_text())
    del spec["checks"]["tests"]
    (project.path / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    run = project.verify()
    assert run.code == 1, run.stdout
    assert check_id in failed_checks(run), run.stdout
    assert words in run.check(check_id)["message"], run.check(check_id)


@pytest.mark.browser
def test_app_that_never_gets_ready(tmp_path: Path) -> None:
    project = copy_example("todo", tmp_path)
    edit(project, "todo/__main__.py", "    create_app().run(", "    import time; time.sleep(600)\n"
         "    create_app().run(")  # fmt: skip
    edit(project, "shipyard.toml", "ready_timeout = 20", "ready_timeout = 2")
    started = time.monotonic()
    run = project.verify()
    assert run.code == 1
    assert "app-start" in failed_checks(run)
    assert (
        "not ready" in run.check("app-start")["message"].lower()
        or "never" in run.check("app-start")["message"]
    )
    assert time.monotonic() - started < 60


@pytest.mark.browser
def test_selector_that_does_not_exist_fails_at_its_timeout(tmp_path: Path) -> None:
    project = copy_example("todo", tmp_path)
    edit(project, "spec.yaml", "      steps:\n", "      timeout: 1.5\n      steps:\n")
    edit(project, "spec.yaml", "expect_count: { selector: .todo-list li,",
         "expect_count: { selector: .todo-items li,")  # fmt: skip
    run = project.verify()
    assert run.code == 1
    check = run.check("add-in-browser")
    assert check["status"] == "failed"
    assert "step 7" in check["message"] and ".todo-items li" in check["message"]
    assert check["duration"] < 20
