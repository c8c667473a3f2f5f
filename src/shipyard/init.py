"""``shipyard init``: detect the project (:mod:`shipyard.init_detect`), write ``shipyard.toml``
with its commands and ``[app]``, and a commented ``spec.yaml`` skeleton whose checks name what
was found (one of each kind that fits); both are read back through Shipyard's own loaders before
``init`` reports them written."""

from __future__ import annotations

import json
from pathlib import Path

from shipyard.config import CONFIG_FILE
from shipyard.evidence import state_dir
from shipyard.exceptions import ConfigError
from shipyard.init_detect import Proposal

SPEC_FILE = "spec.yaml"
PYTHON_MARKS = ("pyproject.toml", "setup.py", "setup.cfg", "manage.py")


def detect(project: Path) -> Proposal:
    from shipyard import init_detect

    python = any((project / f).is_file() for f in PYTHON_MARKS) or any(
        project.glob("requirements*.txt")
    )
    if python:
        return init_detect.python(project)
    if (project / "package.json").is_file():
        return init_detect.node(project)
    if any(project.glob("*.py")) or (project / "tests").is_dir() or (project / "src").is_dir():
        return init_detect.python(project)
    raise ConfigError(
        "could not tell what kind of project this is (no package.json, pyproject.toml, "
        f"requirements.txt or *.py); write {CONFIG_FILE} by hand",
        file=str(project),
    )


def config_text(found: Proposal) -> str:
    lines = [f"# shipyard.toml, written by `shipyard init` for this {found.kind} project."]
    lines += [f"# {note}" for note in found.notes]
    build = ", ".join(json.dumps(cmd) for cmd in found.build)
    lines += [
        "",
        "[commands]",
        "# build: run in order before the tests; test: Shipyard adds the runner's JUnit report",
        f"build = [{build}]",
        f"test = {json.dumps(found.test)}",
        "timeout = 600",
        "",
    ]
    app = found.app
    if app is None:
        lines += [
            "# [app]",
            '# start = "python -m myapp --port {port}"',
            '# ready = "/healthz"',
        ]
        return "\n".join(lines) + "\n"
    lines += [
        f"# the {app.framework} app found here: {{port}} is a free port Shipyard picks, and",
        "# ready is the path polled until it answers",
        "[app]",
        f"start = {json.dumps(app.start)}",
        f"ready = {json.dumps(app.ready)}",
    ]
    if app.setup:
        lines.append("# run before start, in its environment (its database made here)")
        lines.append(f"setup = [{', '.join(json.dumps(c) for c in app.setup)}]")
    if app.env:
        pairs = ", ".join(f"{k} = {json.dumps(v)}" for k, v in app.env.items())
        lines.append(f"env = {{ {pairs} }}")
    return "\n".join(lines) + "\n"


def spec_text(found: Proposal) -> str:
    """A spec skeleton: every check names something real in the project, so it verifies as
    written; edit the task, the acceptance text and the expectations to say what "done" is."""
    out = [
        '# spec.yaml: what "done" means for the change being made (docs/spec.md).',
        "# Written by `shipyard init` from what it found; every check below is real but generic:",
        "# make the task and the acceptance text yours, and the expectations specific.",
        "task: Describe the change in one sentence",
        "acceptance:",
        "  # One entry per behaviour a user could observe; each id is covered by a check below.",
        "  - id: works",
        "    text: The project's main behaviour works as before",
        "checks:",
    ]
    if found.test_id:
        out += [
            "  tests:",
            "    # Tests that must be in the suite's report and pass (FILE::SUITE > NAME).",
            "    required:",
            f"      - id: {json.dumps(found.test_id)}",
            "        covers: [works]",
        ]
    else:
        out += [
            "  # tests:",
            "  #   required:",
            '  #     - { id: "tests/test_x.py::test_y", covers: [works] }',
        ]
    app = found.app
    if app is not None:
        out += [
            "  # Requests to the app started from [app] in shipyard.toml.",
            "  http:",
            "    - id: ready-page",
            "      covers: [works]",
            f"      request: {{ method: GET, path: {json.dumps(app.ready)} }}",
            "      expect: { status: 200 }       # and json: {...} or body_contains: [...]",
        ]
    if found.cli is not None:
        run = ", ".join(json.dumps(word) for word in found.cli)
        out += [
            "  # Commands run as a user would, with their exit code and output checked.",
            "  cli:",
            "    - id: help",
            "      covers: [works]",
            f"      run: [{run}]",
            "      expect: { exit: 0 }           # and stdout_contains: [...]",
        ]
    if app is not None and app.html:
        out += [
            "  # A browser flow in Chromium: page errors and failed requests fail it too.",
            "  ui:",
            "    - id: page-loads",
            "      covers: [works]",
            "      steps:",
            f"        - goto: {json.dumps(app.page)}",
            "        - expect_visible: body      # then expect_text: { selector: h1, text: ... }",
        ]
    return "\n".join(out) + "\n"


def init_project(project: Path, *, force: bool = False) -> list[tuple[Path, str]]:
    """Write shipyard.toml (refused when it exists, unless ``force``) and, when there is none,
    spec.yaml; returns what was written, each file read back by Shipyard's loaders first."""
    from shipyard.config import load_config
    from shipyard.spec import parse_spec

    project = project.resolve()
    target = project / CONFIG_FILE
    if target.exists() and not force:
        raise ConfigError("already exists; use --force to overwrite", file=str(target))
    found = detect(project)
    text = config_text(found)
    written = [(target, text)]
    spec = project / SPEC_FILE
    nothing = found.test_id is None and found.app is None and found.cli is None
    skeleton = None if spec.exists() or nothing else spec_text(found)
    if skeleton is not None:
        parse_spec(skeleton, str(spec))  # a skeleton Shipyard cannot read is a bug, not output
    target.write_text(text, encoding="utf-8")
    load_config(project)
    if skeleton is not None:
        spec.write_text(skeleton, encoding="utf-8")
        written.append((spec, skeleton))
    state_dir(project)
    return written


def init_agent(project: Path, agent: str, *, force: bool = False) -> None:
    """Write shipyard.toml when there is none (or with ``force``), then merge the agent's hook
    into its settings; prints what changed."""
    from shipyard.hooks.install import install

    project = project.resolve()
    if force or not (project / CONFIG_FILE).exists():
        for path, text in init_project(project, force=force):
            print(f"wrote {path}:\n\n{text}")
    settings, changed = install(project, agent)
    if not changed:
        print(f"{settings}: the shipyard hook is already there; nothing changed")
    for line in changed:
        print(f"{settings}: {line}")
