"""Hostile input ends in a clear error: exit 2 naming file, field and line (or exit 3 for a
damaged ledger), with memory bounded and nothing deleted. Through the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import BIN, PY_CONFIG, Project, run_cli
from fixtures.loop_support import (
    GOOD_SESSION,
    SPEC,
    LedgerView,
    make_project,
    script,
    shipyard_run,
    spec_file,
)

BOMB = """
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
task: *i
acceptance: [{id: x, text: *i}]
"""
MAX_RSS_MB = 300
"""Far above what refusing the bomb takes, far below what expanding it would."""


@dataclass
class Measured:
    code: int
    stdout: str
    stderr: str
    max_rss_mb: float


def measured(*args: str, cwd: Path, timeout: float = 60) -> Measured:
    """The real CLI, with the peak memory of that one process (``wait4``'s rusage)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    out, err = cwd.parent / "out.txt", cwd.parent / "err.txt"
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen(
            [str(BIN / "shipyard"), *args], cwd=cwd, env=env, stdout=o, stderr=e,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(proc.returncode, out.read_text(), err.read_text(), usage.ru_maxrss / 1024)


def _py_project(project: Project, config: str = PY_CONFIG) -> Project:
    project.write({"shipyard.toml": config, "calc.py": "def add(a, b):\n    return a + b\n"})
    project.write({"tests/test_calc.py": "from calc import add\n\ndef test_add():\n"
                   "    assert add(2, 3) == 5\n"})  # fmt: skip
    project.commit()
    return project


# -- 1. YAML aliases ---------------------------------------------------------------------------


def test_an_alias_bomb_in_the_spec_is_refused_with_memory_bounded(project: Project) -> None:
    _py_project(project)
    (project.path / "spec.yaml").write_text(BOMB.lstrip())
    result = measured("verify", cwd=project.path)
    assert result.code == 2, result.stdout + result.stderr
    assert "spec.yaml" in result.stderr and "aliases expand" in result.stderr, result.stderr
    assert result.max_rss_mb < MAX_RSS_MB, result.max_rss_mb


def test_a_recursive_alias_is_refused(project: Project) -> None:
    _py_project(project)
    (project.path / "spec.yaml").write_text("task: &t [*t]\nacceptance: []\n")
    result = project.verify()
    assert result.code == 2, result.stdout + result.stderr
    assert "spec.yaml" in result.stderr and "refers to itself" in result.stderr


def test_a_few_aliases_are_still_fine(project: Project) -> None:
    _py_project(project)
    spec = SPEC.replace("tests/test_multiply.py::test_multiply", "tests/test_calc.py::test_add")
    spec = spec.replace("text: multiply(3, 4) returns 12", "text: *t")
    spec = spec.replace("task: calc.multiply multiplies two numbers", "task: &t add works")
    (project.path / "spec.yaml").write_text(spec)
    result = project.verify()
    assert result.code == 0, result.stdout + result.stderr


def test_an_alias_bomb_in_a_script_file_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB.lstrip() + "implementer: *i\n")
    result = measured(
        "run", "multiply", "--spec", str(spec_file(tmp_path)), "--yes",
        "--model", f"script:{bomb}", cwd=project.path,
    )  # fmt: skip
    assert result.code == 3, result.stdout + result.stderr
    assert "bomb.yaml" in result.stderr and "aliases expand" in result.stderr
    assert result.max_rss_mb < MAX_RSS_MB, result.max_rss_mb


def test_an_alias_bomb_in_the_planners_answer_goes_back_to_it(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    planner = [{"output": {"spec_yaml": BOMB}}, {"output": {"spec_yaml": SPEC}}]
    path = script(tmp_path, planner=planner, implementer=GOOD_SESSION)
    result = measured(
        "run", "multiply two numbers", "--model", f"script:{path}", "--yes", cwd=project.path,
        timeout=120,
    )  # fmt: skip
    assert result.code == 0, result.stdout + result.stderr
    assert result.max_rss_mb < MAX_RSS_MB, result.max_rss_mb
    assert "aliases expand" in LedgerView(project).messages("planner")


# -- 2. paths from the config stay in the project ----------------------------------------------


@pytest.mark.parametrize("junit", ["{outside}", "../victim.xml"])
def test_commands_junit_outside_the_project_is_refused_and_nothing_deleted(
    project: Project, junit: str
) -> None:
    victim = project.path.parent / "victim.xml"
    victim.write_text("precious")
    config = f'[commands]\ntest = "true"\njunit = "{junit.format(outside=victim)}"\n'
    _py_project(project, config)
    result = project.verify()
    assert result.code == 2, result.stdout + result.stderr
    assert "shipyard.toml" in result.stderr and "commands.junit" in result.stderr
    assert "inside the project" in result.stderr
    assert victim.read_text() == "precious"


def test_commands_junit_through_a_symlink_out_of_the_project_is_refused(project: Project) -> None:
    victim = project.path.parent / "victim.xml"
    victim.write_text("precious")
    _py_project(project, '[commands]\ntest = "true"\njunit = "out/report.xml"\n')
    (project.path / "out").symlink_to(project.path.parent)
    (project.path.parent / "report.xml").write_text("precious too")
    result = project.verify()
    assert result.code == 2, result.stdout + result.stderr
    assert "commands.junit" in result.stderr and "outside the project" in result.stderr
    assert victim.read_text() == "precious"
    assert (project.path.parent / "report.xml").read_text() == "precious too"


def test_a_spec_given_on_the_command_line_may_be_anywhere_and_is_kept(project: Project) -> None:
    _py_project(project)
    outside = project.path.parent / "elsewhere.yaml"
    text = SPEC.replace("tests/test_multiply.py::test_multiply", "tests/test_calc.py::test_add")
    outside.write_text(text)
    result = project.verify("--spec", str(outside))
    assert result.code == 0, result.stdout + result.stderr
    assert outside.read_text() == text


# -- 3. NUL, env names, empty commands ---------------------------------------------------------

BAD_CONFIGS = [
    ('[commands]\ntest = "pytest\\u0000 -q"\n', "commands.test", "NUL"),
    ('[commands]\nbuild = ["make", "echo \\u0000"]\n', "commands.build[1]", "NUL"),
    ('[app]\nstart = ""\n', "app.start", "is empty"),
    ('[app]\nstart = "serve"\nenv = { "A=B" = "x" }\n', "app.env", "'A=B'"),
    ('[app]\nstart = "serve"\nenv = { A = "x\\u0000y" }\n', "app.env.A", "NUL"),
]


@pytest.mark.parametrize(("toml", "field", "message"), BAD_CONFIGS)
def test_bad_commands_and_env_in_the_config_exit_2_naming_the_field(
    project: Project, toml: str, field: str, message: str
) -> None:
    _py_project(project, toml)
    result = project.verify()
    assert result.code == 2, result.stdout + result.stderr
    assert "shipyard.toml:" in result.stderr and f"{field}: " in result.stderr, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


NUL_SPEC = SPEC.replace("text: multiply(3, 4) returns 12", 'text: "multiply\\0 works"')
BAD_SPECS = [
    (NUL_SPEC, "acceptance[0].text", 4),
    (SPEC + "app:\n  start: ''\n", "app.start", 11),
    (SPEC + "app:\n  env: {'X=1': y}\n", "app.env", 11),
    (SPEC.replace("checks:\n", "checks:\n  cli:\n    - id: c\n      run: [\"a\\0\"]\n"),
     "checks.cli[0].run[0]", 8),
]  # fmt: skip


@pytest.mark.parametrize(("text", "field", "line"), BAD_SPECS)
def test_nul_and_bad_env_in_the_spec_exit_2_naming_field_and_line(
    tmp_path: Path, text: str, field: str, line: int
) -> None:
    project = make_project(tmp_path)
    spec = spec_file(tmp_path, text)
    result = run_cli("run", "multiply", "--spec", str(spec), "--yes", "--model", "script:x",
                     cwd=project.path)  # fmt: skip
    assert result.code == 2, result.stdout + result.stderr
    assert f"{spec}:{line}: {field}: " in result.stderr, result.stderr
    assert not (project.path / ".shipyard" / "shipyard.db").exists()


# -- 4. a spec that is no regular file, or too big ----------------------------------------------


def test_a_fifo_a_device_or_a_huge_file_as_spec_exit_2(project: Project) -> None:
    _py_project(project)
    fifo = project.path.parent / "spec.fifo"
    os.mkfifo(fifo)
    huge = project.path.parent / "huge.yaml"
    huge.write_text("task: " + "x" * (3 * 1024 * 1024) + "\n")
    for path, says in ((fifo, "not a regular file"), (Path("/dev/zero"), "not a regular file"),
                       (huge, "larger than")):  # fmt: skip
        result = run_cli("verify", "--spec", str(path), cwd=project.path, timeout=30)
        assert result.code == 2, result.stdout + result.stderr
        assert str(path) in result.stderr and says in result.stderr, result.stderr


# -- 5. a damaged or emptied ledger ------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A project with one shipped run in its ledger."""
    tmp = tmp_path_factory.mktemp("shipped")
    project = make_project(tmp)
    result = shipyard_run(project, script(tmp, implementer=GOOD_SESSION), spec_file(tmp))
    assert result.code == 0, result.stdout + result.stderr
    return project.path, LedgerView(project).run()["id"]


def _copy(shipped: tuple[Path, str], tmp_path: Path) -> tuple[Path, str, Path]:
    source, run_id = shipped
    target = tmp_path / "copy"
    shutil.copytree(source, target, symlinks=True)
    return target, run_id, target / ".shipyard" / "shipyard.db"


def test_a_damaged_ledger_exits_3_saying_so_and_is_left_as_it_is(shipped, tmp_path) -> None:
    project, run_id, db = _copy(shipped, tmp_path)
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    data = bytearray(db.read_bytes())
    data[100:] = b"\xa5" * (len(data) - 100)  # the header intact, every page garbage
    db.write_bytes(bytes(data))
    spec = spec_file(tmp_path)
    for args in (("log", run_id), ("report", run_id), ("resume", run_id), ("stats",),
                 ("status",), ("run", "again", "--spec", str(spec), "--yes", "--model",
                               "script:x.yaml")):  # fmt: skip
        result = run_cli(*args, cwd=project)
        assert result.code == 3, (args, result.stdout + result.stderr)
        assert "the ledger is damaged" in result.stderr, (args, result.stderr)
        assert "mv .shipyard/shipyard.db" in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert db.read_bytes() == bytes(data)


def test_an_emptied_ledger_where_runs_existed_is_reported(shipped, tmp_path) -> None:
    project, run_id, db = _copy(shipped, tmp_path)
    db.write_bytes(b"")
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    result = run_cli("status", cwd=project)
    assert result.code == 0, result.stdout + result.stderr
    assert "holds no runs" in result.stderr and "1 run folder" in result.stderr, result.stderr
    assert run_id in result.stderr
    missing = run_cli("log", run_id, cwd=project)  # said again, not only the first time
    assert missing.code == 2, missing.stdout + missing.stderr
    assert "holds no runs" in missing.stderr and run_id in missing.stderr
