"""`shipyard init` detects the project and writes a config and a spec skeleton that verify
accepts: Flask, FastAPI, a Django-shaped tree, Express with mocha, vitest, a src/ layout."""

from __future__ import annotations

import json
import os
import sys

import pytest

from conftest import ROOT, CliRun, Project, run_cli

FIXTURES = ROOT / "tests" / "fixtures"


def init(project: Project) -> CliRun:
    run = run_cli("init", cwd=project.path)
    assert run.code == 0, run.stderr
    return run


def written(project: Project) -> tuple[str, str]:
    toml = (project.path / "shipyard.toml").read_text()
    spec = (project.path / "spec.yaml").read_text()
    return toml, spec


def loads(project: Project) -> None:
    """Both files read back by Shipyard's own loaders."""
    from shipyard.config import load_config
    from shipyard.spec import load_spec

    load_config(project.path)
    load_spec(project.path / "spec.yaml")


def venv(project: Project, name: str = ".venv") -> None:
    """The project's own virtualenv: its python is this interpreter."""
    (project.path / name / "bin").mkdir(parents=True)
    (project.path / name / "bin" / "python").symlink_to(sys.executable)


def without_build(project: Project) -> None:
    """Keep the test offline: the proposed installs would reach a package index."""
    path = project.path / "shipyard.toml"
    lines = path.read_text().splitlines()
    path.write_text("\n".join("build = []" if x.startswith("build =") else x for x in lines))


FLASK_APP = """
from flask import Flask, render_template

app = Flask(__name__)


@app.route("/")
def index():
    return render_template("index.html", items=["milk"])


@app.get("/health")
def health():
    return {"ok": True}
"""


@pytest.mark.browser
def test_flask_with_a_venv_then_verify_passes_end_to_end(project: Project) -> None:
    project.write({
        "app.py": FLASK_APP,
        "templates/index.html": "<!doctype html><title>shop</title><h1>Shopping</h1>"
        "{% for i in items %}<li>{{ i }}</li>{% endfor %}\n",
        "tests/test_app.py": "from app import app\n\n\ndef test_index():\n"
        '    assert b"milk" in app.test_client().get("/").data\n',
        ".gitignore": ".venv\n",
    })  # fmt: skip
    venv(project)
    run = init(project)
    toml, spec = written(project)
    assert f"wrote {project.path / 'spec.yaml'}" in run.stdout
    assert "# the project's virtualenv: .venv/" in toml
    assert 'test = ".venv/bin/python -m pytest -q"' in toml
    assert "build = []" in toml  # nothing to install: no requirements, not installable
    start = ".venv/bin/python -m flask --app app run --host 127.0.0.1 --port {port}"
    assert f'[app]\nstart = "{start}"\nready = "/health"\n' in toml
    assert '- id: "tests/test_app.py::test_index"' in spec
    assert 'request: { method: GET, path: "/health" }' in spec
    assert '- goto: "/"' in spec and "cli:" not in spec
    project.commit()
    verified = project.verify()
    assert verified.code == 0, verified.stdout
    assert verified.check("ready-page", "http")["message"] == "GET /health -> 200"
    assert verified.check("page-loads", "ui")["status"] == "passed"
    assert verified.check("tests/test_app.py::test_index", "required")["status"] == "passed"


def test_fastapi_without_a_venv_proposes_no_install(project: Project) -> None:
    project.write({
        "requirements.txt": "fastapi\nuvicorn\n",
        "api/__init__.py": "",
        "api/main.py": "from fastapi import FastAPI\n\napi = FastAPI()\n\n\n"
        '@api.get("/healthz")\ndef healthz():\n    return {"ok": True}\n',
        "api/util.py": "def slug(s):\n    return s.lower().replace(' ', '-')\n",
        "tests/test_util.py": "from api.util import slug\n\n\ndef test_slug():\n"
        "    assert slug('A B') == 'a-b'\n",
    })  # fmt: skip
    init(project)
    toml, spec = written(project)
    assert "pip install" not in toml.replace("python -m pip install -r requirements.txt)", "")
    assert "# no .venv or venv here: Shipyard never installs into the global interpreter" in toml
    assert "build = []" in toml and 'test = "python -m pytest -q"' in toml
    start = "python -m uvicorn api.main:api --host 127.0.0.1 --port {port}"
    assert f'start = "{start}"\nready = "/healthz"' in toml
    assert "ui:" not in spec and '- id: "tests/test_util.py::test_slug"' in spec
    loads(project)
    project.commit()
    run = project.verify()  # fastapi is in Shipyard's own dev environment: the app starts
    assert run.code == 0, run.stdout
    assert run.check("tests/test_util.py::test_slug", "required")["status"] == "passed"
    assert run.check("app-start", "app")["status"] == "passed"


def test_a_flask_app_with_an_init_db_command_gets_it_as_setup(project: Project) -> None:
    project.write({
        "flaskr.py": "import click\nfrom flask import Flask\n\napp = Flask(__name__)\n\n\n"
        '@app.cli.command("init-db")\ndef init_db():\n    click.echo("made")\n\n\n'
        '@app.get("/")\ndef index():\n    return "ok"\n',
        "tests/test_index.py": "from flaskr import app\n\n\ndef test_index():\n"
        "    assert app.test_client().get('/').data == b'ok'\n",
    })  # fmt: skip
    init(project)
    toml, _ = written(project)
    assert 'setup = ["python -m flask --app flaskr init-db"]' in toml, toml
    loads(project)
    project.commit()
    run = project.verify()
    assert run.code == 0, run.stdout
    assert run.check("app-start", "app")["status"] == "passed"


def test_a_django_shaped_tree(project: Project) -> None:
    project.write({
        "manage.py": "import sys\nfrom django.core.management import execute_from_command_line\n"
        "execute_from_command_line(sys.argv)\n",
        "requirements.txt": "django\n",
        "mysite/__init__.py": "",
        "mysite/settings.py": "ROOT_URLCONF = 'mysite.urls'\n",
        "mysite/urls.py": "from django.urls import path\nfrom polls import views\n\n"
        "urlpatterns = [path('', views.index), path('polls/<int:id>/', views.detail)]\n",
        "polls/__init__.py": "",
        "polls/views.py": "def index(request):\n    pass\n",
        "polls/templates/polls/index.html": "<h1>Polls</h1>\n",
    })  # fmt: skip
    venv(project, "venv")
    (project.path / "venv/lib/python3.11/site-packages/pip").mkdir(parents=True)
    init(project)
    toml, spec = written(project)
    assert 'build = ["venv/bin/python -m pip install -q -r requirements.txt"]' in toml
    start = "venv/bin/python manage.py runserver 127.0.0.1:{port} --noreload"
    assert f'start = "{start}"\nready = "/"' in toml
    assert "# Django's manage.py test writes no JUnit report: pytest-django does" in toml
    assert "ui:" in spec and "tests:" not in spec.replace("# tests:", "")
    loads(project)


EXPRESS_SERVER = """
const http = require('http');
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/html');
  if (req.url === '/') return res.end('<h1>users</h1>');
  res.statusCode = 404; res.end();
});
server.listen(Number(process.env.PORT), '127.0.0.1');
"""


@pytest.mark.browser
def test_express_with_mocha_keeps_the_scripts_arguments(project: Project) -> None:
    package = {
        "name": "users",
        "main": "index.js",
        "scripts": {"start": "node server.js", "test": "mocha --reporter spec --check-leaks test/"},
        "dependencies": {"express": "^4.21.0"},
        "devDependencies": {"mocha": "10.8.2"},
    }
    project.write({
        "package.json": json.dumps(package),
        "package-lock.json": "{}",
        "server.js": EXPRESS_SERVER,
        "public/style.css": "h1 {}\n",
        "test/app.js": "describe('app', () => { describe('GET /', () => {\n"
        "  it('answers', () => {}); }); });\n",
        ".gitignore": "node_modules\n",
    })  # fmt: skip
    run = init(project)
    toml, spec = written(project)
    assert 'build = ["npm ci --no-audit --no-fund"]' in toml
    assert 'test = "node_modules/.bin/mocha --reporter spec --check-leaks test/"' in toml
    assert 'start = "node server.js"\nready = "/"\nenv = { PORT = "{port}" }' in toml
    assert '- id: "test/app.js::app > GET / > answers"' in spec
    assert "ui:" in spec, run.stdout
    without_build(project)
    os.symlink(FIXTURES / "mocha" / "node_modules", project.path / "node_modules")
    project.commit()
    verified = project.verify()
    assert verified.code == 0, verified.stdout
    assert verified.check("test/app.js::app > GET / > answers", "required")["status"] == "passed"
    assert verified.check("ready-page", "http")["message"] == "GET / -> 200"


def test_a_vitest_project_then_verify(project: Project) -> None:
    project.write({
        "package.json": json.dumps({"name": "calc", "scripts": {"test": "vitest"},
                                    "devDependencies": {"vitest": "3.2.4"}}),
        "src/sum.js": "export const sum = (a, b) => a + b;\n",
        "src/sum.test.js": "import { describe, it, expect } from 'vitest';\n"
        "import { sum } from './sum.js';\n"
        "describe('sum', () => {\n  it('adds', () => { expect(sum(1, 2)).toBe(3); });\n});\n",
        ".gitignore": "node_modules\n",
    })  # fmt: skip
    init(project)
    toml, spec = written(project)
    assert "# no lock file: npm install (with package-lock.json it would be npm ci)" in toml
    assert 'build = ["npm install --no-audit --no-fund"]' in toml
    assert 'test = "node_modules/.bin/vitest"' in toml
    assert "\n[app]" not in toml and "# [app]" in toml
    assert '- id: "src/sum.test.js::sum > adds"' in spec and "http:" not in spec
    without_build(project)
    os.symlink(FIXTURES / "vitest" / "node_modules", project.path / "node_modules")
    project.commit()
    run = project.verify()
    assert run.code == 0, run.stdout
    assert run.check("src/sum.test.js::sum > adds", "required")["status"] == "passed"


def test_a_src_layout_with_a_venv(project: Project) -> None:
    project.write({
        "pyproject.toml": "[project]\nname = 'greet'\nversion = '0'\n\n"
        "[tool.pytest.ini_options]\npythonpath = ['src']\n",
        "src/greet/__init__.py": "def hello(name):\n    return f'hello {name}'\n",
        "src/greet/__main__.py": "import sys\nfrom greet import hello\n\n"
        "if '--help' in sys.argv:\n    print('usage: greet NAME')\nelse:\n"
        "    print(hello(sys.argv[1]))\n",
        "tests/test_greet.py": "import pytest\nfrom greet import hello\n\n\n"
        "@pytest.mark.parametrize('n', ['a'])\ndef test_many(n):\n    assert hello(n)\n\n\n"
        "def test_hello():\n    assert hello('x') == 'hello x'\n",
        ".gitignore": ".venv\n",
    })  # fmt: skip
    venv(project)
    init(project)
    toml, spec = written(project)
    # no pip in this virtualenv (uv makes them so): uv installs into it, never the global one
    assert 'build = ["uv pip install -q --python .venv/bin/python -e ."]' in toml
    assert "# src/ layout: package greet (installed with -e ., or on PYTHONPATH)" in toml
    assert '- id: "tests/test_greet.py::test_hello"' in spec  # not the parametrized one
    assert 'run: [".venv/bin/python", "-m", "greet", "--help"]' in spec
    without_build(project)
    project.commit()
    run = project.verify(env={"PYTHONPATH": str(project.path / "src")})  # as -e . would
    assert run.code == 0, run.stdout
    assert run.check("help", "cli")["status"] == "passed"


def test_init_refuses_to_overwrite_and_keeps_a_spec(project: Project) -> None:
    project.write({"tests/test_a.py": "def test_a():\n    assert 1 + 1 == 2\n",
                   "spec.yaml": "mine\n"})  # fmt: skip
    run = init(project)
    assert "spec.yaml: kept as it is" in run.stdout
    assert (project.path / "spec.yaml").read_text() == "mine\n"
    again = run_cli("init", cwd=project.path)
    assert again.code == 2 and "already exists" in again.stderr


def test_init_node_project(project: Project) -> None:
    project.write({"package.json": '{"name": "x", "scripts": {"build": "tsc"}}'})
    run = init(project)
    text = (project.path / "shipyard.toml").read_text()
    assert 'build = ["npm install --no-audit --no-fund", "npm run build"]' in text
    assert 'test = "node --test"' in text
    assert "spec.yaml: not written (no test, app or command found to check)" in run.stdout


def test_verify_without_a_spec_says_only_the_suite_ran(project: Project) -> None:
    project.write({"tests/test_a.py": "def test_a():\n    assert True\n"})
    init(project)
    (project.path / "spec.yaml").unlink()
    project.commit()
    run = run_cli("verify", cwd=project.path)
    assert run.code == 0, run.stdout
    assert run.stdout.startswith(
        "no spec: only the build and the test suite ran, nothing checked the acceptance "
        "criteria or the running app (`shipyard init` writes a spec.yaml skeleton; docs/spec.md)"
    ), run.stdout


def test_init_unknown_project_is_bad_input(project: Project) -> None:
    run = run_cli("init", cwd=project.path)
    assert run.code == 2
    assert "could not tell what kind of project" in run.stderr
