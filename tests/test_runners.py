"""mocha, vitest and jest through the real CLI: Shipyard adds each runner's JUnit reporter itself,
ids are ``FILE::SUITE > SUITE > NAME``, reports stay under ``.shipyard/``, and fail-to-pass at a
base revision works with each. The runners come from tests/fixtures/<runner>/node_modules,
installed by scripts/setup."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import ROOT, Project

FIXTURES = ROOT / "tests" / "fixtures"

# An Express-style app: a node http server with routes, created per test file.
APP = """
const http = require('http');
function createApp({ fixed = true } = {}) {
  const users = [{ id: 1, name: 'tobi' }];
  return http.createServer((req, res) => {
    const json = (status, body) => {
      res.statusCode = status;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    };
    const one = req.url.match(/^\\/users\\/(\\d+)$/);
    if (req.url === '/users' && req.method === 'GET') return json(200, users);
    if (req.url === '/users' && req.method === 'POST') return json(STATUS_CREATED, { id: 2 });
    if (one) return json(200, users.find((u) => u.id === Number(one[1])) || {});
    return json(404, { error: 'not found' });
  });
}
module.exports = { createApp };
"""
BUGGY, FIXED = "const STATUS_CREATED = 200;\n", "const STATUS_CREATED = 201;\n"

# The same suite for mocha (node:assert) and vitest/jest (expect): nested describes, and two
# tests named "responds with json" in different suites.
MOCHA_TESTS = """
const assert = require('assert');
const { createApp } = require('../app.js');
let server, base;
before(async () => {
  server = createApp();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(() => new Promise((r) => server.close(r)));
describe('GET /users', () => {
  it('responds with json', async () => {
    const r = await fetch(`${base}/users`);
    assert.strictEqual(r.headers.get('content-type'), 'application/json');
  });
  describe('GET /users/:id', () => {
    it('finds tobi', async () => {
      assert.strictEqual((await (await fetch(`${base}/users/1`)).json()).name, 'tobi');
    });
  });
});
describe('POST /users', () => {
  it('responds with json', async () => {
    const r = await fetch(`${base}/users`, { method: 'POST', body: '{}' });
    assert.strictEqual(r.status, 201);
  });
});
"""
EXPECT_TESTS = (
    MOCHA_TESTS.replace("const assert = require('assert');\n", "")
    .replace("before(", "beforeAll(")
    .replace("after(", "afterAll(")
    .replace(
        "assert.strictEqual(r.headers.get('content-type'), 'application/json')",
        "expect(r.headers.get('content-type')).toBe('application/json')",
    )
    .replace(
        "assert.strictEqual((await (await fetch(`${base}/users/1`)).json()).name, 'tobi')",
        "expect((await (await fetch(`${base}/users/1`)).json()).name).toBe('tobi')",
    )
    .replace("assert.strictEqual(r.status, 201)", "expect(r.status).toBe(201)")
)
VITEST_IMPORT = "import { describe, it, expect, beforeAll, afterAll } from 'vitest';\n"
VITEST_TESTS = VITEST_IMPORT + EXPECT_TESTS

POST = "POST /users > responds with json"
GET = "GET /users > responds with json"
NESTED = "GET /users > GET /users/:id > finds tobi"
SPEC = """
task: POST /users answers 201 Created
acceptance:
  - {id: created, text: creating a user answers 201}
checks:
  tests:
    required:
      - {id: "FILE::POST /users > responds with json", covers: [created]}
      - {id: "FILE::GET /users > GET /users/:id > finds tobi", covers: [created]}
"""
RUNNERS = {
    "mocha": ("node_modules/.bin/mocha --reporter spec test/", "test/users.js", MOCHA_TESTS),
    "vitest": ("node_modules/.bin/vitest run test/", "test/users.test.js", VITEST_TESTS),
    "jest": ("node_modules/.bin/jest", "test/users.test.js", EXPECT_TESTS),
}


def node_project(project: Project, runner: str, status: str) -> str:
    command, test_file, tests = RUNNERS[runner]
    project.write({
        "shipyard.toml": f'[commands]\ntest = "{command}"\ntimeout = 60\n',
        "package.json": json.dumps({"name": "users", "private": True}),
        ".gitignore": "node_modules\n",
        "app.js": status + APP,
        test_file: tests,
    })  # fmt: skip
    os.symlink(FIXTURES / runner / "node_modules", project.path / "node_modules")
    return test_file


def outcome_ids(run_dir: str) -> list[str]:
    outcomes = json.loads(Path(run_dir, "tests", "outcomes.json").read_text())
    return sorted(o["id"] for o in outcomes)


@pytest.mark.parametrize("runner", ["mocha", "vitest", "jest"])
def test_ids_keep_nested_suites_and_same_names_apart(project: Project, runner: str) -> None:
    test_file = node_project(project, runner, BUGGY)
    project.commit()
    run = project.verify()
    assert run.code == 1, run.stdout
    suite = run.check("suite")["message"]
    assert f"1 of 3 tests failed: {test_file}::{POST}" in suite, suite
    assert outcome_ids(run.json["run_dir"]) == sorted(
        f"{test_file}::{name}" for name in (GET, NESTED, POST)
    )
    # the report is the run's evidence, never a file in the project
    assert Path(run.json["run_dir"], "tests", "junit.xml").is_file()
    untracked = sorted(p.name for p in project.path.iterdir())
    assert untracked == [".git", ".gitignore", ".shipyard", "app.js", "node_modules",
                         "package.json", "shipyard.toml", "test"]  # fmt: skip


@pytest.mark.parametrize("runner", ["mocha", "vitest", "jest"])
def test_fail_to_pass_at_the_base_with_each_runner(project: Project, runner: str) -> None:
    test_file = node_project(project, runner, BUGGY)
    _, _, tests = RUNNERS[runner]
    # at the base the POST test does not exist yet; it is added with the fix
    start = tests.index("describe('POST /users'")
    project.write({test_file: tests[:start]})
    project.commit("base")
    project.write({
        "app.js": FIXED + APP,
        test_file: tests,
        "spec.yaml": SPEC.replace("FILE", test_file),
    })  # fmt: skip
    run = project.verify("--base", "HEAD")
    assert run.code == 0, run.stdout
    ftp = run.check(f"{test_file}::{POST}", "fail_to_pass")
    assert ftp["status"] == "passed"
    assert ftp["message"].startswith("fails against the base code (failed there: "), ftp
    said = {
        "mocha": "200 !== 201",
        "vitest": "expected 200 to be 201",
        "jest": "expect(received).toBe",
    }
    assert said[runner] in ftp["message"], ftp
    assert run.check(f"{test_file}::{NESTED}", "required")["status"] == "passed"
    nested = run.check(f"{test_file}::{NESTED}", "fail_to_pass")
    assert nested["message"].startswith("already passes at the base revision"), nested
    weak = run.check("no-weakening")
    assert weak["status"] == "passed" and "all 2 tests passing" in weak["message"], weak


def test_a_fix_that_does_not_fix_fails_with_vitest(project: Project) -> None:
    test_file = node_project(project, "vitest", BUGGY)
    project.commit("base")
    project.write({"spec.yaml": SPEC.replace("FILE", test_file)})
    run = project.verify("--base", "HEAD")
    assert run.code == 1, run.stdout
    required = run.check(f"{test_file}::{POST}", "required")
    assert required["status"] == "failed"
    assert "expected 200 to be 201" in required["message"], required


def test_jest_without_jest_junit_is_an_error_naming_the_fix(project: Project) -> None:
    project.write({
        "shipyard.toml": '[commands]\ntest = "node node_modules/jest/bin/jest.js"\n',
        "package.json": '{"name": "users"}',
        "app.js": FIXED + APP,
        "test/users.test.js": EXPECT_TESTS,
    })  # fmt: skip
    (project.path / "node_modules").mkdir()  # jest alone, as the project installed it
    os.symlink(FIXTURES / "jest" / "node_modules" / "jest", project.path / "node_modules" / "jest")
    project.commit()
    run = project.verify()
    assert run.code == 3, run.stdout
    assert run.json["verdict"] == "error"
    assert run.json["error"] == (
        f"jest-junit is not installed in {project.path}: Shipyard reads jest's per-test "
        "results from the JUnit report jest-junit writes; install it with "
        "`npm install --save-dev jest-junit`"
    )


def test_a_jest_file_that_fails_to_load_is_its_own_id(project: Project) -> None:
    node_project(project, "jest", FIXED)
    project.write({"test/broken.test.js": "require('./gone');\nit('x', () => {});\n"})
    project.commit()
    run = project.verify()
    assert run.code == 1, run.stdout
    suite = run.check("suite")["message"]
    assert "1 of 4 tests failed: test/broken.test.js\n" in suite, suite
    outcomes = json.loads(Path(run.json["run_dir"], "tests", "outcomes.json").read_text())
    broken = next(o for o in outcomes if o["id"] == "test/broken.test.js")
    assert broken["outcome"] == "error"
    assert "Cannot find module './gone' from 'test/broken.test.js'" in broken["message"], broken


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("npx vitest", "npx vitest --run --reporter=default --reporter=junit "
         "--outputFile=R"),
        ("vitest run --coverage | tee log", "vitest run --coverage --reporter=default "
         "--reporter=junit --outputFile=R | tee log"),
        ("npx jest --ci", "npx jest --ci --reporters=default --reporters=jest-junit"),
        ("python -m pytest -k jest",
         "python -m pytest -k jest --junitxml=R -o junit_family=xunit1"),
        ("node node_modules/jest/bin/jest.js test/",
         "node node_modules/jest/bin/jest.js test/ --reporters=default --reporters=jest-junit"),
        ("npx mocha --reporter dot", f"npx mocha --reporter dot --reporter {ROOT}"
         "/src/shipyard/gates/mocha_junit_reporter.js --reporter-option output=R"),
    ],
)  # fmt: skip
def test_the_reporter_is_added_to_the_runner(command: str, expected: str) -> None:
    from shipyard.gates.tests import with_report

    full, report = with_report(command, Path("R"), None, Path("."))
    assert (full, report) == (expected, Path("R"))


def test_npm_test_is_answered_with_the_runner_to_name(project: Project) -> None:
    project.write({
        "shipyard.toml": '[commands]\ntest = "npm test"\n',
        "package.json": json.dumps({"scripts": {"test": "mocha --check-leaks test/"}}),
    })  # fmt: skip
    project.commit()
    run = project.verify()
    assert run.code == 2, run.stdout
    assert run.json["error"].endswith(
        "for another runner set commands.junit to the JUnit XML file it writes (npm passes no "
        "reporter option through: name the runner of its 'test' script instead, e.g. test = "
        '"node_modules/.bin/mocha --check-leaks test/")'
    ), run.json
