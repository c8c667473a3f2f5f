"""How fast the dashboard answers and how big a report gets.

1. A ledger of 1,000 runs (written through the ledger, as runs write it): the runs page of
   ``shipyard serve`` (a page of 100, and all 1,000 at once), timed over HTTP on 127.0.0.1.
2. A run of 200 implementer steps and 10 verifies, each verify with the evidence of a real
   ``shipyard verify`` of examples/todo (screenshots included): ``shipyard report --html``,
   its time and size.

Usage: uv run python scripts/bench_dashboard.py
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RUNS, STEPS, VERIFIES = 1_000, 200, 10
sys.path.insert(0, str(ROOT / "src"))

from shipyard.loop.state import RunState, Usage  # noqa: E402
from shipyard.loop.step import Step  # noqa: E402
from shipyard.store.ledger import Event, Ledger, UsageRow  # noqa: E402


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          timeout=60).stdout.strip()  # fmt: skip


def project_with(tmp: Path) -> tuple[Path, str, str, Path]:
    """A copy of examples/todo in git, one real verify of it, and a changed tree."""
    project = tmp / "todo"
    shutil.copytree(ROOT / "examples" / "todo", project, ignore=shutil.ignore_patterns(".shipyard"))
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "-c", "user.name=b", "-c", "user.email=b@localhost", "commit", "-qm", "todo")
    base = git(project, "rev-parse", "HEAD")
    out = subprocess.run([str(BIN / "shipyard"), "verify"], cwd=project, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    found = re.search(r"evidence: \S*/(v-[\w-]+)", out.stdout)
    assert found and out.returncode == 0, out.stdout + out.stderr
    page = project / "todo" / "static" / "index.html"
    page.write_text(page.read_text().replace("<h1>todos</h1>", "<h1>my todos</h1>"))
    git(project, "add", "-A")
    tree = git(project, "write-tree")
    git(project, "reset", "-q", "--hard")
    return project, base, tree, project / ".shipyard" / "runs" / found.group(1)


def many_runs(ledger: Ledger, base: str) -> None:
    for i in range(RUNS):
        run_id = f"r-20260101-{i:06d}-{i:06x}"
        ledger.create_run(
            run_id=run_id, task=f"task number {i}: add feature {i % 37} to the app",
            base_sha=base, branch=f"shipyard/{run_id}", worktree="/nonexistent",
            options={}, state=RunState(stage="implement"),
        )  # fmt: skip
        state = RunState(stage="shipped" if i % 3 else "blocked", attempt=1 + i % 3,
                         usage=Usage(input_tokens=1000 + i, output_tokens=100))  # fmt: skip
        if state.stage == "blocked":
            state.reason = "budget: 3 attempts used; last failure: tests suite"
        usage = UsageRow(role="implementer", model="m", input_tokens=1000 + i, output_tokens=100)
        step = Step(attempt_started=True, usage=[usage])
        step.events.append(Event(kind="attempt", summary="attempt 1"))
        ledger.commit(run_id, state, step)
        ledger.release(run_id, state.stage, state.reason)


def long_run(ledger: Ledger, project: Path, base: str, tree: str, verify: Path) -> str:
    run_id = "r-20260102-000000-abcdef"
    ledger.create_run(run_id=run_id, task="a long run: 200 steps and 10 verifies", base_sha=base,
                      branch=f"shipyard/{run_id}", worktree="/nonexistent", options={},
                      state=RunState(stage="implement"))  # fmt: skip
    folder = project / ".shipyard" / "runs" / run_id
    gates = json.loads((verify / "verdict.json").read_text())["gates"]
    state = RunState(stage="implement", tree=tree)
    per = STEPS // VERIFIES
    for n in range(1, VERIFIES + 1):
        state.attempt = n
        step = Step(attempt_started=True)
        step.event("attempt", f"attempt {n}")
        ledger.commit(run_id, state, step)
        for k in range(per):
            state.step = k + 1
            step = Step(usage=[UsageRow(role="implementer", model="m", input_tokens=3000,
                                        output_tokens=200)])  # fmt: skip
            step.event("model", f"step {k + 1}: edit todo/app.py, run python -m pytest -q")
            step.event("tool", "✓ edit (changed)", ok=True, changed=True)
            step.event("tool", "✗ run: exit 1 after 1.2 s", ok=False, changed=False)
            ledger.commit(run_id, state, step)
        shutil.copytree(verify, folder / f"verify-{n}")
        step = Step(gates=[(f"verify-{n}", g) for g in gates])
        step.event("verify", f"verify {n}: passed", dir=str(folder / f"verify-{n}"))
        state.verify_runs = n
        if n < VERIFIES:
            step.attempt_outcome = ("changes", "review heading: the title is still Todos")
        ledger.commit(run_id, state, step)
    state.stage, state.reason = "blocked", "budget: 10 attempts used"
    ledger.commit(run_id, state, Step())
    ledger.release(run_id, "blocked", state.reason)
    return run_id


def timed(client: httpx.Client, path: str, n: int = 20) -> tuple[float, float, int]:
    for _ in range(3):
        client.get(path).raise_for_status()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    return statistics.median(times), max(times), len(response.content)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    try:
        project, base, tree, verify = project_with(tmp)
        ledger = Ledger.open(project, RunState.model_validate_json)
        started = time.perf_counter()
        many_runs(ledger, base)
        run_id = long_run(ledger, project, base, tree, verify)
        ledger.close()
        print(f"ledger: {RUNS + 1:,} runs written in {time.perf_counter() - started:.1f}s")
        serve(project)
        report(project, run_id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def serve(project: Path) -> None:
    proc = subprocess.Popen([str(BIN / "shipyard"), "serve", "--port", "0"], cwd=project,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        url = re.search(r"(http://\S+)", proc.stdout.readline()).group(1)  # type: ignore[union-attr]
        with httpx.Client(base_url=url, timeout=30) as client:
            for path in ("/", "/?limit=1000", "/?status=blocked&q=feature+7", "/metrics"):
                median, worst, size = timed(client, path)
                print(f"GET {path:<30} median {median * 1000:6.1f} ms  max {worst * 1000:6.1f} ms"
                      f"  {size / 1024:7.1f} KiB")  # fmt: skip
            median, worst, size = timed(client, "/runs/r-20260102-000000-abcdef", n=5)
            print(
                f"GET /runs/<200-step run>{'':7} median {median * 1000:6.1f} ms  "
                f"max {worst * 1000:6.1f} ms  {size / 1024:7.1f} KiB"
            )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def report(project: Path, run_id: str) -> None:
    started = time.perf_counter()
    out = subprocess.run([str(BIN / "shipyard"), "report", run_id, "--html"], cwd=project,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    took = time.perf_counter() - started
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    text = path.read_text()
    print(
        f"report --html of {STEPS} steps, {VERIFIES} verifies: {path.stat().st_size / 1024:.0f}"
        f" KiB in {took:.2f}s (limit 2,048 KiB); {text.count('data:image/jpeg')} thumbnails"
    )


if __name__ == "__main__":
    main()
