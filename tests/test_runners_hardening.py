"""vitest and jest against a project's own settings: a vitest ``outputFile`` in its config, jest
under ``[commands] cwd``, and jest itself absent."""

from __future__ import annotations

import pytest

from conftest import Project
from test_runners import FIXED, POST, node_project, outcome_ids


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
