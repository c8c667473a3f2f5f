"""Benchmark the delivery loop's own overhead, with a model that answers instantly.

    uv run python scripts/bench_run.py [--steps 1000] [--resumes 3]

A real project in a temporary git repository, the real SQLite ledger, the real worktree and a
scripted model (``script:FILE``), driven in-process with ``start_run`` and ``drive``. The
implementer makes ``--steps`` cheap tool calls (``read calc.py``, ``write notes.txt`` with new
content each time, ``list``), one per step, then ``submit``. Reports:

1. harness overhead per implementer step (one model request plus the running of its call): the
   wall time of the step minus the time spent inside ``shipyard.agents.models.request``, so what
   remains is tool dispatch, ledger writes and loop bookkeeping; split into ledger commits, tool
   calls, tool schemas (``implement._params``) and the rest. Target < 5 ms.
2. resident memory (VmRSS) every 100 steps, and its growth from step 100 to the end. Target: flat.
3. resume: the run is stopped right after step N was committed (before the model asks for
   ``submit``), as a crash would leave it; then ``resume_run`` plus ``drive`` up to its first
   committed step, timed on copies of the ledger as it was at the crash. Target < 1 s.

Nothing is asserted: the figures are printed next to their targets, and the exit code is 0.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shipyard.agents.chat as chat
import shipyard.agents.scripted as scripted
import shipyard.agents.tools as tools
import shipyard.loop.model_implementer as implement
from shipyard import process
from shipyard.loop.context import RunContext, RunOptions
from shipyard.loop.loop import drive
from shipyard.loop.setup import resume_run, start_run
from shipyard.loop.step import Step
from shipyard.store.ledger import Event

TARGET_OVERHEAD_MS = 5.0
TARGET_RESUME_S = 1.0
RSS_EVERY = 100
SERIES = ("total", "request", "commit", "call", "_params")

CONFIG = """
[commands]
test = "python -m pytest -q -p no:cacheprovider"
timeout = 60

[budget]
attempts = 1
steps = {steps}
idle_steps = 1000
repeat_calls = 100
tokens = 1_000_000_000_000
"""
CALC = "def add(a, b):\n    return a + b\n"
TEST_ADD = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
SPEC = """
task: calc.multiply multiplies two numbers
acceptance:
  - id: multiply
    text: multiply(3, 4) returns 12
checks:
  tests:
    required:
      - id: tests/test_multiply.py::test_multiply
        covers: [multiply]
"""
APPROVE = {"output": {"decision": "approve", "summary": "multiply does what the spec says"}}
DIAGNOSIS = {
    "output": {
        "root_cause": "none",
        "evidence": "none",
        "fix_plan": "none",
        "confidence": 0.5,
    }
}


class Stop(Exception):
    """Raised from the say_events hook: the process 'dies' right after a committed step."""


# -- the project ---------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_project(folder: Path, steps: int) -> Path:
    project = folder / "calc"
    (project / "tests").mkdir(parents=True)
    files = {
        "shipyard.toml": CONFIG.format(steps=steps + 10),
        "calc.py": CALC,
        "tests/test_add.py": TEST_ADD,
        "conftest.py": "",
    }
    for name, text in files.items():
        (project / name).write_text(text)
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.email", "bench@example.com")
    git(project, "config", "user.name", "Bench")
    git(project, "config", "commit.gpgsign", "false")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "calc with add")
    return project


def cheap_call(i: int) -> dict[str, Any]:
    """Alternating cheap tools; every write has new content, so no loop or idle limit fires."""
    match i % 3:
        case 0:
            return {"call": "read", "args": {"path": "calc.py"}}
        case 1:
            return {"call": "write", "args": {"path": "notes.txt", "content": f"note {i}\n"}}
        case _:
            return {"call": "list", "args": {}}


def write_script(folder: Path, steps: int) -> Path:
    implementer = [cheap_call(i) for i in range(steps)]
    implementer.append({"call": "submit", "args": {"summary": "done"}})
    path = folder / "script.json"  # JSON is YAML: load_script reads it
    path.write_text(
        json.dumps({"implementer": implementer, "reviewer": [APPROVE], "diagnoser": [DIAGNOSIS]})
    )
    return path


# -- measuring -----------------------------------------------------------------------------------


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import psutil

    return psutil.Process().memory_info().rss / 2**20


@dataclass
class Buckets:
    """Seconds spent inside wrapped functions since the last reset."""

    spent: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def take(self) -> dict[str, float]:
        spent, self.spent = self.spent, {}
        self.calls = {}
        return spent


BUCKETS = Buckets()


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            BUCKETS.spent[name] = BUCKETS.spent.get(name, 0.0) + time.perf_counter() - started
            BUCKETS.calls[name] = BUCKETS.calls.get(name, 0) + 1

    return wrapper


@contextmanager
def instrumented():
    """Time the model request, tool calls, tool schemas, spec/script loading, conversation
    restore and the /proc scan of a resume, for the duration of the benchmark only."""
    patches = [
        (chat.model_io, "request"),
        (tools.Toolbox, "call"),
        (implement, "_params"),
        (implement, "conversation"),
        (scripted, "load_script"),
        (process, "kill_tagged"),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name in patches]
    try:
        for owner, name, original in saved:
            setattr(owner, name, timed(name, original))
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def time_commits(ctx: RunContext) -> None:
    ctx.ledger.commit = timed("commit", ctx.ledger.commit)  # type: ignore[method-assign]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# -- 1 and 2: the long run -----------------------------------------------------------------------


@dataclass
class LongRun:
    run_id: str
    series: dict[str, array[float]]
    """Per implementer step, in seconds: its wall time (total) and the time inside each
    wrapped function; compact arrays, so that the benchmark itself does not grow the RSS."""
    rss: list[tuple[int, float]]
    drive_seconds: float
    messages: int
    tokens: int


def long_run(project: Path, spec: Path, script: Path, steps: int) -> LongRun:
    options = RunOptions(spec_file=str(spec), model=f"script:{script}", yes=True)
    ctx = start_run(project, "bench", options, say=lambda _e: None, confirm=lambda _s: True)
    state = ctx.ledger.run(ctx.run_id).state  # after the spec lock: stage implement
    time_commits(ctx)
    series = {key: array("d") for key in SERIES}
    rss: list[tuple[int, float]] = []
    original = ctx.say_events
    last = [0.0]

    def on_commit(step: Step) -> None:
        now = time.perf_counter()
        if any(e.kind == "tool" for e in step.events):  # the end of an implementer step
            spent = BUCKETS.take()
            spent["total"] = now - last[0]
            for key, values in series.items():
                values.append(spent.get(key, 0.0))
            n = len(series["total"])
            if n % RSS_EVERY == 0 or n == steps:
                rss.append((n, rss_mb()))
            if n == steps:  # committed; the next request would be submit: "crash" here
                raise Stop
            original(step)
            last[0] = time.perf_counter()  # the next step starts; the sampling is not counted
        else:
            original(step)

    object.__setattr__(ctx, "say_events", on_commit)  # the context is frozen: hook this one
    BUCKETS.take()
    started = last[0] = time.perf_counter()
    try:
        drive(ctx, state)
    except Stop:
        pass
    else:
        raise SystemExit("the run ended before the crash point: the benchmark is broken")
    took = time.perf_counter() - started
    messages = len(ctx.session.conversations["implementer"].messages)
    tokens = ctx.ledger.run(ctx.run_id).state.usage.tokens
    ctx.ledger.close()
    return LongRun(ctx.run_id, series, rss, took, messages, tokens)


# -- 3: resume -----------------------------------------------------------------------------------


@dataclass
class Resumed:
    resume_run: float
    first_step: float
    parts: dict[str, float]
    calls: dict[str, int]
    first_event: str


def resume_once(project: Path, run_id: str) -> Resumed:
    BUCKETS.take()
    started = time.perf_counter()
    ctx, state = resume_run(project, run_id, say=lambda _e: None, confirm=lambda _s: True)
    resumed = time.perf_counter()
    calls = dict(BUCKETS.calls)
    parts = BUCKETS.take()
    seen: list[Event] = []

    def on_commit(step: Step) -> None:
        seen.extend(step.events)
        raise Stop

    object.__setattr__(ctx, "say_events", on_commit)  # the context is frozen: hook this one
    time_commits(ctx)
    try:
        drive(ctx, state)
    except Stop:
        first = time.perf_counter()
    else:
        raise SystemExit("the resumed run committed no step: the benchmark is broken")
    parts.update({f"step:{k}": v for k, v in BUCKETS.take().items()})
    ctx.ledger.close()
    summary = next((e.summary for e in seen if e.kind == "model"), "(no model step)")
    return Resumed(resumed - started, first - resumed, parts, calls, summary)


def snapshot(db: Path, to: Path) -> None:
    """A consistent copy of the ledger (all connections are closed: no -wal left)."""
    src = sqlite3.connect(db)
    dst = sqlite3.connect(to)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def restore(copy: Path, db: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(copy, db)


def cold_import_seconds() -> float:
    """A real ``shipyard resume`` is a new process: what importing the loop costs there."""
    code = (
        "import time; t = time.perf_counter(); "
        "import shipyard.loop.loop, shipyard.loop.model_implementer, shipyard.agents.chat, "
        "shipyard.agents.scripted, pydantic_ai.direct; print(time.perf_counter() - t)"
    )
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        runs.append(float(out.stdout))
    return statistics.median(runs)


# -- report --------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def stats_row(label: str, values: list[float]) -> None:
    median, p95, mean = statistics.median(values), pct(values, 95), statistics.mean(values)
    print(f"   {label:<34} {ms(median):>10} {ms(p95):>10} {ms(mean):>10}")


def report_steps(run: LongRun) -> None:
    total, model = list(run.series["total"]), list(run.series["request"])
    over = [t - m for t, m in zip(total, model, strict=True)]
    parts = {
        "ledger commits": list(run.series["commit"]),
        "tool calls": list(run.series["call"]),
        "tool schemas (_params)": list(run.series["_params"]),
    }
    rest = [o - sum(p[i] for p in parts.values()) for i, o in enumerate(over)]
    parts["rest (conversation, state, loop)"] = rest
    n = len(total)
    print(
        f"\n1. harness overhead per implementer step ({n} steps, target < {TARGET_OVERHEAD_MS} ms)"
    )
    print(f"   {'':<34} {'median':>10} {'p95':>10} {'mean':>10}")
    stats_row("step, wall", total)
    stats_row("  in the model request", model)
    stats_row("OVERHEAD (wall - model)", over)
    for name, values in parts.items():
        stats_row(f"  {name}", values)
    window = min(100, n // 2) or 1
    head, tail = over[:window], over[-window:]
    mhead, mtail = model[:window], model[-window:]
    print(
        f"   trend: overhead median, first {window} steps {ms(statistics.median(head))}, "
        f"last {window} {ms(statistics.median(tail))}; model request "
        f"{ms(statistics.median(mhead))} -> {ms(statistics.median(mtail))}"
    )
    verdict = _verdict(statistics.median(over) < TARGET_OVERHEAD_MS / 1000)
    print(
        f"   target < {TARGET_OVERHEAD_MS} ms (median): {verdict}; drive() wall for {n} steps: "
        f"{run.drive_seconds:.2f} s; usage the scripted model reported: {run.tokens:,} tokens"
    )


def report_rss(run: LongRun) -> None:
    print(f"\n2. resident memory (VmRSS) every {RSS_EVERY} steps (target: flat)")
    print("   " + "  ".join(f"{n}:{mb:.1f}" for n, mb in run.rss) + "  (step:MB)")
    first, last = run.rss[0], run.rss[-1]
    grew = last[1] - first[1]
    per = grew * 1024 / max(last[0] - first[0], 1)
    print(
        f"   growth from step {first[0]} to {last[0]}: {grew:+.1f} MB ({per:+.1f} kB/step); "
        f"{run.messages} messages held by the implementer's conversation"
    )


def report_resume(events: int, runs: list[Resumed], cold: float) -> None:
    few = " (fewer than 1,000: give more --steps)" if events < 1000 else ""
    print(f"\n3. resume of a run with {events} events in the ledger{few}")
    print(f"   target: resume + first committed step < {TARGET_RESUME_S} s")
    totals = [r.resume_run + r.first_step for r in runs]
    line = "   {:<44} {:>10}"
    med = runs[sorted(range(len(runs)), key=lambda i: totals[i])[len(runs) // 2]]
    print(f"   {len(runs)} resumes, each of the same crash point; the median one:")
    print(line.format("resume_run(...)", ms(med.resume_run)))
    loads = med.calls.get("load_script", 0)
    for key, label in (
        ("load_script", f"  script file parsed, {loads} times (load_script)"),
        ("kill_tagged", "  /proc scan for leftovers (kill_tagged)"),
    ):
        print(line.format(label, ms(med.parts.get(key, 0.0))))
    print(line.format("drive() to its first committed step", ms(med.first_step)))
    for key, label in (
        ("step:conversation", "  conversation restored from the ledger"),
        ("step:request", "  the model request (submit)"),
        ("step:_params", "  tool schemas (_params)"),
        ("step:commit", "  ledger commit"),
    ):
        print(line.format(label, ms(med.parts.get(key, 0.0))))
    total = med.resume_run + med.first_step
    print(line.format("TOTAL resume + first step", ms(total)))
    scripted_only = med.parts.get("load_script", 0.0) + med.parts.get("step:request", 0.0)
    own = total - scripted_only
    print(line.format("  without the scripted model's own cost", ms(own)))
    print(f"   all runs: {', '.join(ms(t) for t in totals)}; first step said: {med.first_event!r}")
    print(
        f"   target < {TARGET_RESUME_S} s: {_verdict(total < TARGET_RESUME_S)} as measured, "
        f"{_verdict(own < TARGET_RESUME_S)} without parsing the script / answering it "
        f"(in-process; a new `shipyard resume` process also pays ~{cold:.2f} s of imports)"
    )


def _verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--resumes", type=int, default=3)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    os.environ["SHIPYARD_BLOCK_MODEL_REQUESTS"] = "1"  # nothing here may reach a real model
    print(
        f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]} ({sys.platform}); "
        f"{args.steps} implementer steps"
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp, instrumented():
        folder = Path(tmp)
        project = make_project(folder, args.steps)
        spec = folder / "multiply.spec.yaml"
        spec.write_text(SPEC.lstrip())
        script = write_script(folder, args.steps)
        run = long_run(project, spec, script, args.steps)
        report_steps(run)
        report_rss(run)
        db = project / ".shipyard" / "shipyard.db"
        conn = sqlite3.connect(db)
        events = conn.execute("SELECT COUNT(*) FROM events WHERE run_id = ?", (run.run_id,))
        count = events.fetchone()[0]
        conn.close()
        copy = folder / "crashed.db"
        snapshot(db, copy)
        run_id = run.run_id
        del run
        gc.collect()
        resumes = []
        for _ in range(max(args.resumes, 1)):
            restore(copy, db)
            resumes.append(resume_once(project, run_id))
        report_resume(count, resumes, cold_import_seconds())
    print(f"\n(benchmark wall time {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
