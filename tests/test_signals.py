"""A cancelled `shipyard verify` (SIGTERM, as CI sends) leaves nothing running."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psutil

from conftest import BIN, Project


def wait_for(path: Path, seconds: float = 20) -> int:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.05)
    return int(path.read_text())


def gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie":
            return True
        time.sleep(0.05)
    return False


def start_verify(project: Project) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN / "shipyard"), "verify", "--project", str(project.path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigterm_during_the_test_suite_stops_it_and_its_children(project: Project) -> None:
    pidfile = project.path / "child.pid"
    project.write({
        "shipyard.toml": "[commands]\ntest = 'python -m pytest -q -p no:cacheprovider'\n",
        "tests/test_hang.py": f"""
            import subprocess, time
            def test_hang():
                child = subprocess.Popen(["sleep", "300"])
                open({str(pidfile)!r}, "w").write(str(child.pid))
                time.sleep(300)
        """,
    })  # fmt: skip
    proc = start_verify(project)
    child = wait_for(pidfile)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 128 + signal.SIGTERM
    assert gone(child), "the test suite's child outlived a cancelled verify"


def test_a_second_sigterm_does_not_cut_the_cleanup_short(project: Project) -> None:
    pidfile = project.path / "app.pid"
    project.write({
        # the app ignores SIGTERM, so stopping it takes the whole stop_timeout, then SIGKILL
        "app.py": f"""
            import http.server, os, signal, sys
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            open({str(pidfile)!r}, "w").write(str(os.getpid()))
            handler = http.server.SimpleHTTPRequestHandler
            server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler)
            server.serve_forever()
        """,
        "shipyard.toml": "[app]\nstart = 'python app.py {port}'\nready = 'tcp'\nstop_timeout = 3\n",
        "spec.yaml": """
            task: t
            acceptance: [{id: a, text: t}]
            checks:
              http: [{id: root, covers: [a], request: {path: /}}]
              cli: [{id: slow, covers: [a], run: [sleep, "60"], timeout: 60}]
        """,
    })  # fmt: skip
    proc = start_verify(project)
    app = wait_for(pidfile)
    time.sleep(1.0)  # the http check is done; the slow cli check runs
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # the app is being stopped: SIGTERM ignored, its stop_timeout running
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    assert gone(app), "the app outlived a verify cancelled twice"
