"""What ``shipyard init`` reads from a project: its interpreter, installs, test runner, web app,
command-line entry and one real test, as a :class:`Proposal` the writer turns into files.

Nothing here runs the project's code or a package manager: files are read, never executed.
Dependencies are installed only into an environment of the project's own (``.venv``/``venv``,
or one ``uv sync`` makes); without one, no install is proposed and a note says why.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

SKIP = {".git", ".venv", "venv", "node_modules", ".shipyard", "__pycache__", "dist", "build"}
HEALTH = ("/health", "/healthz", "/api/health", "/status", "/ping")
PY_FILES_READ = 200
MAX_FOLDERS = 2000
"""Folders looked into at most: a huge tree is read in part, never walked whole."""
RUNNERS = ("vitest", "jest", "mocha")


@dataclass(frozen=True)
class App:
    start: str
    ready: str
    framework: str
    env: dict[str, str] = field(default_factory=dict)
    html: bool = False
    """The app serves pages (templates or HTML files): a browser check fits."""
    page: str = "/"
    """The page a browser check opens."""
    setup: tuple[str, ...] = ()
    """Commands to run before ``start`` (a Flask app's ``init-db``)."""


@dataclass(frozen=True)
class Proposal:
    kind: str
    """``python`` or ``node``."""
    build: tuple[str, ...]
    test: str
    app: App | None = None
    cli: tuple[str, ...] | None = None
    """A command-line entry to run with ``--help``."""
    test_id: str | None = None
    """One test of the project, as its runner names it."""
    notes: tuple[str, ...] = ()
    """Comment lines for shipyard.toml: what was found and what was not proposed, and why."""


def read(path: Path, limit: int = 200_000) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except OSError:
        return ""


def files(root: Path, suffixes: tuple[str, ...], limit: int = PY_FILES_READ) -> list[Path]:
    """The project's own files with these suffixes, shallow first, environments skipped."""
    found: list[Path] = []
    level, visited = [root], 0
    while level and len(found) < limit and visited < MAX_FOLDERS:
        nxt: list[Path] = []
        visited += len(level)
        for folder in level:
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir() and not entry.is_symlink():
                    if entry.name not in SKIP and not entry.name.startswith("."):
                        nxt.append(entry)
                elif entry.suffix in suffixes and entry.is_file():
                    found.append(entry)
        level = nxt
    return found[:limit]


def routes(texts: list[str]) -> list[str]:
    """Paths without parameters that the sources register (Flask, FastAPI, Express)."""
    pattern = r"""\.(?:route|get)\(\s*['"](/[^'"<>{}:*]*)['"]"""
    return [m for text in texts for m in re.findall(pattern, text)]


def page_path(found: list[str]) -> str:
    pages = [p for p in found if p not in HEALTH]
    return "/" if "/" in pages or not pages else pages[0]


def ready_path(found: list[str]) -> str:
    for path in HEALTH:
        if path in found:
            return path
    return "/" if "/" in found or not found else found[0]


def first_test_python(project: Path) -> str | None:
    candidates = sorted(project.glob("tests/**/test_*.py")) + sorted(project.glob("test_*.py"))
    for path in candidates:
        lines = read(path).splitlines()
        for i, line in enumerate(lines):
            name = re.match(r"(?:async )?def (test_\w+)\(", line)
            if name and not (i and lines[i - 1].lstrip().startswith("@pytest.mark.parametrize")):
                return f"{path.relative_to(project).as_posix()}::{name.group(1)}"
    return None


def first_test_js(project: Path) -> str | None:
    """``FILE::SUITE > NAME`` of the first ``it``/``test`` in the project's test files, its
    enclosing ``describe`` titles found by brace depth."""
    named = re.compile(r"(^|[./_-])(test|spec)s?([./_-]|$)")
    sources = files(project, (".js", ".mjs", ".cjs", ".ts"))
    tests = [p for p in sources if named.search(p.relative_to(project).as_posix())]
    token = re.compile(r"""\b(describe|it|test)(?:\.only)?\s*\(\s*(['"`])(.*?)\2|([{}])""")
    for path in tests:
        depth, pending = 0, None
        stack: list[tuple[str, int]] = []
        for m in token.finditer(read(path)):
            if m.group(4) == "{":
                depth += 1
                if pending is not None:
                    stack.append((pending, depth))
                    pending = None
            elif m.group(4) == "}":
                depth -= 1
                stack = [(t, d) for t, d in stack if d <= depth]
            elif m.group(1) == "describe":
                pending = m.group(3)
            else:
                names = [t for t, _ in stack] + [m.group(3)]
                return f"{path.relative_to(project).as_posix()}::{' > '.join(names)}"
    return None


def package_json(project: Path) -> dict[str, object]:
    from shipyard.exceptions import ConfigError

    path = project / "package.json"
    try:
        data = json.loads(read(path))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc}", file=str(path)) from exc
    if not isinstance(data, dict):
        raise ConfigError("must be a JSON object", file=str(path))
    return data


def _table(data: dict[str, object], key: str) -> dict[str, str]:
    value = data.get(key)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def node(project: Path) -> Proposal:
    data = package_json(project)
    scripts = _table(data, "scripts")
    deps = {**_table(data, "dependencies"), **_table(data, "devDependencies")}
    notes: list[str] = []
    if (project / "package-lock.json").is_file() or (project / "npm-shrinkwrap.json").is_file():
        build = ["npm ci --no-audit --no-fund"]
    elif (project / "yarn.lock").is_file():
        build = ["yarn install --frozen-lockfile"]
    elif (project / "pnpm-lock.yaml").is_file():
        build = ["pnpm install --frozen-lockfile"]
    else:
        build = ["npm install --no-audit --no-fund"]
        notes.append("no lock file: npm install (with package-lock.json it would be npm ci)")
    if "build" in scripts:
        build.append("npm run build")
    test, runner = _node_test(scripts.get("test", ""), deps)
    if runner == "jest" and "jest-junit" not in deps:
        notes.append("jest reports per test through jest-junit: npm install --save-dev jest-junit")
    texts = [read(p) for p in files(project, (".js", ".mjs", ".cjs", ".ts"), 60)]
    app = None
    if any(name in deps for name in ("express", "fastify", "koa")) or any(
        "createServer(" in t for t in texts
    ):
        main = _node_main(project, data, scripts)
        if main:
            html = any((project / d).is_dir() for d in ("views", "public", "static"))
            framework = next((n for n in ("express", "fastify", "koa") if n in deps), "node http")
            found = routes(texts)
            env = {"PORT": "{port}"}
            app = App(f"node {main}", ready_path(found), framework, env, html, page_path(found))
            notes.append(f"{framework} app in {main}: it must listen on $PORT")
    bins = data.get("bin")
    entry = bins if isinstance(bins, str) else next(iter(_table(data, "bin").values()), None)
    return Proposal(
        kind="node",
        build=tuple(build),
        test=test,
        app=app,
        cli=("node", entry, "--help") if entry else None,
        test_id=first_test_js(project),
        notes=tuple(notes),
    )


def _node_test(script: str, deps: dict[str, str]) -> tuple[str, str | None]:
    """The runner called directly (``npm test`` passes no reporter through): the test script's
    own arguments kept when it is one command of a known runner."""
    words = script.split()
    simple = not re.search(r"[;&|<>`$]", script)
    if words and simple and words[0] in RUNNERS:
        return f"node_modules/.bin/{script}", words[0]
    if words[:2] == ["node", "--test"] and simple:
        return script, None
    for runner in RUNNERS:
        if runner in deps:
            return f"node_modules/.bin/{runner}" + (" run" if runner == "vitest" else ""), runner
    return "node --test", None


def _node_main(project: Path, data: dict[str, object], scripts: dict[str, str]) -> str | None:
    start = scripts.get("start", "").split()
    if len(start) == 2 and start[0] == "node" and (project / start[1]).is_file():
        return start[1]
    main = data.get("main")
    if isinstance(main, str) and (project / main).is_file():
        return main
    return next((n for n in ("server.js", "app.js", "index.js") if (project / n).is_file()), None)


def python(project: Path) -> Proposal:
    notes: list[str] = []
    venv = next((v for v in (".venv", "venv") if (project / v / "bin" / "python").exists()), None)
    uv = (project / "uv.lock").is_file()
    py = f"{venv or '.venv'}/bin/python" if venv or uv else "python"
    reqs = sorted(p.name for p in project.glob("requirements*.txt"))
    pyproject = read(project / "pyproject.toml")
    installable = (project / "setup.py").is_file() or "[project]" in pyproject
    build: list[str] = []
    if uv:
        build.append("uv sync --locked --quiet")
        notes.append("uv.lock: uv sync installs into .venv")
    elif venv:
        has_pip = any((project / venv / "lib").glob("python*/site-packages/pip"))
        pip = f"{py} -m pip install -q" if has_pip else f"uv pip install -q --python {py}"
        if reqs:
            build.append(f"{pip} " + " ".join(f"-r {r}" for r in reqs))
        if installable:
            build.append(f"{pip} -e .")
        notes.append(f"the project's virtualenv: {venv}/")
    elif reqs or installable:
        what = " ".join(f"-r {r}" for r in reqs) if reqs else "-e ."
        notes += [
            "no .venv or venv here: Shipyard never installs into the global interpreter; create",
            f"one (python -m venv .venv && .venv/bin/python -m pip install {what})",
            "and run `shipyard init --force` again",
        ]
    srcs = sorted(p.parent.name for p in project.glob("src/*/__init__.py"))
    if srcs:
        notes.append(f"src/ layout: package {srcs[0]} (installed with -e ., or on PYTHONPATH)")
    sources = [p for p in files(project, (".py",)) if not p.name.startswith("test_")]
    app = _python_app(project, py, sources)
    mains = [p.parent for p in sources if p.name == "__main__.py"]
    cli = None
    if mains:
        module = mains[0].relative_to(project / "src" if srcs else project).as_posix()
        cli = (py, "-m", module.replace("/", "."), "--help")
    if app and app.framework == "django":
        notes.append("Django's manage.py test writes no JUnit report: pytest-django does")
    return Proposal(
        kind="python",
        build=tuple(build),
        test=f"{py} -m pytest -q",
        app=app,
        cli=cli,
        test_id=first_test_python(project),
        notes=tuple(notes),
    )


_FLASK_INIT = re.compile(
    r"""@\w+(?:\.cli)?\.command\(\s*['"]((?:init|create)[-_](?:db|database|tables))['"]"""
)
"""A Flask CLI command that makes the database (the Flask tutorial's ``init-db``)."""


def _python_app(project: Path, py: str, sources: list[Path]) -> App | None:
    if (project / "manage.py").is_file():
        texts = [read(p) for p in sources if p.name == "urls.py"]
        found = ["/" + p for t in texts for p in re.findall(r"""path\(\s*['"]([^'"<]*)['"]""", t)]
        html = any("templates" in p.parts for p in files(project, (".html",)))
        start = f"{py} manage.py runserver 127.0.0.1:{{port}} --noreload"
        return App(start, ready_path(found), "django", html=html, page=page_path(found))
    for path in sources:
        text = read(path)
        module = _module(project, path)
        if re.search(r"^\s*(from fastapi import|import fastapi)", text, re.M):
            var = re.search(r"^(\w+)\s*=\s*FastAPI\(", text, re.M)
            if var:
                app_dir = " --app-dir src" if module.startswith("src.") else ""
                target = f"{module.removeprefix('src.')}:{var.group(1)}"
                start = f"{py} -m uvicorn {target}{app_dir} --host 127.0.0.1 --port {{port}}"
                return App(start, ready_path(routes([text])), "fastapi")
        if re.search(r"^\s*(from flask import|import flask)", text, re.M) and re.search(
            r"(=\s*Flask\(|def create_app\()", text
        ):
            target = path.relative_to(project).as_posix() if module.startswith("src.") else module
            start = f"{py} -m flask --app {target} run --host 127.0.0.1 --port {{port}}"
            html = (path.parent / "templates").is_dir() or "render_template" in text
            found = routes([text])
            setup = tuple(
                f"{py} -m flask --app {target} {name}"
                for name in dict.fromkeys(re.findall(_FLASK_INIT, "\n".join(map(read, sources))))
            )
            return App(
                start, ready_path(found), "flask", html=html, page=page_path(found), setup=setup
            )
    return None


def _module(project: Path, path: Path) -> str:
    parts = path.relative_to(project).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)
