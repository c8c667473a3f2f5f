"""``shipyard init``: detect a Python or Node project and propose its commands."""

from __future__ import annotations

import json
from pathlib import Path

from shipyard.config import CONFIG_FILE
from shipyard.evidence import state_dir
from shipyard.exceptions import ConfigError


def detect(project: Path) -> dict[str, object]:
    if (project / "package.json").is_file():
        try:
            scripts = json.loads((project / "package.json").read_text()).get("scripts", {})
        except (json.JSONDecodeError, AttributeError) as exc:
            raise ConfigError(f"not valid JSON: {exc}", file=str(project / "package.json")) from exc
        build = ["npm install"] if (project / "package-lock.json").exists() else []
        if "build" in scripts:
            build.append("npm run build")
        return {"build": build, "test": "node --test"}
    if any((project / f).exists() for f in ("pyproject.toml", "setup.py", "setup.cfg")):
        return {"build": ["python -m pip install -e ."], "test": "python -m pytest -q"}
    if any(project.glob("*.py")) or (project / "tests").is_dir():
        return {"build": [], "test": "python -m pytest -q"}
    raise ConfigError(
        "could not tell what kind of project this is (no package.json, pyproject.toml or *.py); "
        f"write {CONFIG_FILE} by hand",
        file=str(project),
    )


def init_project(project: Path, *, force: bool = False) -> tuple[Path, str]:
    project = project.resolve()
    target = project / CONFIG_FILE
    if target.exists() and not force:
        raise ConfigError("already exists; use --force to overwrite", file=str(target))
    found = detect(project)
    build = ", ".join(json.dumps(cmd) for cmd in found["build"])  # type: ignore[union-attr]
    text = (
        "[commands]\n"
        f"build = [{build}]\n"
        f"test = {json.dumps(found['test'])}\n"
        "timeout = 600\n"
        "\n"
        "# [app]\n"
        '# start = "python -m myapp --port {port}"\n'
        '# ready = "/healthz"\n'
    )
    target.write_text(text)
    state_dir(project)
    return target, text


def init_agent(project: Path, agent: str, *, force: bool = False) -> None:
    """Write shipyard.toml when there is none (or with ``force``), then merge the agent's hook
    into its settings; prints what changed."""
    from shipyard.hooks.install import install

    project = project.resolve()
    if force or not (project / CONFIG_FILE).exists():
        path, text = init_project(project, force=force)
        print(f"wrote {path}:\n\n{text}")
    settings, changed = install(project, agent)
    if not changed:
        print(f"{settings}: the shipyard hook is already there; nothing changed")
    for line in changed:
        print(f"{settings}: {line}")
