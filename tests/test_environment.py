"""Could not check (exit 3) is never confused with checked and failed (exit 1)."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import CALC_NEW, PY_CONFIG, Project

NODE_PROJECT = {
    "shipyard.toml": "[commands]\ntest = 'node --test'\ntimeout = 60\n",
    "package.json": '{"name": "n", "version": "1.0.0"}\n',
    "test/a.test.js": """
        const { test, describe } = require('node:test');
        const assert = require('node:assert');
        describe('maths', () => {
          test('adds', () => assert.equal(1 + 1, 2));
          describe('deeper', () => { test('still adds', () => assert.equal(2 + 2, 4)); });
        });
        test('top level', () => {});
        test('broken', () => assert.equal(1, 2));
    """,
    "spec.yaml": """
        task: maths works
        acceptance: [{id: maths, text: adding works}]
        checks:
          tests:
            required:
              - {id: "test/a.test.js::maths > adds", covers: [maths]}
              - {id: "test/a.test.js::maths > deeper > still adds", covers: [maths]}
              - {id: "test/a.test.js::top level", covers: [maths]}
              - {id: "test/a.test.js::broken", covers: [maths]}
    """,
}


def python_only_path(tmp_path: Path) -> str:
    """A PATH that has python (and sh) but neither node nor git."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "sh").symlink_to("/bin/sh")
    return str(bin_dir)


def test_node_tests_are_read_per_test_with_nested_names(project: Project) -> None:
    project.write(NODE_PROJECT)
    run = project.verify()
    assert run.code == 1
    assert run.check("test/a.test.js::maths > adds", "required")["status"] == "passed"
    assert (
        run.check("test/a.test.js::maths > deeper > still adds", "required")["status"] == "passed"
    )
    assert run.check("test/a.test.js::top level", "required")["status"] == "passed"
    broken = run.check("test/a.test.js::broken", "required")
    assert broken["status"] == "failed" and "1 == 2" in broken["message"]


def test_node_missing_from_path_is_exit_3(project: Project, tmp_path: Path) -> None:
    project.write(NODE_PROJECT)
    run = project.verify(env={"PATH": python_only_path(tmp_path)})
    assert run.code == 3, run.stdout + run.stderr
    assert "'node' was not found on PATH" in run.stderr
    assert run.json["verdict"] == "error"


def test_git_missing_with_base_is_exit_3(project: Project, tmp_path: Path) -> None:
    project.write({"shipyard.toml": PY_CONFIG, "calc.py": CALC_NEW})
    project.commit()
    run = project.verify("--base", "HEAD", env={"PATH": python_only_path(tmp_path)})
    assert run.code == 3
    assert "git was not found on PATH" in run.stderr


def test_unknown_base_revision_is_exit_3(project: Project) -> None:
    project.write({"shipyard.toml": PY_CONFIG, "calc.py": CALC_NEW})
    project.commit()
    run = project.verify("--base", "no-such-branch")
    assert run.code == 3
    assert "--base no-such-branch: no such revision" in run.stderr


def test_missing_build_program_is_exit_3(project: Project) -> None:
    project.write({"shipyard.toml": "[commands]\nbuild = ['shipyard-no-such-tool --x']\n"})
    run = project.verify()
    assert run.code == 3
    assert "'shipyard-no-such-tool' was not found on PATH" in run.stderr


def test_missing_program_in_a_shell_command_is_exit_3(project: Project) -> None:
    project.write({"shipyard.toml": "[commands]\nbuild = ['cd . && shipyard-no-such-tool']\n"})
    run = project.verify()
    assert run.code == 3
    assert "was not found" in run.stderr
