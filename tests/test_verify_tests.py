"""The build and test gates end to end: the real CLI on real git repositories."""

from __future__ import annotations

import importlib.util
import os
import py_compile
import time
from pathlib import Path

import pytest

from conftest import CALC_NEW, CALC_OLD, PY_CONFIG, Project, git

SPEC_ADD = """
task: add returns the sum
acceptance:
  - {id: add, text: add of 2 and 3 is 5}
checks:
  tests:
    required:
      - {id: tests/test_calc.py::test_add, covers: [add]}
"""

TEST_ADD = """
from calc import add

def test_add():
    assert add(2, 3) == 5
"""


def base_project(project: Project) -> str:
    project.write({
        "shipyard.toml": PY_CONFIG,
        "calc.py": CALC_OLD,
        "tests/test_old.py": "def test_old():\n    assert True\n",
    })  # fmt: skip
    return project.commit("base")


def test_passing_project(project: Project) -> None:
    base_project(project)
    project.write({"calc.py": CALC_NEW, "tests/test_calc.py": TEST_ADD, "spec.yaml": SPEC_ADD})
    run = project.verify("--base", "HEAD")
    assert run.code == 0, run.stdout + run.stderr
    doc = run.json
    assert doc["verdict"] == "passed"
    assert [g["name"] for g in doc["gates"]] == ["contract", "build", "tests", "runtime"]
    assert run.check("tests/test_calc.py::test_add", "required")["status"] == "passed"
    ftp = run.check("tests/test_calc.py::test_add", "fail_to_pass")
    assert ftp["status"] == "passed" and ftp["covers"] == ["add"]
    assert run.check("no-weakening")["status"] == "passed"
    assert "2 passed" in run.check("suite")["message"]


def test_evidence_folder(project: Project) -> None:
    base_project(project)
    project.write({"calc.py": CALC_NEW, "tests/test_calc.py": TEST_ADD, "spec.yaml": SPEC_ADD})
    run = project.verify()
    run_dir = project.path / ".shipyard" / "runs" / run.json["run_id"]
    assert (run_dir / "verdict.json").is_file() and (run_dir / "spec.json").is_file()
    assert "test_add" in (run_dir / "tests" / "junit.xml").read_text()
    assert (run_dir / run.check("build-1")["evidence"]).is_file()
    # git ignores the state folder without the user's .gitignore being touched
    assert not (project.path / ".gitignore").exists()
    assert ".shipyard" not in git(project.path, "status", "--porcelain")


def test_failing_test_fails(project: Project) -> None:
    base_project(project)
    project.write({"tests/test_calc.py": TEST_ADD, "spec.yaml": SPEC_ADD})  # calc still wrong
    run = project.verify()
    assert run.code == 1
    required = run.check("tests/test_calc.py::test_add", "required")
    assert required["status"] == "failed" and "assert" in required["message"]
    assert "1 of 2 tests failed" in run.check("suite")["message"]


def test_failing_build_stops_what_depends_on_it(project: Project) -> None:
    base_project(project)
    project.write({
        "shipyard.toml": PY_CONFIG.replace(
            'build = ["python -m compileall -q calc.py"]',
            'build = ["python -c \'raise SystemExit(4)\'", "python -m compileall -q calc.py"]',
        ),
        "tests/test_calc.py": TEST_ADD,
        "spec.yaml": SPEC_ADD,
    })  # fmt: skip
    run = project.verify()
    assert run.code == 1
    assert run.check("build-1")["status"] == "failed"
    assert "exit 4" in run.check("build-1")["message"]
    assert run.check("build-2")["status"] == "not_run"
    assert run.check("suite")["status"] == "not_run"
    assert run.check("tests/test_calc.py::test_add", "required")["status"] == "not_run"


def test_syntax_error_fails_build_and_tests(project: Project) -> None:
    base_project(project)
    project.write({"calc.py": "def add(a, b)\n    return a + b\n", "tests/test_calc.py": TEST_ADD})
    run = project.verify()
    assert run.code == 1
    assert "SyntaxError" in run.check("build-1")["message"]


def test_syntax_error_in_tests_is_a_failure(project: Project) -> None:
    base_project(project)
    project.write({
        "shipyard.toml": PY_CONFIG.replace('build = ["python -m compileall -q calc.py"]', ""),
        "calc.py": CALC_NEW,
        "tests/test_calc.py": "def test_add(:\n    pass\n",
        "spec.yaml": SPEC_ADD,
    })  # fmt: skip
    run = project.verify()
    assert run.code == 1
    assert run.check("suite")["status"] == "failed"
    assert "missing" in run.check("tests/test_calc.py::test_add", "required")["message"]


def test_hanging_suite_is_killed_at_its_timeout(project: Project) -> None:
    base_project(project)
    project.write({
        "shipyard.toml": PY_CONFIG.replace("timeout = 60", "timeout = 2"),
        "tests/test_hang.py": """
            import subprocess, time
            def test_hang():
                subprocess.Popen(["sleep", "300"])  # a child in the same process group
                time.sleep(300)
        """,
    })  # fmt: skip
    started = time.monotonic()
    run = project.verify()
    took = time.monotonic() - started
    assert run.code == 1
    assert "killed at its timeout of 2s" in run.check("suite")["message"]
    assert took < 2 + 8, f"verify took {took:.1f}s for a 2s timeout"


def test_zero_tests_is_a_failure(project: Project) -> None:
    project.write(
        {"shipyard.toml": PY_CONFIG, "calc.py": CALC_NEW, "tests/test_none.py": "X = 1\n"}
    )
    project.commit()
    run = project.verify()
    assert run.code == 1
    assert "zero tests" in run.check("suite")["message"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "import pytest\n@pytest.mark.skip(reason='later')\ndef test_add():\n    pass\n",
            "skipped",
        ),
        (
            "import pytest\n@pytest.mark.xfail(reason='known')\ndef test_add():\n    assert 0\n",
            "xfail",
        ),
        ("def test_other():\n    pass\n", "missing"),
    ],
    ids=["skipped", "xfail", "missing"],
)
def test_required_test_that_does_not_pass(project: Project, body: str, expected: str) -> None:
    base_project(project)
    project.write({"calc.py": CALC_NEW, "tests/test_calc.py": body, "spec.yaml": SPEC_ADD})
    run = project.verify()
    assert run.code == 1
    check = run.check("tests/test_calc.py::test_add", "required")
    assert check["status"] == "failed"
    assert expected in check["message"]


@pytest.mark.usefixtures("verify_modes")
def test_test_that_asserts_nothing_is_caught_by_fail_to_pass(project: Project) -> None:
    base_project(project)
    project.write({
        "calc.py": CALC_NEW,
        "tests/test_calc.py": "from calc import add\n\ndef test_add():\n    add(2, 3)\n",
        "spec.yaml": SPEC_ADD,
    })  # fmt: skip
    without_base = project.verify()
    assert without_base.code == 0  # it passes: only the base revision shows it proves nothing
    run = project.verify("--base", "HEAD")
    assert run.code == 1
    check = run.check("tests/test_calc.py::test_add", "fail_to_pass")
    assert check["status"] == "failed"
    assert "passes against the base code: it cannot detect the change" in check["message"]


@pytest.mark.usefixtures("verify_modes")
def test_required_test_in_a_file_that_existed_at_base(project: Project) -> None:
    base_project(project)
    project.write({"calc.py": CALC_NEW, "tests/test_old.py": "def test_old():\n    assert True\n"
                   + TEST_ADD, "spec.yaml": SPEC_ADD.replace("test_calc", "test_old")})  # fmt: skip
    run = project.verify("--base", "HEAD")
    assert run.code == 0, run.stdout
    assert run.check("tests/test_old.py::test_add", "fail_to_pass")["status"] == "passed"
    assert "all 1 tests" in run.check("no-weakening")["message"]


@pytest.mark.usefixtures("verify_modes")
def test_deleted_and_skipped_tests_relative_to_base_are_named(project: Project) -> None:
    base_project(project)
    project.write(
        {"tests/test_more.py": "def test_keep():\n    pass\n\ndef test_skip_me():\n    pass\n"}
    )
    project.commit("more tests")
    project.remove("tests/test_old.py")
    project.write({
        "tests/test_more.py": "import pytest\n\ndef test_keep():\n    pass\n\n"
        "@pytest.mark.skip\ndef test_skip_me():\n    pass\n",
    })  # fmt: skip
    run = project.verify("--base", "HEAD")
    assert run.code == 1
    assert run.check("tests/test_old.py::test_old", "weakening")["message"] == (
        "passed at the base revision, missing now"
    )
    assert (
        "was skipped now" in run.check("tests/test_more.py::test_skip_me", "weakening")["message"]
    )
    with pytest.raises(AssertionError):
        run.check("tests/test_more.py::test_keep", "weakening")


def test_uncovered_acceptance_id_fails(project: Project) -> None:
    base_project(project)
    project.write({"calc.py": CALC_NEW, "tests/test_calc.py": TEST_ADD})
    text = SPEC_ADD.replace(
        "  - {id: add, text: add of 2 and 3 is 5}",
        "  - {id: add, text: add of 2 and 3 is 5}\n  - {id: sub, text: sub of 3 and 2 is 1}",
    )
    project.write({"spec.yaml": text})
    run = project.verify()
    assert run.code == 1
    check = run.check("sub", "coverage")
    assert check["status"] == "failed" and "no check covers it" in check["message"]
    assert run.check("add", "coverage")["status"] == "passed"


def test_human_output_is_one_line_per_check(project: Project) -> None:
    from conftest import run_cli

    base_project(project)
    project.write({"tests/test_calc.py": TEST_ADD, "spec.yaml": SPEC_ADD})
    run = run_cli("verify", cwd=project.path)
    assert run.code == 1
    lines = run.stdout.splitlines()
    assert any(line.startswith("  ✗ required tests/test_calc.py::test_add") for line in lines)
    assert any(line.startswith("  ✓ build-1") for line in lines)
    assert lines[-1].startswith("not verified (exit 1)")
    assert "Traceback" not in run.stdout + run.stderr


def test_test_ids_are_relative_to_the_project_when_pytest_roots_higher(project: Project) -> None:
    project.write({"pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-q'\n"})
    sub = Project.__new__(Project)
    sub.path = project.path / "svc"
    project.write({
        "svc/shipyard.toml": PY_CONFIG,
        "svc/calc.py": CALC_NEW,
        "svc/tests/test_calc.py": TEST_ADD,
        "svc/spec.yaml": SPEC_ADD,
    })  # fmt: skip
    run = sub.verify()
    assert run.code == 0, run.stdout
    assert run.check("tests/test_calc.py::test_add", "required")["status"] == "passed"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("python -m pytest -q", "python -m pytest -q --junitxml=R -o junit_family=xunit1"),
        ("python -m pytest -q 2>&1 | tee log",
         "python -m pytest -q 2>&1 --junitxml=R -o junit_family=xunit1 | tee log"),
        ('python -m pytest -k "add|divide"',
         'python -m pytest -k "add|divide" --junitxml=R -o junit_family=xunit1'),
        ("python -m pytest --version && python -m pytest -q",
         "python -m pytest --version && python -m pytest -q --junitxml=R -o junit_family=xunit1"),
        ("pytest tests; true", "pytest tests --junitxml=R -o junit_family=xunit1; true"),
        ("node --test test/", "node --test --test-reporter=spec --test-reporter-destination=stdout"
         " --test-reporter=REPORTER --test-reporter-destination=R test/"),
    ],
)  # fmt: skip
def test_the_report_option_goes_to_the_runner_not_the_pipe(command: str, expected: str) -> None:
    from pathlib import Path

    from shipyard.gates.tests import NODE_REPORTER, with_report

    full, _ = with_report(command, Path("R"), None, Path("."))
    assert full == expected.replace("REPORTER", str(NODE_REPORTER))


def test_a_same_second_same_size_rewrite_runs_as_the_new_code(project: Project) -> None:
    # calc.py compiled, then rewritten with the same size in the same second: Python (and the
    # build's compileall) would take the old bytecode for the new source
    base_project(project)
    project.write({"tests/test_calc.py": TEST_ADD, "spec.yaml": SPEC_ADD})
    source = project.path / "calc.py"
    cached = Path(importlib.util.cache_from_source(str(source)))
    second = int(time.time()) - 100
    os.utime(source, (second + 0.1, second + 0.1))
    timestamp = py_compile.PycInvalidationMode.TIMESTAMP  # as an import writes it
    py_compile.compile(str(source), cfile=str(cached), doraise=True, invalidation_mode=timestamp)
    os.utime(cached, (second + 0.2, second + 0.2))
    kept = cached.parent / "other.cpython-311.pyc"  # compiled in a later second: not touched
    kept.write_bytes(cached.read_bytes())
    os.utime(kept, (second + 1.5, second + 1.5))
    size = source.stat().st_size
    project.write({"calc.py": CALC_NEW})
    assert source.stat().st_size == size
    os.utime(source, (second + 0.3, second + 0.3))

    run = project.verify()
    assert run.code == 0, run.stdout + run.stderr
    assert run.check("tests/test_calc.py::test_add", "required")["status"] == "passed"
    assert kept.is_file()
