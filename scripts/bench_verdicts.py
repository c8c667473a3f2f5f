"""Verdict fidelity of `shipyard verify --base` on a corpus of small projects with seeded changes.

    uv run python scripts/bench_verdicts.py

Each case is a real git repository (a base commit, then a change in the working tree) with the
verdict it deserves and, for a rejection, the check that must carry it. Reports per case and in
total: right, false ship, false reject, could not check, rejected for another reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPYARD = Path(sys.executable).parent / "shipyard"
MOCHA = ROOT / "tests" / "fixtures" / "mocha" / "node_modules"
PY = '[commands]\ntest = "python -m pytest -q -p no:cacheprovider"\ntimeout = 20\n'
MOCHA_CONFIG = '[commands]\ntest = "node_modules/.bin/mocha test/"\ntimeout = 20\n'


def spec(ids: list[tuple[str, str]]) -> str:
    acceptance = sorted({a for _, a in ids})
    lines = ["task: t", "acceptance:"]
    lines += [f"  - {{id: {a}, text: {a}}}" for a in acceptance]
    lines += ["checks:", "  tests:", "    required:"]
    lines += [f'      - {{id: "{t}", covers: [{a}]}}' for t, a in ids]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Case:
    name: str
    base: dict[str, str]
    change: dict[str, str]
    expect: str
    """ship | reject"""
    reason: tuple[str, str] = ("", "")
    """(check kind, check id) that must carry the rejection"""
    remove: tuple[str, ...] = ()
    node: bool = False
    extra: dict[str, str] = field(default_factory=dict)


GCD_OLD = "def gcd(a, b):\n    return a if b == 0 else b\n"
GCD_NEW = "import math\n\ndef gcd(a, b):\n    return math.gcd(a, b)\n"
GCD_TEST = (
    "import pytest\nfrom gcd import gcd\n\n"
    "@pytest.mark.parametrize('a,b,want', [(4, 0, 4), (12, 8, 4)])\n"
    "def test_gcd(a, b, want):\n    assert gcd(a, b) == want\n"
)
GCD_SPEC = spec([("tests/test_gcd.py::test_gcd[4-0-4]", "gcd"),
                 ("tests/test_gcd.py::test_gcd[12-8-4]", "gcd")])  # fmt: skip
OLD_TEST = {"tests/test_old.py": "def test_old():\n    assert True\n"}
MUL_TEST = "from calc import mul\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
MUL_SPEC = spec([("tests/test_mul.py::test_mul", "mul")])
CALC = "def add(a, b):\n    return a + b\n"
CALC_MUL = CALC + "\ndef mul(a, b):\n    return a * b\n"
LOOP_OLD = "def gcd(a, b):\n    while b:\n        a, b = a, b\n    return a\n"

CASES = [
    Case("new name, old test deleted", {"shipyard.toml": PY, "calc.py": CALC, **OLD_TEST},
         {"calc.py": CALC_MUL, "tests/test_mul.py": MUL_TEST, "spec.yaml": MUL_SPEC},
         "reject", ("weakening", "tests/test_old.py::test_old"), remove=("tests/test_old.py",)),
    Case("new name, old test skipped", {"shipyard.toml": PY, "calc.py": CALC, **OLD_TEST},
         {"calc.py": CALC_MUL, "tests/test_mul.py": MUL_TEST, "spec.yaml": MUL_SPEC,
          "tests/test_old.py": "import pytest\n@pytest.mark.skip\ndef test_old():\n    pass\n"},
         "reject", ("weakening", "tests/test_old.py::test_old")),
    Case("new name, nothing weakened", {"shipyard.toml": PY, "calc.py": CALC, **OLD_TEST},
         {"calc.py": CALC_MUL, "tests/test_mul.py": MUL_TEST, "spec.yaml": MUL_SPEC}, "ship"),
    Case("parametrized fix, a case passing at base",
         {"shipyard.toml": PY, "gcd.py": GCD_OLD, **OLD_TEST},
         {"gcd.py": GCD_NEW, "tests/test_gcd.py": GCD_TEST, "spec.yaml": GCD_SPEC}, "ship"),
    Case("vacuous test", {"shipyard.toml": PY, "calc.py": "def add(a, b):\n    return a - b\n"},
         {"calc.py": CALC, "spec.yaml": spec([("tests/test_calc.py::test_add", "add")]),
          "tests/test_calc.py": "from calc import add\n\ndef test_add():\n    add(2, 3)\n"},
         "reject", ("fail_to_pass", "tests/test_calc.py::test_add")),
    Case("infinite loop fixed", {"shipyard.toml": PY.replace("20", "4"), "gcd.py": LOOP_OLD,
                                 **OLD_TEST},
         {"gcd.py": GCD_NEW, "tests/test_gcd.py": "from gcd import gcd\n\n"
          "def test_gcd():\n    assert gcd(12, 8) == 4\n",
          "spec.yaml": spec([("tests/test_gcd.py::test_gcd", "gcd")])}, "ship"),
    Case("mocha: same test name in two suites, one fails",
         {"shipyard.toml": MOCHA_CONFIG,
          "test/app.js": "describe('a', () => { it('x', () => {}); });\n"
          "describe('b', () => { it('x', () => {}); });\n"},
         {"test/app.js": "const assert = require('assert');\n"
          "describe('a', () => { it('x', () => {}); });\n"
          "describe('b', () => { it('x', () => { assert.ok(false); }); });\n"},
         "reject", ("weakening", "test/app.js::b > x"), node=True),
    Case("mocha: a fix with a new test", {"shipyard.toml": MOCHA_CONFIG,
         "lib.js": "exports.add = (a, b) => a - b;\n",
         "test/old.js": "describe('old', () => { it('runs', () => {}); });\n"},
         {"lib.js": "exports.add = (a, b) => a + b;\n",
          "test/add.js": "const assert = require('assert'); const { add } = require('../lib');\n"
          "describe('add', () => { it('adds', () => { assert.strictEqual(add(2, 3), 5); }); });\n",
          "spec.yaml": spec([("test/add.js::add > adds", "add")])}, "ship", node=True),
]  # fmt: skip


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def build(case: Case, folder: Path) -> Path:
    project = folder / case.name.replace(" ", "-").replace(",", "").replace(":", "")
    project.mkdir()
    git(project, "init", "-q", "-b", "main")
    git(project, "-c", "user.email=b@x", "-c", "user.name=b", "commit", "-q", "--allow-empty",
        "-m", "root")  # fmt: skip
    for name, text in case.base.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(textwrap.dedent(text))
    if case.node:
        (project / "node_modules").symlink_to(MOCHA)
        (project / ".gitignore").write_text("node_modules\n")
    git(project, "add", "-A")
    git(project, "-c", "user.email=b@x", "-c", "user.name=b", "commit", "-q", "-m", "base")
    for name in case.remove:
        (project / name).unlink()
    for name, text in case.change.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    return project


def judge(case: Case, doc: dict, code: int) -> str:
    if code in (2, 3):
        return "could not check"
    if case.expect == "ship":
        return "right" if code == 0 else "false reject"
    if code == 0:
        return "false ship"
    kind, check_id = case.reason
    failed = {
        (c["kind"], c["id"]) for g in doc["gates"] for c in g["checks"] if c["status"] == "failed"
    }
    return "right" if (kind, check_id) in failed else "rejected for another reason"


def main() -> None:
    tally: Counter[str] = Counter()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    with tempfile.TemporaryDirectory(prefix="bench-verdicts-") as tmp:
        for case in CASES:
            project = build(case, Path(tmp))
            proc = subprocess.run(
                [str(SHIPYARD), "verify", "--json", "--base", "HEAD"], cwd=project, env=env,
                capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            doc = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
            outcome = judge(case, doc, proc.returncode)
            tally[outcome] += 1
            took = doc.get("duration", 0.0)
            print(f"{outcome:<28} exit {proc.returncode}  {took:5.1f}s  {case.name}")
    print()
    for key in ("right", "false ship", "false reject", "could not check",
                "rejected for another reason"):  # fmt: skip
        print(f"{key:<28} {tally[key]}")
    print(f"{'cases':<28} {sum(tally.values())}")


if __name__ == "__main__":
    main()
