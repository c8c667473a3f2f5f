"""vitest and jest against a project's own settings: a vitest ``outputFile`` in its config, jest
under ``[commands] cwd``, and jest itself absent."""

from __future__ import annotations

import json
import os

import pytest

from conftest import Project
from test_runners import APP, EXPECT_TESTS, FIXED, FIXTURES, POST, SPEC, node_project, outcome_ids


@pytest.mark.parametrize(
    "setting", ["outputFile: 'x.xml'", "outputFile: { junit: 'x.xml' }"], ids=["string", "junit"]
)
def test_a_vitest_output_file_in_its_config_does_not_move_the_report(
    project: Project, setting: str
) -> None:
    test_file = node_project(project, "vitest", FIXED)
    project.write({"vitest.config.mjs": f"export default {{ test: {{ {setting} }} }};\n"})
    project.commit()
    run = project.verify()
    assert run.code == 0, run.stdout + run.stderr
    assert f"{test_file}::{POST}" in outcome_ids(run.json["run_dir"])
    assert run.check("suite")["message"].endswith("3 passed"), run.check("suite")
    assert not (project.path / "x.xml").exists()


def test_jest_under_commands_cwd_finds_jest_junit_there(project: Project) -> None:
    """jest and jest-junit installed in the ``[commands] cwd``, none at the project's root."""
    project.write({
        "shipyard.toml": '[commands]\ntest = "node_modules/.bin/jest"\ncwd = "web"\n',
        "web/package.json": json.dumps({"name": "users", "private": True}),
        ".gitignore": "node_modules\n",
        "web/app.js": FIXED + APP,
        "web/test/users.test.js": EXPECT_TESTS,
        "spec.yaml": SPEC.replace("FILE", "web/test/users.test.js"),
    })  # fmt: skip
    os.symlink(FIXTURES / "jest" / "node_modules", project.path / "web" / "node_modules")
    project.commit()
    run = project.verify("--base", "HEAD")
    assert run.code == 1, run.stdout + run.stderr  # the tests already pass at the base
    assert run.check("suite")["message"].endswith("3 passed"), run.check("suite")
    assert run.check(f"web/test/users.test.js::{POST}", "required")["status"] == "passed"
    weak = run.check("no-weakening")
    assert weak["status"] == "passed" and "all 3 tests passing" in weak["message"], weak


def test_jest_itself_absent_is_named(project: Project) -> None:
    project.write({
        "shipyard.toml": '[commands]\ntest = "node_modules/.bin/jest"\n',
        "package.json": '{"name": "users"}',
        "test/users.test.js": EXPECT_TESTS,
    })  # fmt: skip
    run = project.verify()
    assert run.code == 3, run.stdout + run.stderr
    assert "jest is not installed in" in run.json["error"]
    assert "jest-junit" not in run.json["error"].split(":")[1]
    assert "npm install --save-dev jest jest-junit" in run.json["error"]
