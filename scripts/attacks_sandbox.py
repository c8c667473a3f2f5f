"""``[sandbox] kind = "bwrap"``: the ``run`` tool cannot reach the host's network, its processes,
the repository's hooks; the gates still run an app, probe it and drive a browser on the
sandbox's own loopback."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from attacklib import (  # noqa: I001
    GOOD,
    Outcome,
    attack,
    broke,
    call,
    environ,
    git,
    held,
    project,
    run,
    said,
)  # fmt: skip

CONFIG = """
[commands]
test = "python -m pytest -q -p no:cacheprovider"
timeout = 120

[app]
start = "python app.py {port}"
ready = "/"

[budget]
attempts = 1

[sandbox]
kind = "bwrap"
"""
APP = """
import http.server, sys

class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<!doctype html><h1>hello sandbox</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Page).serve_forever()
"""
SPEC = """
task: calc.multiply, and the page says hello
acceptance:
  - id: multiply
    text: multiply(3, 4) returns 12
  - id: page
    text: the page says hello
checks:
  tests:
    required:
      - id: tests/test_multiply.py::test_multiply
        covers: [multiply]
  http:
    - id: home
      covers: [page]
      request: {method: GET, path: /}
      expect: {status: 200, body_contains: [hello sandbox]}
  ui:
    - id: home-in-browser
      covers: [page]
      steps:
        - goto: /
        - expect_text: {selector: h1, text: hello sandbox}
"""
PROBE = """
import os, socket, subprocess
seen = []
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    seen.append("net: reached the host")
except OSError:
    seen.append("net: isolated")
hooks = subprocess.run(["git", "rev-parse", "--git-common-dir"], capture_output=True,
                       text=True).stdout.strip() + "/hooks/post-checkout"
try:
    open(hooks, "w").write("#!/bin/sh\\n")
    seen.append("hooks: written")
except OSError:
    seen.append("hooks: read-only")
names = [p for p in os.listdir("/proc") if p.isdigit()]
cmds = [open(f"/proc/{{p}}/cmdline", "rb").read() for p in names]
shipyard = any(b"shipyard" in c and b"run" in c for c in cmds)
seen.append("pids: visible" if shipyard else "pids: isolated")
print("; ".join(seen))
"""
IN_TEST = """
import socket
def test_the_host_is_out_of_reach():
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    except OSError:
        return
    raise AssertionError("a test reached the host's loopback")
"""


@attack
def sandboxed_run(tmp: Path) -> Outcome:
    """The ``run`` tool and the tests try the host's loopback (a port the attacker listens on),
    the repository's hooks and the host's processes; the verify must still pass its HTTP check
    and browser flow against the app on the sandbox's own loopback."""
    if shutil.which("bwrap") is None:
        return broke("bwrap is not installed: the sandbox cannot be checked")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        proj = project(tmp, {"app.py": APP}, config=CONFIG)
        replies = [
            call("write", path="probe.py", content=PROBE.format(port=port)),
            call("run", command="python probe.py > probe.txt"),
            call("write", path="tests/test_host.py", content=IN_TEST.format(port=port)),
            *GOOD,
        ]
        proc = run(tmp, proj, replies, environ(tmp), spec_text=SPEC)
    finally:
        listener.close()
    if proc.returncode != 0:
        return broke(f"the sandboxed run did not ship: {said(proc)}")
    branch = git(proj, "branch", "--list", "shipyard/*", "--format=%(refname:short)")
    seen = git(proj, "show", f"{branch}:probe.txt")
    if seen != "net: isolated; hooks: read-only; pids: isolated":
        return broke(f"the run tool got out: {seen}")
    if (proj / ".git" / "hooks" / "post-checkout").exists():
        return broke("a hook was planted from inside the sandbox")
    return held(f"run tool: {seen}; the app, HTTP probe and browser flow passed inside")
