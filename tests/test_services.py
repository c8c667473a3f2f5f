"""The commands' environment (``env``, ``env_file``, ``cwd``), ``[app] setup`` and
``[services.NAME]``, through the real CLI: real PostgreSQL and Redis servers started as services
from the recipes in docs/services.md, and nothing of them left running after the verify."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from conftest import BIN, ROOT, CliRun, Project, leftover_processes

FIXTURES = Path(__file__).parent / "fixtures" / "services"
SECRET = "tok-5f2c9a-very-secret"
PYTEST = "python -m pytest -q -p no:cacheprovider"
BLOCKED = "not run: the services gate failed"


def recipes(marker: str) -> list[str]:
    """The TOML blocks of docs/services.md that contain ``marker``, as the docs show them."""
    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / "docs" / "services.md").read_text(), re.S)
    return [b for b in blocks if marker in b]


def postgres_recipe() -> str:
    """The recipe for the user this suite runs as: through runuser as root, else directly."""
    found = recipes("/usr/lib/postgresql/15/bin")
    assert len(found) == 2, "docs/services.md has a root and a user PostgreSQL recipe"
    return next(b for b in found if ("runuser" in b) == (os.geteuid() == 0))


def our_servers() -> list[str]:
    """Database and queue servers this test session started that are still running."""
    names = []
    for proc in leftover_processes():
        try:
            line = " ".join(proc.cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        names.append(line)
    return names


def need(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None and not Path(p).exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: .ci/run installs them")


def copy_fixture(name: str, tmp_path: Path) -> Project:
    project = Project(tmp_path / name)
    shutil.copytree(FIXTURES / name, project.path, dirs_exist_ok=True)
    return project


def statuses(run: CliRun) -> dict[str, str]:
    return {f"{g['name']}/{c['id']}": c["status"] for g in run.json["gates"] for c in g["checks"]}


@pytest.mark.slow
def test_a_fastapi_app_and_its_suite_use_a_real_postgresql_service(tmp_path: Path) -> None:
    need("/usr/lib/postgresql/15/bin/initdb", "pg_isready")
    project = copy_fixture("fastapi_pg", tmp_path)
    project.write(
        {
            "shipyard.toml": f"""
        [commands]
        test = "{PYTEST}"

        [app]
        start = "python -m uvicorn app:app --port {{port}}"
        ready = "/health"
        env = {{ DATABASE_URL = "postgresql://app@127.0.0.1:{{services.db.port}}/app" }}
        """
        }
    )
    with (project.path / "shipyard.toml").open("a") as fh:
        fh.write("\n" + postgres_recipe())
    project.commit()
    run = project.verify()
    assert run.code == 0, run.stdout + run.stderr
    gates = [g["name"] for g in run.json["gates"]]
    assert gates == ["services", "contract", "build", "tests", "runtime"]
    assert re.fullmatch(r"ready on port \d+ after [\d.]+s", run.check("db", "service")["message"])
    assert run.check("suite")["message"].endswith("exit 0, 2 passed")
    assert run.check("post-item")["status"] == "passed"
    assert run.check("list-items")["status"] == "passed"
    log = Path(run.json["run_dir"]) / run.check("db", "service")["evidence"]
    assert "database system is ready to accept connections" in log.read_text()
    assert our_servers() == [], "a database server outlived the verify"


WORKER_BROKEN = """
import redis


def drain(client: redis.Redis) -> int:
    return 0
"""
WORKER = """
import redis


def drain(client: redis.Redis) -> int:
    done = 0
    while (job := client.lpop("jobs")) is not None:
        client.rpush("results", job.decode().upper())
        done += 1
    return done
"""


@pytest.mark.slow
def test_a_worker_against_a_real_redis_service(project: Project) -> None:
    """Two services (Redis from the recipe, an HTTP one), their env in the suite and in the run
    at the base revision, their ports in commands and in CLI checks, a fresh Redis each verify."""
    need("redis-server", "redis-cli")
    config = f"""
        [commands]
        build = ['test "$(redis-cli -p {{services.redis.port}} dbsize)" = 0']
        test = "{PYTEST}"
        env = {{ FILES_URL = "http://127.0.0.1:{{services.files.port}}/" }}

        [services.files]
        start = "python -m http.server {{port}} --bind 127.0.0.1 --directory {{tmp}}"
        ready = "/"
        """
    project.write({"shipyard.toml": config, "worker.py": WORKER_BROKEN})
    with (project.path / "shipyard.toml").open("a") as fh:
        fh.write("\n" + recipes("[services.redis]")[0])
    project.commit("a worker that does nothing")
    project.write({
        "worker.py": WORKER,
        "tests/test_worker.py": """
            import os
            import urllib.request

            import redis

            from worker import drain


            def test_the_worker_drains_the_queue():
                client = redis.Redis.from_url(os.environ["REDIS_URL"])
                client.flushdb()
                client.rpush("jobs", "a", "b")
                assert drain(client) == 2
                assert client.lrange("results", 0, -1) == [b"A", b"B"]


            def test_the_other_service_answers():
                with urllib.request.urlopen(os.environ["FILES_URL"]) as answer:
                    assert answer.status == 200
        """,
        "spec.yaml": """
            task: A worker that drains the job queue
            acceptance:
              - {id: drain, text: Every queued job is processed}
            checks:
              tests:
                required:
                  - {id: tests/test_worker.py::test_the_worker_drains_the_queue, covers: [drain]}
              cli:
                - id: queue-is-reachable
                  covers: [drain]
                  run: redis-cli -p {services.redis.port} ping
                  expect: {stdout_contains: [PONG]}
        """,
    })  # fmt: skip
    project.commit("the worker drains the queue")
    run = project.verify("--base", "HEAD~1")
    assert run.code == 0, run.stdout + run.stderr
    assert [c["id"] for c in run.json["gates"][0]["checks"]] == ["files", "redis"]
    assert run.check("suite")["message"].endswith("exit 0, 2 passed")
    ftp = run.check("tests/test_worker.py::test_the_worker_drains_the_queue", "fail_to_pass")
    assert ftp["message"].startswith("fails against the base code (failed there: ")
    assert "assert 0 == 2" in ftp["message"]  # it reached Redis at the base, too
    assert run.check("queue-is-reachable")["status"] == "passed"
    assert our_servers() == [], "a service outlived the verify"
    again = project.verify("--no-cache")  # its build's dbsize check: an empty Redis again
    assert again.code == 0, again.stdout + again.stderr
    assert again.check("build-1")["status"] == "passed"
    assert our_servers() == [], "a service outlived the verify"


@pytest.mark.slow
def test_app_setup_initialises_the_flask_apps_database(tmp_path: Path) -> None:
    project = copy_fixture("flask_setup", tmp_path)
    project.commit()
    run = project.verify()
    assert run.code == 0, run.stdout + run.stderr
    start = run.check("app-start")
    assert start["status"] == "passed" and start["message"].startswith("ready on port")
    assert run.check("front-page")["status"] == "passed"
    setup_log = Path(run.json["run_dir"]) / "app" / "setup-1.log"
    assert "Initialized the database." in setup_log.read_text()

    toml = project.path / "shipyard.toml"
    toml.write_text(toml.read_text().replace("init-db", "init-the-db"))
    project.commit("a setup command that fails")
    run = project.verify()
    assert run.code == 1, run.stdout + run.stderr
    start = run.check("app-start")
    assert start["status"] == "failed"
    assert start["message"].startswith("app.setup[0] failed: flask --app app init-the-db: exit 2")
    assert "No such command 'init-the-db'" in start["message"]
    assert start["evidence"] == "app/setup-1.log"
    front = run.check("front-page")
    assert (front["status"], front["message"]) == ("not_run", "the app did not start")

    toml.write_text(toml.read_text().replace('setup = ["flask --app app init-the-db"]\n', ""))
    project.commit("no setup: the app's page fails")
    run = project.verify()
    assert run.code == 1
    assert "no such table: note" in run.check("front-page")["message"]


def test_commands_env_env_file_and_cwd(project: Project) -> None:
    project.write({
        "shipyard.toml": """
            [commands]
            build = ["echo building with $API_TOKEN in $PWD"]
            test = "python -m pytest -q -p no:cacheprovider"
            cwd = "backend"
            env_file = ".env.test"
            env = { MODE = "test", SCRATCH = "{tmp}/scratch", ROOT = "{workdir}" }
        """,
        ".env.test": f"""
            # the test server's key
            export API_TOKEN="{SECRET}"
            SHORT=on
        """,
        ".gitignore": ".env.test\n",
        "backend/tests/test_env.py": """
            import os
            from pathlib import Path


            def test_sees_its_environment():
                assert os.environ["MODE"] == "test" and os.environ["SHORT"] == "on"
                assert Path.cwd().name == "backend"
                assert Path(os.environ["ROOT"]) == Path.cwd().parent
                scratch = Path(os.environ["SCRATCH"])
                assert scratch.parent.is_dir() and scratch.parent.name.startswith("shipyard-")


            def test_leaks_the_token():
                print(os.environ["API_TOKEN"])
                assert os.environ["API_TOKEN"] == "something else"
        """,
        "spec.yaml": """
            task: Tests that read the environment
            acceptance:
              - {id: env, text: The suite sees the project's variables}
            checks:
              tests:
                required:
                  - {id: backend/tests/test_env.py::test_sees_its_environment, covers: [env]}
        """,
    })  # fmt: skip
    project.commit()
    run = project.verify()
    assert run.code == 1, run.stdout + run.stderr
    assert run.check("backend/tests/test_env.py::test_sees_its_environment")["status"] == "passed"
    suite = run.check("suite")["message"]
    assert suite.startswith("1 of 2 tests failed: backend/tests/test_env.py::test_leaks_the_token")
    build = run.check("build-1")["message"]
    assert build == "echo building with $API_TOKEN in $PWD: exit 0"
    run_dir = Path(run.json["run_dir"])
    assert f"in {project.path / 'backend'}" in (run_dir / "commands/build-1.log").read_text()
    assert "[env_file value]" in (run_dir / "commands/build-1.log").read_text()
    assert "[env_file value]" in (run_dir / "tests/outcomes.json").read_text()
    assert SECRET not in run.stdout + run.stderr
    leaked = [
        str(p)
        for p in (project.path / ".shipyard").rglob("*")
        if p.is_file() and SECRET.encode() in p.read_bytes()
    ]
    assert leaked == [], f"the env_file's value is in {leaked}"


def test_a_bad_env_file_line_is_named_without_its_content(project: Project) -> None:
    project.write({
        "shipyard.toml": '[commands]\ntest = "python -m pytest -q"\nenv_file = ".env"\n',
        ".env": f"GOOD=1\nthis is {SECRET}\n",
    })  # fmt: skip
    run = project.verify()
    assert run.code == 2
    assert ".env:2: not a KEY=VALUE line (the line is not shown" in run.stderr
    assert SECRET not in run.stdout + run.stderr
    (project.path / ".env").unlink()
    run = project.verify()
    assert run.code == 2 and "commands.env_file" in run.stderr and "does not exist" in run.stderr


def test_a_placeholder_naming_no_service_is_bad_input(project: Project) -> None:
    project.write({
        "shipyard.toml": """
            [commands]
            test = "python -m pytest -q --db-port {services.db.port}"
            [services.cache]
            start = "sleep 30"
        """
    })  # fmt: skip
    run = project.verify()
    assert run.code == 2, run.stdout + run.stderr
    assert "commands.test: {services.db.port} names no service (known: services.cache.port)" in (
        run.stderr
    )
    assert our_servers() == []


def test_a_service_that_never_gets_ready_fails_its_check(project: Project) -> None:
    project.write({
        "shipyard.toml": f"""
            [commands]
            test = "{PYTEST}"
            [services.db]
            start = "sleep 60"
            ready_timeout = 1
            [services.cache]
            start = "sleep 60"
        """,
        "tests/test_x.py": "def test_x():\n    pass\n",
    })  # fmt: skip
    project.commit()
    run = project.verify()
    assert run.code == 1, run.stdout + run.stderr
    db = run.check("db", "service")
    assert db["status"] == "failed"
    assert db["message"].startswith("the service was not ready after 1s (port ")
    assert "Connection refused" in db["message"]
    cache = run.check("cache", "service")
    assert cache["status"] == "not_run"
    assert cache["message"] == "not run: service db did not get ready"
    suite = run.check("suite")
    assert (suite["status"], suite["message"]) == ("not_run", BLOCKED)
    assert our_servers() == [], "the service that never got ready is still running"


def test_a_service_that_exits_first_fails_with_its_output(project: Project) -> None:
    project.write({
        "shipyard.toml": """
            [services.db]
            start = "sh -c 'echo cannot open the data folder >&2; exit 4'"
        """
    })  # fmt: skip
    run = project.verify()
    assert run.code == 1, run.stdout + run.stderr
    db = run.check("db", "service")
    assert db["message"].startswith("the service exited with code 4 before it was ready: sh -c")
    assert "  | cannot open the data folder" in db["message"]
    assert db["evidence"] == "services/db.log"


@pytest.mark.parametrize(
    ("start", "named"),
    [
        ("no-such-database-server --port {port}", "'no-such-database-server' was not found"),
        ("true && no-such-database-server --port {port}", "a program in 'true && no-such"),
    ],
)
def test_a_missing_service_program_cannot_check(project: Project, start: str, named: str) -> None:
    project.write({"shipyard.toml": f'[services.db]\nstart = "{start}"\n'})
    run = project.verify()
    assert run.code == 3, run.stdout + run.stderr
    assert "services.db.start" in run.stderr and named in run.stderr
    assert our_servers() == []


def test_a_changed_env_file_is_not_answered_from_the_cache(project: Project) -> None:
    project.write({
        "shipyard.toml": f'[commands]\ntest = "{PYTEST}"\nenv_file = "config/test.env"\n',
        "config/test.env": "EXPECTED=one\n",
        ".gitignore": "config/test.env\n",
        "tests/test_x.py": """
            import os


            def test_expected():
                assert os.environ["EXPECTED"] == "one"
        """,
    })  # fmt: skip
    project.commit()
    assert project.verify().code == 0
    again = project.verify()
    assert again.code == 0 and again.json["cached"] is True
    (project.path / "config/test.env").write_text("EXPECTED=two\n")
    changed = project.verify()
    assert changed.json["cached"] is False
    assert changed.code == 1, changed.stdout
    suite = changed.check("suite")["message"]
    assert suite.startswith("1 of 1 tests failed: tests/test_x.py::test_expected")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_cancelled_or_killed_verify_leaves_no_service_running(
    project: Project, sig: signal.Signals
) -> None:
    need("redis-server")
    started = project.path / "started"
    project.write({
        "shipyard.toml": f'[commands]\ntest = "{PYTEST}"\n\n' + recipes("[services.redis]")[0],
        "tests/test_hang.py": f"""
            import time
            def test_hang():
                open({str(started)!r}, "w").write("yes")
                time.sleep(300)
        """,
    })  # fmt: skip
    proc = subprocess.Popen(
        [str(BIN / "shipyard"), "verify", "--project", str(project.path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the suite never started"
        time.sleep(0.05)
    assert any("redis-server" in line for line in our_servers())
    proc.send_signal(sig)
    assert proc.wait(timeout=30) in (128 + sig, -sig)
    deadline = time.monotonic() + 10
    while (left := our_servers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == [], "a service outlived the verify"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[services.db]\nstart = "x"\nready = "tcp"\nready_command = "true"\n',
            "shipyard.toml:1: services.db: give ready or ready_command, not both",
        ),
        (
            '[services.db]\nstart = "x"\nready = "pg_isready"\n',
            'shipyard.toml:3: services.db.ready: must be "tcp" or an HTTP path',
        ),
        ('[services."my db"]\nstart = "x"\n', "services.my db: String should match pattern"),
        ('[app]\nstart = "x"\nsetup = [""]\n', "app.setup[0]: is empty"),
        ('[commands]\ncwd = "../elsewhere"\n', "commands.cwd: '../elsewhere': must be a path"),
    ],
)
def test_bad_service_and_setup_settings_are_bad_input(
    project: Project, toml: str, message: str
) -> None:
    project.write({"shipyard.toml": toml})
    run = project.verify()
    assert run.code == 2, run.stdout + run.stderr
    assert message in run.stderr
