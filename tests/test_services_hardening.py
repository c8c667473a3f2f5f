"""The commands' environment and the services against hostile input: env_file values never in
an error or the evidence, every run at the base with services of its own, a bad ``cwd`` named,
and nothing a service left behind still running after the verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Project

SECRET = "tok-5f2c9a-very-secret"
PYTEST = "python -m pytest -q -p no:cacheprovider"
HTTP_SPEC = """
    task: An app
    acceptance:
      - {id: up, text: It answers}
    checks:
      http:
        - {id: front, covers: [up], request: {path: /}, expect: {status: 200}}
"""


ENV_FILE = '[commands]\nenv_file = ".env"\n'


@pytest.mark.parametrize(
    ("toml", "where"),
    [
        (ENV_FILE + 'build = ["$API_TOKEN --version"]\n', "commands.build"),
        (
            ENV_FILE + '[app]\nstart = "python -m http.server {port}"\nsetup = ["$API_TOKEN x"]\n',
            "app.setup[0]",
        ),
        (ENV_FILE + '[services.db]\nstart = "sh -c \'$API_TOKEN --port {port}\'"\n',
         "services.db.start"),
    ],
    ids=["build", "app-setup", "service"],
)
def test_a_missing_program_error_never_shows_an_env_file_value(
    project: Project, toml: str, where: str
) -> None:
    project.write({
        "shipyard.toml": toml,
        ".env": f"API_TOKEN={SECRET}\n",
        ".gitignore": ".env\n",
        **({"spec.yaml": HTTP_SPEC} if "[app]" in toml else {}),
    })  # fmt: skip
    project.commit()
    run = project.verify()
    assert run.code == 3, run.stdout + run.stderr
    assert where in run.stderr and "not found" in run.stderr
    assert SECRET not in run.stdout + run.stderr
    assert "[env_file value]" in run.json["error"]
    leaked = [p for p in (project.path / ".shipyard").rglob("*")
              if p.is_file() and SECRET.encode() in p.read_bytes()]  # fmt: skip
    assert leaked == []


XML_SECRET = 'p&ss<w"rd>\'42'


def test_env_file_values_are_scrubbed_escaped_and_json_evidence_stays_json(
    project: Project,
) -> None:
    project.write({
        "shipyard.toml": f'[commands]\ntest = "{PYTEST}"\nenv_file = ".env"\n',
        ".env": f"API_TOKEN='{XML_SECRET}'\nFLAG=true\nHOST=localhost\n",
        ".gitignore": ".env\n",
        "tests/test_leak.py": """
            import os


            def test_leaks_the_token():
                assert os.environ["API_TOKEN"] == "x", os.environ["API_TOKEN"]


            def test_passes():
                assert os.environ["FLAG"] == "true"
        """,
    })  # fmt: skip
    project.commit()
    run = project.verify()
    assert run.code == 1, run.stdout + run.stderr
    run_dir = Path(run.json["run_dir"])
    escaped = {"p&amp;ss&lt;w", "&quot;rd", 'w"rd', "rd&gt;", "&#39;42", "&apos;42"}
    for path in run_dir.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        assert "ss<w" not in text and not [e for e in escaped if e in text], path
        if path.suffix == ".json":
            json.loads(text)  # a value such as "true" never breaks a JSON file
    assert "[env_file value]" in (run_dir / "tests/junit.xml").read_text()
    outcomes = json.loads((run_dir / "tests/outcomes.json").read_text())
    assert {o["outcome"] for o in outcomes} == {"passed", "failed"}
    assert json.loads((run_dir / "config.json").read_text())["verify"]["parallel"] is True
