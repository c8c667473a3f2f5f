"""Attacks that try to outlive Shipyard or reach outside the worktree: processes that leave
their group, Shipyard killed with ``kill -9``, a hard link to an outside file, the leftovers of a
crash, and a test suite that prints gigabytes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml
from attacklib import (
    GOOD,
    SCRIPT_ROLES,
    SPEC,
    Outcome,
    attack,
    broke,
    call,
    environ,
    git,
    held,
    kill,
    kill_shipyard,
    pids_in,
    project,
    run,
    said,
    shipyard,
    start,
    wait_file,
    write,
)
from attacklib import gone as still_alive

ESCAPE = "setsid env -i sh -c 'echo $$ > {pids}/{name}.pid; exec sleep 300' &"
ESCAPE_IN_TEST = """
import subprocess
escape = "echo $$ > {pids}/test-$$.pid; exec sleep 300"
subprocess.Popen(["setsid", "env", "-i", "sh", "-c", escape])
"""


@attack
def setsid_from_run_and_tests(tmp: Path) -> Outcome:
    """``setsid env -i sleep 300 &`` from the ``run`` tool and from the test suite (no tag in
    its environment, not in any group of ours): gone at the end of the tool call and the run."""
    pids = tmp / "pids"
    pids.mkdir()
    proj = project(tmp)
    check = f"kill -0 $(cat {pids}/run.pid) 2>/dev/null && echo ALIVE > {tmp}/c"
    check += f" || echo DEAD > {tmp}/c"
    replies = [
        call("run", command=ESCAPE.format(pids=pids, name="run") + " sleep 0.3"),
        call("run", command=check),
        call("write", path="conftest.py", content=ESCAPE_IN_TEST.format(pids=pids)),
        *GOOD,
    ]
    proc = run(tmp, proj, replies, environ(tmp))
    found = pids_in(pids)
    left = still_alive(found, seconds=2)
    kill(left)
    if proc.returncode != 0:
        return broke(f"the run did not ship: {said(proc)}")
    if len(found) < 2:
        return broke(f"the escapes did not start: {found}")
    if (tmp / "c").read_text().strip() != "DEAD":
        return broke("the run tool's escapee was still alive at the next tool call")
    if left:
        return broke(f"processes outlived the run: {left}")
    return held(f"{len(found)} escaped processes killed (the run tool's at the end of its call)")


DAEMON = """
import os, sys, time
if os.fork():  # the parent returns once the daemon is up, as a service's start script would
    while not os.path.exists({pidfile!r}):
        time.sleep(0.01)
    sys.exit(0)
os.setsid()
if os.fork(): os._exit(0)
os.environ.clear()
open({pidfile!r} + ".tmp", "w").write(str(os.getpid()))
os.rename({pidfile!r} + ".tmp", {pidfile!r})
time.sleep(300)
"""
SERVICE_TEST = """
import os
def test_service_outlives_the_build():
    os.kill(int(open({pidfile!r}).read()), 0)  # raises if the build's daemon is gone
"""


@attack
def daemon_service_across_gates(tmp: Path) -> Outcome:
    """A build command that starts a double-forking daemon the tests then use: alive between
    gates (a service may outlive one gate), stopped when the verify ends."""
    pidfile = tmp / "daemon.pid"
    config = '[commands]\nbuild = ["python daemon.py"]\n'
    config += 'test = "python -m pytest -q -p no:cacheprovider"\n'
    proj = project(tmp, {
        "daemon.py": DAEMON.format(pidfile=str(pidfile)),
        "tests/test_service.py": SERVICE_TEST.format(pidfile=str(pidfile)),
    }, config=config)  # fmt: skip
    proc = shipyard("verify", cwd=proj, env=environ(tmp))
    pid = int(wait_file(pidfile, 5)) if pidfile.exists() else None
    left = still_alive([pid], seconds=2) if pid else []
    kill(left)
    if proc.returncode != 0:
        return broke(f"the service did not survive until the tests: {said(proc)}")
    if pid is None:
        return broke("the daemon never started")
    if left:
        return broke(f"the daemon {pid} outlived the verify")
    return held("the daemon served the tests, and was stopped when the verify ended")


@attack
def failing_build_with_an_escapee(tmp: Path) -> Outcome:
    """A build that leaves a ``setsid`` child and fails: reaping the escapee must not take the
    build's exit status (a ``waitpid(-1)`` would turn the failure into a pass)."""
    pids = tmp / "pids"
    pids.mkdir()
    build = f"{ESCAPE.format(pids=pids, name='build')} sleep 0.3; exit 3"
    config = f"[commands]\nbuild = [{json.dumps(build)}]\ntest = 'python -m pytest -q'\n"
    proj = project(tmp, config=config)
    proc = shipyard("verify", "--json", cwd=proj, env=environ(tmp))
    left = still_alive(pids_in(pids), seconds=2)
    kill(left)
    build_check = next(
        c for g in json.loads(proc.stdout)["gates"] if g["name"] == "build" for c in g["checks"]
    )
    if proc.returncode != 1 or build_check["status"] != "failed":
        return broke(f"the failing build did not fail: {said(proc)}")
    if "exit 3" not in build_check["message"]:
        return broke(f"the build's exit status was lost: {build_check['message']}")
    if left:
        return broke(f"the build's escapee outlived the verify: {left}")
    return held("the build failed with its own exit 3; its escapee was killed")


HANG = """
import os, subprocess, time
def test_hang():
    child = subprocess.Popen(["sleep", "300"])
    open({pidfile!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
    time.sleep(300)
"""


@attack
def kill_9_during_the_tests(tmp: Path) -> Outcome:
    """``kill -9`` of ``shipyard verify`` while its test suite runs: the suite and its children
    die with it (measured before: pytest kept running at full CPU for minutes)."""
    pidfile = tmp / "suite.pid"
    proj = project(tmp, {"tests/test_hang.py": HANG.format(pidfile=str(pidfile))})
    proc = start("verify", cwd=proj, env=environ(tmp))
    pids = [int(p) for p in wait_file(pidfile, 60, proc).split()]
    kill_shipyard(proc)
    left = still_alive(pids, seconds=5)
    kill(left)
    if left:
        return broke(f"the test suite outlived a kill -9 of shipyard: {left}")
    return held("pytest and its child died with shipyard (kill -9)")


@attack
def hard_link_to_an_outside_file(tmp: Path) -> Outcome:
    """``ln`` an outside file into the worktree with ``run``, then ``edit`` and ``write`` it."""
    outside = tmp / "outside.txt"
    outside.write_text("original\n")
    proj = project(tmp)
    replies = [
        call("run", command=f"ln {outside} linked.txt"),
        call("edit", path="linked.txt", search="original", replace="HACKED"),
        call("write", path="linked.txt", content="HACKED\n"),
        *GOOD,
    ]
    proc = run(tmp, proj, replies, environ(tmp))
    if outside.read_text() != "original\n":
        return broke(f"the outside file was changed: {outside.read_text()!r}")
    if proc.stdout.count("hard links") < 2:
        return broke(f"edit and write were not refused with a reason: {said(proc)}")
    if proc.returncode != 0:
        return broke(f"the run did not ship: {said(proc)}")
    return held("edit and write refused the hard-linked file; the outside file is intact")


BASE_HANG = """
import os, time
if "shipyard-base-" in os.getcwd():
    open({pidfile!r}, "w").write(str(os.getpid()))
    time.sleep(300)
"""


def _base_worktrees(proj: Path) -> list[str]:
    listed = git(proj, "worktree", "list", "--porcelain").splitlines()
    return [ln for ln in listed if ln.startswith("worktree ") and "shipyard-base-" in ln]


@attack
def crash_leftovers_of_verify(tmp: Path) -> Outcome:
    """``kill -9`` of ``verify --base`` during the base suite leaves a registered base worktree
    and a ``/tmp/shipyard-base-*`` folder; the next verify removes both."""
    pidfile = tmp / "base.pid"
    proj = project(tmp, {"conftest.py": BASE_HANG.format(pidfile=str(pidfile))})
    write(proj, {"tests/test_ok.py": "def test_ok():\n    pass\n"})
    env = environ(tmp)
    proc = start("verify", "--base", "HEAD", cwd=proj, env=env)
    base_pid = int(wait_file(pidfile, 60, proc))
    kill_shipyard(proc)
    left = still_alive([base_pid], seconds=5)
    kill(left)
    folders = list(Path("/tmp").glob(f"shipyard-base-{proc.pid}-*"))
    if not _base_worktrees(proj) or not folders:
        return broke("the crash left nothing behind: the attack did not happen as planned")
    again = shipyard("verify", cwd=proj, env=env)
    if _base_worktrees(proj) or any(f.exists() for f in folders):
        return broke(f"the next verify left the crashed one's base worktree: {said(again)}")
    if left:
        return broke(f"the base suite outlived the crash: {left}")
    return held("the next verify pruned the base worktree and removed its folder")


RUN_HANG = "test -f {m} || {{ touch {m}; echo $$ > {pids}/hang.pid; exec sleep 300; }}"


@attack
def crash_leftovers_of_run(tmp: Path) -> Outcome:
    """``kill -9`` of ``shipyard run`` during a ``run`` tool call: the command dies with it, and
    ``resume`` removes the ``/tmp/shipyard-run-*`` folder the crash left."""
    pids = tmp / "pids"
    pids.mkdir()
    proj = project(tmp)
    hang = call("run", command=RUN_HANG.format(m=tmp / "marker", pids=pids))
    env = environ(tmp)
    script, spec = tmp / "script.yaml", tmp / "spec.yaml"
    script.write_text(yaml.safe_dump({"implementer": [hang, *GOOD], **SCRIPT_ROLES}))
    spec.write_text(SPEC.lstrip())
    proc = start("run", "multiply", "--spec", str(spec), "--model", f"script:{script}", "--yes",
                 cwd=proj, env=env)  # fmt: skip
    hang_pid = int(wait_file(pids / "hang.pid", 60, proc))
    kill_shipyard(proc)
    left = still_alive([hang_pid], seconds=5)
    kill(left)
    folders = list(Path("/tmp").glob(f"shipyard-run-{proc.pid}-*"))
    if not folders:
        return broke("the crash left no run folder: the attack did not happen as planned")
    run_id = json.loads(shipyard("status", "--json", cwd=proj, env=env).stdout)[0]["id"]
    resumed = shipyard("resume", run_id, cwd=proj, env=env)
    if any(f.exists() for f in folders):
        return broke(f"resume left the crashed run's folder {folders[0]}: {said(resumed)}")
    if left:
        return broke(f"the run tool's command outlived the crash: {left}")
    if resumed.returncode != 0:
        return broke(f"the resumed run did not ship: {said(resumed)}")
    return held("the command died with shipyard; resume removed the crashed run's folder")


SPEW = """
import os, sys
n = int(os.environ.get("SPEW_BYTES", "0"))
block = b"x" * 1023 + b"\\n"
for _ in range(n // len(block)):
    os.write(1, block)
os.write(1, b"SPEW-END\\n")
"""


@attack
def gigabytes_of_test_output(tmp: Path) -> Outcome:
    """A test command that prints 3 GB (``ATTACK_SPEW_BYTES``): the evidence file keeps its head
    and tail and says how much was cut; the JUnit report is whole."""
    size = int(os.environ.get("ATTACK_SPEW_BYTES", str(3 << 30)))
    config = "[commands]\ntest = 'python spew.py && python -m pytest -q -p no:cacheprovider'\n"
    proj = project(tmp, {"spew.py": SPEW, "tests/test_ok.py": "def test_ok():\n    pass\n"},
                   config=config)  # fmt: skip
    proc = shipyard("verify", "--json", cwd=proj, env=environ(tmp, SPEW_BYTES=str(size)))
    if proc.returncode != 0:
        return broke(f"the verify did not pass: {said(proc)}")
    log = Path(json.loads(proc.stdout)["run_dir"]) / "tests" / "output.log"
    kept = log.stat().st_size
    with open(log, "rb") as fh:
        fh.seek(max(kept - 4096, 0))
        end = fh.read()
    if kept > 16 << 20 or b"bytes of output cut here" not in _middle(log):
        return broke(f"{log} is {kept} bytes and does not say it was cut")
    if b"SPEW-END" not in end or b"passed" not in end:
        return broke("the tail of the output was not kept")
    return held(f"{size:,} bytes printed, {kept:,} kept (head and tail), the cut said")


def _middle(log: Path) -> bytes:
    out = subprocess.run(["grep", "-a", "-o", "bytes of output cut here", str(log)],
                         capture_output=True)  # fmt: skip
    return out.stdout
