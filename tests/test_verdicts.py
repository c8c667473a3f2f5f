"""Verdicts that fail closed, through the real CLI on real projects: the baseline is the base's
own suite, fail-to-pass is judged per acceptance id, test ids stay unique, excerpts keep the
decisive line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import CALC_OLD, PY_CONFIG, ROOT, Project

pytestmark = pytest.mark.usefixtures("verify_modes")  # the same verdicts in parallel and not

MOCHA = ROOT / "tests" / "fixtures" / "mocha" / "node_modules"

SPEC_GCD = """
task: gcd is right
acceptance:
  - {id: gcd, text: gcd of two numbers}
checks:
  tests:
    required:
      - {id: "tests/test_gcd.py::test_gcd[4-0-4]", covers: [gcd]}
      - {id: "tests/test_gcd.py::test_gcd[12-8-4]", covers: [gcd]}
"""


def test_a_deleted_test_is_caught_when_the_new_file_cannot_import_at_base(
    project: Project,
) -> None:
    project.write({
        "shipyard.toml": PY_CONFIG,
        "calc.py": CALC_OLD,
        "tests/test_old.py": "def test_old():\n    assert True\n",
    })  # fmt: skip
    project.commit("base")
    project.remove("tests/test_old.py")
    project.write({
        "calc.py": CALC_OLD + "\ndef mul(a, b):\n    return a * b\n",
        "tests/test_mul.py": "from calc import mul\n\ndef test_mul():\n    assert mul(2, 3) == 6\n",
        "spec.yaml": "task: mul\nacceptance: [{id: mul, text: mul}]\nchecks:\n  tests:\n"
        "    required: [{id: tests/test_mul.py::test_mul, covers: [mul]}]\n",
    })  # fmt: skip
    run = project.verify("--base", "HEAD")
    assert run.code == 1, run.stdout
    weak = run.check("tests/test_old.py::test_old", "weakening")
    assert weak["status"] == "failed"
    assert weak["message"] == "passed at the base revision, missing now"
    ftp = run.check("tests/test_mul.py::test_mul", "fail_to_pass")
    assert ftp["status"] == "passed"
    assert "errored at the base: " in ftp["message"] and "ImportError" in ftp["message"]
    assert "it shows the name is new, not that its behaviour is tested" in ftp["message"]


def test_a_parametrized_fix_with_cases_passing_at_base_ships(project: Project) -> None:
    project.write({
        "shipyard.toml": PY_CONFIG.replace("calc.py", "gcd.py"),
        "gcd.py": "def gcd(a, b):\n    return a if b == 0 else b\n",
        "tests/test_old.py": "def test_old():\n    assert True\n",
    })  # fmt: skip
    project.commit("base")
    project.write({
        "gcd.py": "import math\n\ndef gcd(a, b):\n    return math.gcd(a, b)\n",
        "tests/test_gcd.py": "import pytest\nfrom gcd import gcd\n\n"
        "@pytest.mark.parametrize('a,b,want', [(4, 0, 4), (12, 8, 4)])\n"
        "def test_gcd(a, b, want):\n    assert gcd(a, b) == want\n",
        "spec.yaml": SPEC_GCD,
    })  # fmt: skip
    run = project.verify("--base", "HEAD")
    assert run.code == 0, run.stdout
    first = run.check("tests/test_gcd.py::test_gcd[4-0-4]", "fail_to_pass")
    assert first["status"] == "passed"
    assert first["message"].startswith("already passes at the base revision; gcd shown by")
    second = run.check("tests/test_gcd.py::test_gcd[12-8-4]", "fail_to_pass")
    assert second["status"] == "passed" and "fails against the base code" in second["message"]
    assert "all 1 tests passing" in run.check("no-weakening")["message"]


def test_a_base_that_gives_no_report_is_an_error_not_a_pass(project: Project) -> None:
    project.write({
        "shipyard.toml": PY_CONFIG,
        "calc.py": CALC_OLD,
        "conftest.py": "import os\nif not os.path.exists(os.path.join(os.path.dirname(__file__),"
        " 'HEAD_ONLY')):\n    os._exit(9)\n",
        "tests/test_old.py": "def test_old():\n    assert True\n",
    })  # fmt: skip
    project.commit("base")
    project.write({"HEAD_ONLY": ""})
    run = project.verify("--base", "HEAD")
    assert run.code == 3, run.stdout
    check = run.check("no-weakening")
    assert check["status"] == "error"
    assert check["message"].startswith("no baseline: the base revision's own suite gave no results")


def test_a_base_with_no_tests_is_an_empty_baseline(project: Project) -> None:
    project.write({"shipyard.toml": PY_CONFIG, "calc.py": CALC_OLD})
    project.commit("base")
    project.write({"tests/test_new.py": "def test_new():\n    assert True\n"})
    run = project.verify("--base", "HEAD")
    assert run.code == 0, run.stdout
    assert run.check("no-weakening")["message"] == "nothing to compare: the base has no tests"


def test_mocha_tests_of_the_same_name_in_two_suites_keep_their_ids(project: Project) -> None:
    project.write({
        "shipyard.toml": '[commands]\ntest = "node_modules/.bin/mocha test/"\n',
        "test/app.js": """
            const assert = require('assert');
            describe('GET /users', () => { it('responds with json', () => {}); });
            describe('POST /users', () => {
              it('responds with json', () => { assert.strictEqual(1, 2); });
            });
        """,
    })  # fmt: skip
    os.symlink(MOCHA, project.path / "node_modules")
    project.commit()
    run = project.verify()
    assert run.code == 1, run.stdout
    suite = run.check("suite")["message"]
    assert "1 of 2 tests failed: test/app.js::POST /users > responds with json" in suite
    outcomes = Path(run.json["run_dir"], "tests", "outcomes.json").read_text()
    assert "test/app.js::GET /users > responds with json" in outcomes


def test_the_decisive_line_of_a_failure_reaches_the_message(project: Project) -> None:
    project.write({
        "shipyard.toml": PY_CONFIG,
        "calc.py": CALC_OLD,
        "tests/test_calc.py": "from calc import add\n\ndef test_add():\n"
        + "".join(f"    x{i} = {i}\n" for i in range(30))
        + "    assert add(2, 3) == 5\n",
        "spec.yaml": "task: add\nacceptance: [{id: add, text: add}]\nchecks:\n  tests:\n"
        "    required: [{id: tests/test_calc.py::test_add, covers: [add]}]\n",
    })  # fmt: skip
    project.commit()
    run = project.verify()
    assert run.code == 1
    message = run.check("tests/test_calc.py::test_add", "required")["message"]
    assert "assert -1 == 5" in message, message


def test_a_base_that_hangs_is_stopped_and_its_running_test_fails_there(project: Project) -> None:
    project.write({
        "shipyard.toml": PY_CONFIG.replace("timeout = 60", "timeout = 3"),
        "gcd.py": "def gcd(a, b):\n    while b:\n        a, b = a, b\n    return a\n",
        "tests/test_old.py": "def test_old():\n    assert True\n",
    })  # fmt: skip
    project.commit("base")
    project.write({
        "gcd.py": "import math\n\ndef gcd(a, b):\n    return math.gcd(a, b)\n",
        "tests/test_gcd.py": "from gcd import gcd\n\ndef test_gcd():\n    assert gcd(12, 8) == 4\n",
        "spec.yaml": "task: gcd\nacceptance: [{id: gcd, text: gcd}]\nchecks:\n  tests:\n"
        "    required: [{id: tests/test_gcd.py::test_gcd, covers: [gcd]}]\n",
    })  # fmt: skip
    run = project.verify("--base", "HEAD")
    assert run.code == 0, run.stdout
    ftp = run.check("tests/test_gcd.py::test_gcd", "fail_to_pass")
    assert ftp["message"] == "fails against the base code (timed out at the base)"
    assert (
        "all 1 tests passing at the base revision still pass"
        in run.check("no-weakening")["message"]
    )


def test_the_projects_own_interpreter_runs_the_base_too(project: Project) -> None:
    import sys

    project.write({
        "shipyard.toml": PY_CONFIG.replace("python -m pytest", ".venv/bin/python -m pytest"),
        "calc.py": CALC_OLD,
        "tests/test_old.py": "def test_old():\n    assert True\n",
        ".gitignore": ".venv\n",
    })  # fmt: skip
    (project.path / ".venv" / "bin").mkdir(parents=True)
    (project.path / ".venv" / "bin" / "python").symlink_to(sys.executable)
    project.commit("base")
    project.write({"tests/test_more.py": "def test_more():\n    assert True\n"})
    run = project.verify("--base", "HEAD")
    assert run.code == 0, run.stdout
    assert "all 1 tests passing" in run.check("no-weakening")["message"]
