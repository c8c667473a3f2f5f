"""The commands' environment and the services against hostile input: env_file values never in
an error or the evidence, every run at the base with services of its own, a bad ``cwd`` named,
and nothing a service left behind still running after the verify."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest

from conftest import Project
from shipyard.config_services import read_env_file

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
        (
            ENV_FILE + "[services.db]\nstart = \"sh -c '$API_TOKEN --port {port}'\"\n",
            "services.db.start",
        ),
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


XML_SECRET = "p&ss<w\"rd>'42"


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


URL_SECRET = "s3cr3t/p@ss+word=long"


def test_a_long_value_shortened_or_percent_encoded_is_scrubbed_too(project: Project) -> None:
    """pytest shortens a long value to its head and tail around ``...``; a password inside a URL
    is percent-encoded: neither piece of the value reaches stdout, ``--json`` or the evidence."""
    project.write({
        "shipyard.toml": f'[commands]\ntest = "{PYTEST}"\nenv_file = ".env"\n',
        ".env": f"API_TOKEN={URL_SECRET}\n",
        ".gitignore": ".env\n",
        "tests/test_leak.py": """
            import os
            import urllib.parse

            T = os.environ["API_TOKEN"]


            def test_leaks_the_token():
                print(urllib.parse.quote(T, safe=""), urllib.parse.quote(T))
                assert T * 30 == "x"
        """,
    })  # fmt: skip
    project.commit()
    run = project.verify()
    assert run.code == 1, run.stdout + run.stderr
    pieces = ("s3cr3t/p", "@ss+word=long", "s3cr3t%2Fp%40ss%2Bword%3Dlong", "s3cr3t/p%40ss")
    shown = run.stdout + run.stderr + json.dumps(run.json)
    assert not [p for p in pieces if p in shown], shown
    leaked = [
        (path, piece)
        for path in (project.path / ".shipyard").rglob("*")
        if path.is_file()
        for piece in pieces
        if piece in path.read_text(errors="replace")
    ]
    assert leaked == []
    output = Path(run.json["run_dir"], "tests/output.log").read_text()
    assert "[env_file value]" in output and "..." in output


COUNTER = """
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits = [0]


    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits[0] += 1
            body = str(hits[0]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass


    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def test_every_run_at_the_base_gets_services_and_a_tmp_of_its_own(project: Project) -> None:
    """The head's suite leaves state in the service and in {tmp}: a run at the base sharing them
    would fail there and make fail-to-pass pass for a change that changes nothing."""
    project.write({
        "shipyard.toml": f"""
            [commands]
            test = "{PYTEST}"
            env = {{ SCRATCH = "{{tmp}}" }}
            [services.counter]
            start = "python counter.py {{port}}"
            env = {{ COUNTER_URL = "http://127.0.0.1:{{services.counter.port}}/" }}
        """,
        "counter.py": COUNTER,
        "tests/test_state.py": """
            import os
            from pathlib import Path
            from urllib.request import urlopen


            def test_first_hit():
                assert urlopen(os.environ["COUNTER_URL"]).read() == b"1"


            def test_fresh_scratch():
                marker = Path(os.environ["SCRATCH"]) / "marker"
                assert not marker.exists()
                marker.write_text("the head was here")
        """,
        "spec.yaml": """
            task: State
            acceptance:
              - {id: fresh, text: Each run starts from a fresh service}
              - {id: scratch, text: Each run starts from a fresh folder}
            checks:
              tests:
                required:
                  - {id: tests/test_state.py::test_first_hit, covers: [fresh]}
                  - {id: tests/test_state.py::test_fresh_scratch, covers: [scratch]}
        """,
    })  # fmt: skip
    project.commit()
    run = project.verify("--base", "HEAD")
    assert run.code == 1, run.stdout + run.stderr
    assert run.check("suite")["status"] == "passed", run.check("suite")["message"]
    for name in ("test_first_hit", "test_fresh_scratch"):
        check = run.check(f"tests/test_state.py::{name}", "fail_to_pass")
        assert check["status"] == "failed", check
        assert check["message"].startswith("passes against the base code")
    assert run.check("no-weakening")["status"] == "passed"
    run_dir = Path(run.json["run_dir"])
    assert (run_dir / "base/original/services/counter.log").is_file()


def test_a_run_at_the_base_whose_services_do_not_start_is_an_error(project: Project) -> None:
    project.write({
        "shipyard.toml": f"""
            [commands]
            test = "{PYTEST}"
            [services.flaky]
            start = "python flaky.py {{port}}"
            ready_timeout = 5
        """,
        "flaky.py": """
            import os, socket, sys, time
            first = os.path.join(os.path.dirname(os.path.abspath(__file__)), "started-once")
            if os.path.exists(first):
                sys.exit("the second start fails")
            open(first, "w").close()
            server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
            time.sleep(120)
        """,
        ".gitignore": "started-once\\n",
        "tests/test_x.py": "def test_x():\\n    pass\\n",
        "spec.yaml": """
            task: X
            acceptance:
              - {id: x, text: X}
            checks:
              tests:
                required:
                  - {id: tests/test_x.py::test_x, covers: [x]}
        """,
    })  # fmt: skip
    project.commit()
    run = project.verify("--base", "HEAD")
    assert run.code == 1, run.stdout + run.stderr
    weak = run.check("no-weakening")
    assert weak["status"] == "error", weak
    assert "could not be isolated from the head's run" in weak["message"]
    assert "the second start fails" in weak["message"]
    ftp = run.check("tests/test_x.py::test_x", "fail_to_pass")
    assert ftp["status"] == "error", ftp


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_a_cwd_that_is_no_folder_is_bad_input_naming_the_field(project: Project, kind: str) -> None:
    project.write({
        "shipyard.toml": f'[commands]\ntest = "{PYTEST}"\ncwd = "backend"\n',
        **({"backend": "not a folder\n"} if kind == "file" else {}),
    })  # fmt: skip
    run = project.verify()
    assert run.code == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    what = "is not a folder" if kind == "file" else "does not exist"
    assert "shipyard.toml:3: commands.cwd: " in run.stderr and what in run.stderr


def test_a_cwd_missing_at_the_base_is_an_error_verdict(project: Project) -> None:
    project.write({"shipyard.toml": f'[commands]\ntest = "{PYTEST}"\ncwd = "backend"\n'})
    project.commit()
    project.write({"backend/tests/test_x.py": "def test_x():\n    pass\n"})
    run = project.verify("--base", "HEAD")
    assert "Traceback" not in run.stderr
    assert run.check("suite")["status"] == "passed", run.stdout + run.stderr
    weak = run.check("no-weakening")
    assert weak["status"] == "error"
    assert "could not check: commands.cwd does not exist there" in weak["message"]


def test_a_process_a_service_set_loose_is_killed_at_the_end(project: Project) -> None:
    """``env -i setsid`` drops the environment tag and the process group: only being
    Shipyard's (subreaper's) orphan is left to find it by, once the service is stopped."""
    pidfile = project.path / "escaped.pid"
    server = "python -m http.server --bind 127.0.0.1 {port}"
    project.write({
        "shipyard.toml": f"""
            [commands]
            test = "{PYTEST}"
            [services.web]
            start = "sh -c 'env -i setsid sleep 300 & echo $! > {pidfile}; exec {server}'"
        """,
        "tests/test_x.py": "def test_x():\n    pass\n",
    })  # fmt: skip
    project.commit()
    run = project.verify()
    assert run.code == 0, run.stdout + run.stderr
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the process the service set loose outlived the verify"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_ready_command_missing_its_program_inside_sh_cannot_check(project: Project) -> None:
    project.write({
        "shipyard.toml": """
            [services.db]
            start = "sleep 30"
            ready_command = "sh -c 'no-such-probe-tool --quiet'"
            ready_timeout = 20
        """
    })  # fmt: skip
    started = time.monotonic()
    run = project.verify()
    assert run.code == 3, run.stdout + run.stderr
    assert "services.db.ready_command" in run.stderr and "no-such-probe-tool" in run.stderr
    assert time.monotonic() - started < 15, "it waited for the ready_timeout"


def test_env_file_quotes_go_also_before_a_comment(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        'A="quoted value" # the comment\n'
        "B='single'\t# another\n"
        'C="has # inside"\n'
        "D=plain # comment\n"
        'E="a"b"\n'
        "F=x#y\n"
    )
    assert read_env_file(env, source="shipyard.toml") == {
        "A": "quoted value", "B": "single", "C": "has # inside", "D": "plain", "E": 'a"b',
        "F": "x#y",
    }  # fmt: skip


def test_a_missing_env_file_names_the_line_that_sets_it(project: Project) -> None:
    project.write({"shipyard.toml": f'[commands]\ntest = "{PYTEST}"\nenv_file = ".env.test"\n'})
    run = project.verify()
    assert run.code == 2, run.stdout + run.stderr
    assert "shipyard.toml:3: commands.env_file: " in run.stderr
    assert ".env.test does not exist (the env_file" in run.stderr


@pytest.mark.parametrize("kind", ["not utf-8", "a link out of the project"])
def test_an_unreadable_or_escaping_env_file_names_the_field(project: Project, kind: str) -> None:
    project.write({"shipyard.toml": f'[commands]\ntest = "{PYTEST}"\nenv_file = "x.env"\n'})
    if kind == "not utf-8":
        (project.path / "x.env").write_bytes(b"\xff\xfeK=\xff\n")
        expected = "x.env is not UTF-8 text"
    else:
        outside = project.path.parent / "outside.env"
        outside.write_text("K=value-from-outside\n")
        (project.path / "x.env").symlink_to(outside)
        expected = "leads out of the project"
    run = project.verify()
    assert run.code == 2, run.stdout + run.stderr
    assert "shipyard.toml:3: commands.env_file: " in run.stderr and expected in run.stderr
    assert "value-from-outside" not in run.stdout + run.stderr
