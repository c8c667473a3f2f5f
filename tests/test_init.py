"""`shipyard init` detects the project and writes a config that verify accepts."""

from __future__ import annotations

from conftest import Project, run_cli


def test_init_python_project_then_verify(project: Project) -> None:
    project.write({
        "pyproject.toml": "[project]\nname = 'demo'\nversion = '0'\n",
        "tests/test_a.py": "def test_a():\n    assert 1 + 1 == 2\n",
    })  # fmt: skip
    run = run_cli("init", cwd=project.path)
    assert run.code == 0, run.stderr
    text = (project.path / "shipyard.toml").read_text()
    assert 'test = "python -m pytest -q"' in text
    assert (project.path / ".shipyard" / ".gitignore").is_file()
    again = run_cli("init", cwd=project.path)
    assert again.code == 2 and "already exists" in again.stderr
    # the proposed build would pip-install the project; keep the test offline and fast
    (project.path / "shipyard.toml").write_text(text.replace('"python -m pip install -e ."', ""))
    assert project.verify().code == 0


def test_init_node_project(project: Project) -> None:
    project.write({"package.json": '{"name": "x", "scripts": {"build": "tsc"}}'})
    assert run_cli("init", cwd=project.path).code == 0
    text = (project.path / "shipyard.toml").read_text()
    assert 'build = ["npm run build"]' in text and 'test = "node --test"' in text


def test_init_unknown_project_is_bad_input(project: Project) -> None:
    run = run_cli("init", cwd=project.path)
    assert run.code == 2
    assert "could not tell what kind of project" in run.stderr
