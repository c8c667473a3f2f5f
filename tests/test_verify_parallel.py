"""Concurrency does not change verdicts: the dependency rule, flows that share the app, a suite
on a fixed port, and the base runs bounded by the head suite's time. Real CLI, real processes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from conftest import PY_CONFIG, CliRun, Project
from shipyard.gates.runtime import in_order
from shipyard.gates.suite import PORT_IN_USE_LOG
from shipyard.process import KILL_GRACE
from shipyard.spec import Checks
from shipyard.verify import default_gates, stages

# Whoever asks for /visit waits up to 3 s for company: a page says "together" when another
# visitor was inside at the same time, "alone" otherwise. Flows that overlap see "together".
BARRIER_APP = """
import sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

inside, lock = [0], threading.Lock()

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if not self.path.startswith("/visit"):  # /healthz, the browser's /favicon.ico
            return self.reply("ok")
        with lock:
            inside[0] += 1
        deadline, company = time.monotonic() + 3, False
        while time.monotonic() < deadline and not company:
            with lock:
                company = inside[0] > 1
            time.sleep(0.02)
        time.sleep(0.3)  # whoever came second still finds the first inside
        with lock:
            inside[0] -= 1
        self.reply(f"<p id=seen>{'together' if company else 'alone'}</p>")

    def reply(self, body):
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""
APP_CONFIG = '[app]\nstart = "python app.py {port}"\nready = "/healthz"\n'


def flows_spec(parallel: bool) -> str:
    mark = "\n    parallel: true" if parallel else ""
    flows = "".join(
        f"  - id: visit-{name}\n    covers: [alone]\n    timeout: 10{mark}\n    steps:\n"
        f"      - goto: /visit?who={name}\n"
        "      - expect_text: {selector: '#seen', text: alone}\n"
        for name in ("a", "b")
    )
    return (
        "task: one visitor at a time\nacceptance: [{id: alone, text: each visit is alone}]\n"
        f"checks:\n  ui:\n{flows}"
    )


def test_the_rule_in_one_place() -> None:
    names = [[gate.name for _, gate in stage] for stage in stages(default_gates())]
    assert names == [["contract"], ["build"], ["tests", "runtime"]]
    checks = Checks.model_validate({"ui": [
        {"id": "a", "steps": [{"goto": "/"}], "parallel": True},
        {"id": "b", "steps": [{"goto": "/"}], "parallel": True},
        {"id": "c", "steps": [{"goto": "/"}]},
        {"id": "d", "steps": [{"goto": "/"}], "parallel": True},
        {"id": "e", "steps": [{"goto": "/"}], "parallel": True, "fresh_app": True},
    ]})  # fmt: skip
    groups = in_order([("ui", check) for check in checks.ui])
    assert [[check.id for _, check in group] for group in groups] == [
        ["a", "b"], ["c"], ["d"], ["e"]
    ]  # fmt: skip


@pytest.mark.browser
@pytest.mark.slow
def test_flows_that_share_the_app_are_serialized_by_the_rule(project: Project) -> None:
    project.write({"app.py": BARRIER_APP, "shipyard.toml": APP_CONFIG})
    project.write({"spec.yaml": flows_spec(False)})
    serialized = project.verify()
    assert serialized.code == 0, serialized.stdout
    assert [serialized.check(f"visit-{n}")["status"] for n in "ab"] == ["passed", "passed"]
    # the same flows allowed to overlap do overlap, and then see each other: a wrong verdict
    project.write({"spec.yaml": flows_spec(True)})
    overlapped = project.verify()
    assert overlapped.code == 1, overlapped.stdout
    for name in "ab":
        check = overlapped.check(f"visit-{name}")
        assert check["status"] == "failed" and "together" in check["message"], check
    project.serial()  # [verify] parallel = false: nothing overlaps, whatever the spec allows
    serial = project.verify()
    assert serial.code == 0, serial.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_a_suite_on_a_fixed_port_gets_the_same_verdict(project: Project, verify_modes: str) -> None:
    port = free_port()
    binds = (
        "import socket, time\n\n\ndef test_serves():\n    with socket.socket() as s:\n"
        f"        s.bind(('127.0.0.1', {port}))\n        s.listen()\n        time.sleep(1.5)\n"
    )
    project.write({"shipyard.toml": PY_CONFIG, "tests/test_port.py": binds})
    project.commit("base")
    project.write({
        "tests/test_new.py": "def test_new():\n    assert True\n",
        "spec.yaml": "task: t\nacceptance: [{id: a, text: a}]\nchecks:\n  tests:\n"
        "    required: [{id: tests/test_new.py::test_new, covers: [a]}]\n",
    })  # fmt: skip
    run = project.verify("--base", "HEAD")
    suite = run.check("suite")
    assert suite["status"] == "passed", suite
    assert "2 passed" in suite["message"]
    weak = run.check("no-weakening")
    assert weak["status"] == "passed", weak
    assert weak["message"] == "all 1 tests passing at the base revision still pass"
    # test_new passes at the base too (it asserts nothing new): fail-to-pass says so
    assert run.check("tests/test_new.py::test_new", "fail_to_pass")["status"] == "failed"
    folder = Path(run.json["run_dir"])
    retried = [
        label
        for label in ("tests", "base/original", "base/with-required-tests")
        if (folder / label / PORT_IN_USE_LOG).is_file()
    ]
    if verify_modes == "parallel":  # the runs did overlap, and the ones that lost ran again
        assert retried, "no run found the port in use"
        log = (folder / retried[0] / PORT_IN_USE_LOG).read_text()
        assert "Address already in use" in log
    else:
        assert retried == []


HANGS = "def gcd(a, b):\n    while b:\n        a, b = a, b\n    return a\n"
FIXED = "import math\n\ndef gcd(a, b):\n    return math.gcd(a, b)\n"
GCD_SPEC = (
    "task: gcd\nacceptance: [{id: gcd, text: gcd}]\nchecks:\n  tests:\n"
    "    required: [{id: tests/test_gcd.py::test_gcd, covers: [gcd]}]\n"
)


def hanging_base(project: Project, test: str) -> None:
    project.write({
        "shipyard.toml": PY_CONFIG,  # timeout = 60: without the bound, a minute per base run
        "gcd.py": HANGS,
        "tests/test_old.py": "from gcd import gcd\n\ndef test_old():\n    assert gcd(4, 0) == 4\n"
        "\ndef test_hangs_at_base():\n    assert gcd(6, 4) == 2\n",
    })  # fmt: skip
    project.commit("base")
    project.write({"gcd.py": FIXED, "tests/test_gcd.py": test, "spec.yaml": GCD_SPEC})


def assert_interrupted(run_dir: str, label: str) -> None:
    """Stopped with SIGINT: the runner wrote the partial report of what finished."""
    outcomes = json.loads((Path(run_dir) / label / "outcomes.json").read_text())
    assert any(o["interrupted"] for o in outcomes), outcomes
    assert "KeyboardInterrupt" in (Path(run_dir) / label / "output.log").read_text(), label


def within_bound(run: CliRun, runs_after_head: int) -> None:
    """The tests gate took the head's suite plus the bound (per base run that had to wait
    for the head when nothing overlaps), plus the SIGINT/SIGKILL grace; not the timeout."""
    head = run.check("suite")["duration"]
    bound = max(10 * head, 10)
    tests = next(g for g in run.json["gates"] if g["name"] == "tests")["duration"]
    assert tests < head + runs_after_head * (bound + KILL_GRACE + 1), (tests, head)


@pytest.mark.slow
def test_a_hanging_base_is_stopped_at_its_bound_not_the_timeout(
    project: Project, verify_modes: str
) -> None:
    hanging_base(project, "from gcd import gcd\n\ndef test_gcd():\n    assert gcd(12, 8) == 4\n")
    run = project.verify("--base", "HEAD")
    assert run.code == 0, run.stdout
    ftp = run.check("tests/test_gcd.py::test_gcd", "fail_to_pass")
    assert ftp["message"] == "fails against the base code (timed out at the base)"
    weak = run.check("no-weakening")["message"]
    assert weak.startswith("all 1 tests passing at the base revision still pass (the base run")
    assert "s, the bound max(10 x the head suite's" in weak, weak
    within_bound(run, 1 if verify_modes == "parallel" else 2)
    assert_interrupted(run.json["run_dir"], "base/original")
    assert_interrupted(run.json["run_dir"], "base/with-required-tests")


@pytest.mark.slow
def test_a_head_that_fails_stops_the_fail_to_pass_run_weakening_reports(
    project: Project,
) -> None:
    hanging_base(project, "from gcd import gcd\n\ndef test_gcd():\n    assert gcd(12, 8) == 5\n")
    run = project.verify("--base", "HEAD")
    assert run.code == 1, run.stdout
    assert run.check("tests/test_gcd.py::test_gcd", "required")["status"] == "failed"
    ftp = run.check("tests/test_gcd.py::test_gcd", "fail_to_pass")
    assert ftp["status"] == "not_run"
    assert ftp["message"] == (
        "not run: the suite already fails at the head, so fail-to-pass cannot change the verdict"
    )
    weak = run.check("no-weakening")
    assert weak["status"] == "passed", weak
    assert "s, the bound max(10 x the head suite's" in weak["message"], weak
    within_bound(run, 1)


def test_git_is_asked_for_stale_worktrees_only_where_some_can_be(tmp_path: Path) -> None:
    """Outside a repository, and in one without linked worktrees, a verify runs no git to
    prune; with a ``.git/worktrees`` folder it asks."""
    import subprocess

    from shipyard import leftovers

    inner = tmp_path / "project" / "sub"
    inner.mkdir(parents=True)
    assert not leftovers._may_have_worktrees(inner)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path / "project", check=True)
    assert not leftovers._may_have_worktrees(inner)
    (tmp_path / "project" / ".git" / "worktrees").mkdir()
    assert leftovers._may_have_worktrees(inner)
