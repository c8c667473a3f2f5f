"""What the runtime gate adds beyond the app's own start-up and the checks themselves.

    uv run python scripts/bench_runtime.py [--runs N]

On a copy of examples/todo it reports, as medians over N runs:
- the app's own start-up, measured by hand (launch, then poll /healthz every millisecond);
- how long after the app first answers Shipyard notices it is ready (a 1 ms poller runs
  beside Shipyard's own readiness loop);
- the runtime gate split into: app start-up, readiness polling beyond it, browser start, the
  checks themselves (HTTP, CLI, UI flows without the browser start), browser and app teardown,
  and everything else; "added" is the gate minus the app's own start-up minus the checks;
- how many Chromium processes served the gate's flows (the spec gets a second flow);
- a full `shipyard verify` of the example, split by gate.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from shipyard.config import load_config
from shipyard.evidence import RunDir
from shipyard.gates import Context, runtime
from shipyard.gates import app as applaunch
from shipyard.gates.browser import Browser
from shipyard.spec import parse_spec

ROOT = Path(__file__).resolve().parent.parent
SHIPYARD = Path(sys.executable).parent / "shipyard"
Timings = dict[str, float]


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.05) as sock:
            sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return sock.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False


def app_startup_by_hand(project: Path) -> float:
    port = applaunch.free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"TODO_DB": f"{tmp}/todo.db", "PATH": str(Path(sys.executable).parent)}
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "todo", "--port", str(port)],
            cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            while not answers(port):
                time.sleep(0.001)
            return time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait()


def wrap(owner: Any, name: str, bucket: Timings, label: str) -> Callable[[], None]:
    original = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            bucket[label] += time.perf_counter() - started

    setattr(owner, name, timed)
    return lambda: setattr(owner, name, original)


def readiness_lag(bucket: Timings) -> Callable[[], None]:
    """Beside Shipyard's readiness loop, a 1 ms poller notes when the app first answers."""
    original = applaunch.wait_ready

    def watched(app: applaunch.RunningApp, settings: Any) -> str | None:
        first: list[float] = []
        done = threading.Event()

        def poll() -> None:
            while not done.is_set() and not first:
                if answers(app.port):
                    first.append(time.perf_counter())
                time.sleep(0.001)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            problem = original(app, settings)
            noticed = time.perf_counter()
        finally:
            done.set()
            poller.join()
        if first:
            bucket["readiness lag"] += max(0.0, noticed - first[0])
        return problem

    applaunch.wait_ready = watched
    return lambda: setattr(applaunch, "wait_ready", original)


def runtime_gate_once(project: Path, spec_text: str, launches: list[int]) -> Timings:
    bucket: Timings = defaultdict(float)
    import playwright.sync_api._generated as generated

    original_launch = generated.BrowserType.launch

    def counting_launch(self: Any, *args: Any, **kwargs: Any) -> Any:
        launches.append(1)
        return original_launch(self, *args, **kwargs)

    generated.BrowserType.launch = counting_launch  # type: ignore[method-assign]
    undo = [
        wrap(Browser, "_launched", bucket, "browser start"),
        wrap(Browser, "close", bucket, "browser teardown"),
        wrap(runtime._Session, "_stop_app", bucket, "app teardown"),
        readiness_lag(bucket),
    ]
    try:
        ctx = Context(
            project=project,
            config=load_config(project),
            spec=parse_spec(spec_text, "bench.yaml"),
            run=RunDir.create(project, f"bench-{time.monotonic_ns()}"),
        )
        started = time.perf_counter()
        result = runtime.RuntimeGate().run(ctx)
        bucket["gate"] = time.perf_counter() - started
    finally:
        generated.BrowserType.launch = original_launch  # type: ignore[method-assign]
        for restore in undo:
            restore()
    assert result.status == "passed", [c.message for c in result.checks if c.status != "passed"]
    for check in result.checks:
        key = "app start-up (to ready)" if check.kind == "app" else "checks"
        bucket[key] += check.duration or 0
    bucket["checks"] -= bucket["browser start"]  # the first flow's duration includes it
    return bucket


def bench_spec(project: Path) -> str:
    spec = yaml.safe_load((project / "spec.yaml").read_text())
    spec["checks"].pop("tests", None)
    flow = dict(spec["checks"]["ui"][0], id="second-flow")
    flow["steps"] = [{"goto": "/"}, {"expect_count": {"selector": ".todo-list li", "count": 2}}]
    spec["checks"]["ui"].append(flow)
    return yaml.safe_dump(spec, sort_keys=False)


def full_verify(project: Path) -> dict[str, float]:
    started = time.perf_counter()
    out = subprocess.run(
        [str(SHIPYARD), "verify", "--json", "--project", str(project)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    doc = json.loads(out.stdout)
    assert doc["exit_code"] == 0, out.stdout
    return {"wall": wall, **{g["name"]: g["duration"] for g in doc["gates"]}}


def median_of(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for row in rows for k in row}
    return {k: statistics.median(row.get(k, 0.0) for row in rows) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "todo"
        shutil.copytree(ROOT / "examples" / "todo", project)
        sys.path.insert(0, str(project))
        spec_text = bench_spec(project)
        by_hand = statistics.median(app_startup_by_hand(project) for _ in range(args.runs))
        launches: list[int] = []
        rows = []
        for _ in range(args.runs):
            launches.clear()
            rows.append(runtime_gate_once(project, spec_text, launches))
        m = median_of(rows)
        added = m["gate"] - by_hand - m["checks"]
        other = (
            added - (m["app start-up (to ready)"] - by_hand) - m["browser start"]
            - m["browser teardown"] - m["app teardown"]
        )  # fmt: skip
        print(f"runtime gate on examples/todo, medians of {args.runs} runs (2 UI flows)")
        print(f"  app's own start-up, by hand          {by_hand:7.3f}s")
        print(f"  readiness noticed after first answer {m['readiness lag'] * 1000:7.1f} ms")
        print(f"  gate total                           {m['gate']:7.3f}s")
        print(f"    app start-up to ready (Shipyard)   {m['app start-up (to ready)']:7.3f}s")
        print(f"    browser start                      {m['browser start']:7.3f}s")
        print(f"    the checks themselves              {m['checks']:7.3f}s")
        print(f"    browser teardown                   {m['browser teardown']:7.3f}s")
        print(f"    app teardown                       {m['app teardown']:7.3f}s")
        print(f"    other (log scans, bookkeeping)     {other:7.3f}s")
        print(f"  added by the gate                    {added:7.3f}s  (target < 2 s)")
        print(f"  Chromium launches for 2 flows        {len(launches):7d}")
        full = median_of([full_verify(project) for _ in range(args.runs)])
        split = "  ".join(f"{k} {full[k]:.2f}s" for k in ("contract", "build", "tests", "runtime"))
        print(f"full `shipyard verify` of examples/todo: wall {full['wall']:.2f}s = {split}")
        print("  (the rest of the wall time: interpreter start-up, loading config and spec)")


if __name__ == "__main__":
    main()
