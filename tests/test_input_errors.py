"""Bad input exits 2 with a message naming file, field and line; never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import PY_CONFIG, Project, run_cli
from shipyard.config import load_config
from shipyard.exceptions import ConfigError, SpecError
from shipyard.spec import parse_spec

DESIGN_SPEC = """
task: Users can add todos and see them after a reload
acceptance:
  - id: add
    text: Typing a title and pressing Enter adds it to the list
  - id: persist
    text: Todos survive a page reload
checks:
  tests:
    required:
      - id: tests/test_store.py::test_add_then_list
        covers: [add]
  http:
    - id: create
      covers: [add]
      request: { method: POST, path: /api/todos, json: { title: milk } }
      expect:  { status: 201, json: { title: milk, completed: false } }
      capture: { todo_id: id }
    - id: fetch
      covers: [persist]
      request: { method: GET, path: "/api/todos/{{todo_id}}" }
      expect:  { status: 200, body_contains: [milk] }
  cli:
    - id: help
      run: [todo, --help]
      expect: { exit: 0, stdout_contains: [usage] }
  ui:
    - id: add-in-browser
      covers: [add, persist]
      steps:
        - goto: /
        - fill:  { selector: input.new-todo, value: Buy milk }
        - press: { selector: input.new-todo, key: Enter }
        - expect_text:  { selector: .todo-list li, text: Buy milk }
        - reload: true
        - expect_count: { selector: .todo-list li, count: 1 }
"""


def test_the_design_example_parses() -> None:
    spec = parse_spec(DESIGN_SPEC, "spec.yaml")
    assert [a.id for a in spec.acceptance] == ["add", "persist"]
    assert spec.checks.http[0].request.json_body == {"title": "milk"}
    assert spec.checks.http[0].capture == {"todo_id": "id"}
    assert spec.checks.cli[0].run == ("todo", "--help")
    assert [s.kind for s in spec.checks.ui[0].steps] == [
        "goto", "fill", "press", "expect_text", "reload", "expect_count",
    ]  # fmt: skip
    assert spec.uncovered() == []


BAD_SPECS = [
    # (what, edit of the design example, field, line, words in the message)
    ("unknown key", ("  - id: persist\n", "  - id: persist\n    colour: red\n"),
     "acceptance[1].colour", 7, "unknown key 'colour'"),
    ("wrong type", ("expect:  { status: 201,", "expect:  { status: created,"),
     "checks.http[0].expect.status", 17, "valid integer"),
    ("missing key", ("      request: { method: GET, path: \"/api/todos/{{todo_id}}\" }\n", ""),
     "checks.http[1].request", 19, "required key is missing"),
    ("duplicate acceptance id", ("  - id: persist\n", "  - id: add\n"),
     "acceptance[1].id", 6, "duplicate acceptance id 'add'"),
    ("duplicate check id", ("    - id: fetch\n", "    - id: create\n"),
     "checks.http[1].id", 19, "duplicate check id 'create'"),
    ("covers an unknown id", ("covers: [persist]", "covers: [persists]"),
     "checks.http[1].covers[0]", 20, "'persists' is not an acceptance id"),
    ("test id form", ("tests/test_store.py::test_add_then_list", "test_add_then_list"),
     "checks.tests.required[0].id", 11, "FILE::NAME"),
    ("a step with two keys", ("        - reload: true\n", "        - {reload: true, goto: /}\n"),
     "checks.ui[0].steps[4]", 35, "exactly one key"),
    ("an unknown step", ("        - reload: true\n", "        - hover: a\n"),
     "checks.ui[0].steps[4]", 35, "exactly one key"),
    ("bad YAML", ("  - id: persist\n", "  - id: [persist\n"), None, 7, "not valid YAML"),
    ("a step with no value", ("        - reload: true\n", "        - expect_url:\n"),
     "checks.ui[0].steps[4]", 35, "expect_url needs a value"),
    ("a non-ASCII header",
     ("path: /api/todos, json:", "path: /api/todos, headers: {X-N: café}, json:"),
     "checks.http[0].request.headers", 16, "ASCII"),
    ("a bad environment name",
     ("      run: [todo, --help]\n", "      run: [todo, --help]\n      env: {A=B: x}\n"),
     "checks.cli[0].env", 26, "not an environment variable name"),
    ("an endless timeout", ("task: Users", "timeout: .inf\ntask: Users"),
     "timeout", 2, "less than or equal to"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "field", "line", "words"),
    [case[1:] for case in BAD_SPECS],
    ids=[case[0] for case in BAD_SPECS],
)
def test_bad_spec(edit: tuple[str, str], field: str | None, line: int, words: str) -> None:
    old, new = edit
    assert old in DESIGN_SPEC
    with pytest.raises(SpecError) as info:
        parse_spec(DESIGN_SPEC.replace(old, new, 1), "spec.yaml")
    err = info.value
    assert err.file == "spec.yaml"
    assert err.field == field
    assert err.line == line, str(err)
    assert words in str(err)


BAD_CONFIGS = [
    ("unknown key", 'test = "x"\ncolour = 1\n', "commands.colour", 3, "unknown key"),
    ("wrong type", 'timeout = "soon"\n', "commands.timeout", 2, "valid number"),
    ("negative timeout", "timeout = -1\n", "commands.timeout", 2, "greater than 0"),
    ("endless timeout", "timeout = inf\n", "commands.timeout", 2, "less than or equal to"),
    ("bad TOML", 'test = "x\n', None, 2, "not valid TOML"),
    ("unknown table", "[apps]\nstart = 'x'\n", "apps", 2, "unknown key"),
    ("bad ready", "[app]\nstart = 'x'\nready = 'healthz'\n", "app.ready", 4, "tcp"),
]


@pytest.mark.parametrize(
    ("body", "field", "line", "words"),
    [case[1:] for case in BAD_CONFIGS],
    ids=[case[0] for case in BAD_CONFIGS],
)
def test_bad_config(tmp_path: Path, body: str, field: str | None, line: int, words: str) -> None:
    (tmp_path / "shipyard.toml").write_text("[commands]\n" + body)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    err = info.value
    assert err.file == str(tmp_path / "shipyard.toml")
    assert (err.field, err.line) == (field, line), str(err)
    assert words in str(err)


def test_config_in_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.shipyard.commands]\ntest = "python -m pytest"\n'
        "timeout = 5\n\n[tool.shipyard.app]\nstart = 'serve {port}'\n"
    )
    config = load_config(tmp_path)
    assert config.commands.test == "python -m pytest"
    assert config.commands.timeout == 5
    assert config.app is not None and config.app.ready == "tcp"
    (tmp_path / "pyproject.toml").write_text("[tool.shipyard.commands]\ntimeout = 'x'\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.field == "tool.shipyard.commands.timeout"
    assert info.value.line == 2


def test_missing_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shipyard init"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("files", "args", "words"),
    [
        ({"spec.yaml": "task: x\nacceptance: [{id: a, text: t}]\nchecks: {tests: 3}\n"}, (),
         "spec.yaml:3: checks.tests"),
        ({}, ("--spec", "nope.yaml"), "nope.yaml: file not found"),
        ({"shipyard.toml": "[commands]\ntimeout = 'x'\n"}, (), "shipyard.toml:2: commands.timeout"),
    ],
    ids=["bad spec", "missing spec file", "bad config"],
)  # fmt: skip
def test_cli_exits_2_without_a_traceback(
    project: Project, files: dict[str, str], args: tuple[str, ...], words: str
) -> None:
    project.write({"shipyard.toml": PY_CONFIG, "calc.py": "", **files})
    for run in (run_cli("verify", *args, cwd=project.path), project.verify(*args)):
        assert run.code == 2
        assert words in run.stderr
        assert "Traceback" not in run.stderr + run.stdout
    assert project.verify(*args).json["exit_code"] == 2


def test_unknown_runner_without_junit_is_bad_input(project: Project) -> None:
    project.write({"shipyard.toml": "[commands]\ntest = 'make check'\n"})
    run = run_cli("verify", cwd=project.path)
    assert run.code == 2
    assert "commands.junit" in run.stderr


def test_http_checks_without_an_app_are_bad_input_before_anything_runs(project: Project) -> None:
    project.write({
        "shipyard.toml": PY_CONFIG,
        "calc.py": "",
        "tests/test_a.py": "def test_a():\n    pass\n",
        "spec.yaml": "task: x\nacceptance: [{id: a, text: t}]\n"
        "checks:\n  http:\n    - {id: h, covers: [a], request: {path: /}}\n",
    })  # fmt: skip
    run = run_cli("verify", cwd=project.path)
    assert run.code == 2
    assert "app.start" in run.stderr
    assert not list(project.path.glob(".shipyard/runs/*/tests/output.log"))  # no test was run
