"""The runtime gate through the real CLI: `shipyard verify --json` on a project with an app."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from conftest import Project
from fixtures.runtime.support import TODO_APP

CONFIG = f"""
[commands]
build = [{json.dumps(f"{sys.executable} -m compileall -q todo_app.py")}]
timeout = 60

[app]
start = {json.dumps(f"{sys.executable} todo_app.py --port {{port}}")}
ready = "/healthz"
ready_timeout = 15
env = {{ TODO_DB = "{{tmp}}/todos.json" }}
"""

SPEC = """
task: Users can add todos
acceptance:
  - {id: add, text: adding a todo shows it}
checks:
  http:
    - id: create
      covers: [add]
      request: {method: POST, path: /api/todos, json: {title: milk}}
      expect: {status: 201, json: {title: milk, completed: false}}
      capture: {todo_id: id}
    - id: fetch
      covers: [add]
      request: {path: "/api/todos/{{todo_id}}"}
      expect: {status: 200, body_contains: [milk]}
  ui:
    - id: add-in-browser
      covers: [add]
      steps:
        - goto: /
        - fill: {selector: input.new-todo, value: Buy bread}
        - press: {selector: input.new-todo, key: Enter}
        - expect_text: {selector: .todo-list li, text: Buy bread}
"""


def todo_project(project: Project) -> Project:
    project.write({"shipyard.toml": CONFIG, "spec.yaml": SPEC})
    shutil.copy(TODO_APP, project.path / "todo_app.py")
    return project


@pytest.mark.browser
def test_verify_runs_the_app_http_and_ui_checks(project: Project) -> None:
    run = todo_project(project).verify()
    assert run.code == 0, run.stdout + run.stderr
    runtime = next(g for g in run.json["gates"] if g["name"] == "runtime")
    assert [c["id"] for c in runtime["checks"]] == [
        "app-start",
        "create",
        "fetch",
        "add-in-browser",
    ]
    assert run.check("fetch")["message"] == "GET /api/todos/1 -> 200"
    assert run.check("add-in-browser", "ui")["evidence"] == "ui/add-in-browser/final.png"
    run_dir = project.path / ".shipyard/runs" / run.json["run_id"]
    assert (run_dir / "http/create.json").is_file()
    assert "listening on" in (run_dir / "app/stdout.log").read_text()


def test_a_failed_build_leaves_the_runtime_checks_not_run(project: Project) -> None:
    todo_project(project).write({"todo_app.py": "def broken(:\n"})
    run = project.verify()
    assert run.code == 1
    for check_id in ("create", "fetch", "add-in-browser"):
        check = run.check(check_id)
        assert (check["status"], check["message"]) == ("not_run", "not run: the build gate failed")
    assert not (project.path / ".shipyard/runs" / run.json["run_id"] / "app").exists()


def test_no_chromium_is_exit_3_not_a_failure(project: Project, tmp_path: Path) -> None:
    run = todo_project(project).verify(env={"SHIPYARD_CHROMIUM": str(tmp_path / "nothing")})
    assert run.code == 3, run.stdout + run.stderr
    assert "SHIPYARD_CHROMIUM" in run.stdout + run.stderr
